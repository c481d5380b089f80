"""`radio-engine train`: the listener GRU on real sessions (GRU4Rec-style), then the export.

The recipe (`train`), each step in a module of its own:
1. events, split for validation (the last day of each fold, or --valid)       data.py
2. the audio encoder on the --audio clips, and each clip's embedding          clips.py
3. vocabulary and model inputs                                                encoding.py
4. phase 1: epochs on the training split, validated after each               loop.py, validation.py
   (artist vectors started from session co-occurrence)                       cooccurrence.py
   (session-parallel batches, sampled softmax with log-q, truncated BPTT)     batching.py, loss.py
5. the served blend of GRU and session signals, tuned on the same split       evaluate.py
6. phase 2: refit on every event for as many epochs as the best of phase 1    loop.py
7. the model directory, its sequential rules, the report                      export.py, report.py

Every hyper-parameter is in one TrainConfig (config.py), recorded in the manifest. Feedback:
every event is an input with its feedback one-hot, but a skip or a dislike is not what the
listener wanted next, so such a target gets no loss (nor counts in validation); --no-feedback
(the ablation) reads every event as a play and a target. Training stops on epoch and step
counts only, so the same data, seed and config give the same model on any machine under any
load; --max-minutes is an opt-in guard that ends a phase between epochs, and the console,
report.md and the manifest then say so and what it cost.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from radio_engine.model.session_indicators import INDICATORS
from radio_engine.settings import Settings
from radio_engine.training.clips import ClipAudio
from radio_engine.training.config import TrainConfig
from radio_engine.training.data import Events, data_sha256, load_events, split_last_days
from radio_engine.training.encoding import Vocab
from radio_engine.training.export import export_rules, export_with_vocab
from radio_engine.training.loop import fit
from radio_engine.training.model import ListenerModel
from radio_engine.training.report import EarlyStop, TrainingReport, training_data
from radio_engine.training.validation import ValidationPairs


@dataclass(frozen=True)
class TrainInputs:
    """What a run reads and writes: events, optional validation events and clips, the output."""

    events: Path
    out: Path
    valid: Path | None = None
    audio: Path | None = None
    metadata: Path | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> TrainInputs:
        """The paths the `train` command line names."""

        def path(name: str) -> Path | None:
            value = getattr(args, name, None)
            return Path(value) if value else None

        return cls(
            Path(args.events), Path(args.out), path("valid"), path("audio"), path("metadata")
        )


def run(args: argparse.Namespace, settings: Settings) -> int:
    """`radio-engine train`: the command line's paths and TrainConfig, then `train`."""
    train(TrainInputs.from_args(args), TrainConfig.from_args(args))
    return 0


class _Clock:
    """The run's start and the opt-in --max-minutes deadline, and the phases it cut short."""

    def __init__(self, limit: float | None) -> None:
        self.started = time.monotonic()
        self.limit = limit
        self.deadline = None if limit is None else self.started + limit * 60
        self.stops: list[EarlyStop] = []

    def note(self, phase: str, ran: int, planned: int) -> None:
        """Record and print a phase that the time limit ended before its last epoch."""
        if self.limit is not None and ran < planned:
            self.stops.append(EarlyStop(phase, ran, planned, self.limit))
            print(f"train: {self.stops[-1].describe()}", flush=True)

    def minutes(self) -> float:
        return (time.monotonic() - self.started) / 60


def train(inputs: TrainInputs, config: TrainConfig) -> Path:
    """Train on inputs.events, choose epochs and blend on a validation split, refit, export."""
    torch.set_num_threads(config.threads)
    clock = _Clock(config.max_minutes)
    events = load_events(inputs.events)
    if inputs.valid:
        train_part, valid_part = events, load_events(inputs.valid)
    else:
        train_part, valid_part = split_last_days(events, config.validation_days)
    print(
        f"train: {len(train_part)} events for training, {len(valid_part)} for validation "
        f"({len(np.unique(train_part.user_id))} listeners)",
        flush=True,
    )
    audio_started = time.monotonic()
    clips = ClipAudio.train(inputs.audio, inputs.metadata, config.audio_steps)
    audio_seconds = time.monotonic() - audio_started
    vocab = Vocab.build(train_part, clips.track_audio)
    trained_on = training_data(inputs.events, events, config.feedback)
    print(f"train: {trained_on['sentence']}", flush=True)

    # phase 1: epochs on the training split, each validated; the best one is kept
    print(
        f"train: phase 1, {config.epochs} epochs on the training split, validated each epoch"
        + (
            ""
            if clock.limit is None
            else f" (--max-minutes {clock.limit:g}: may stop between epochs)"
        ),
        flush=True,
    )
    history: list[dict[str, Any]] = []
    phase1 = fit(
        train_part,
        vocab,
        config,
        progress=True,
        deadline=clock.deadline,
        valid=ValidationPairs.build(train_part, valid_part, vocab, config.feedback),
        log=history,
        phase="phase 1",
    )
    clock.note("phase 1 (epoch choice)", phase1.epochs_run, config.epochs)
    model, best = phase1.model, phase1.kept
    if best is None:  # a validated fit of at least one epoch always keeps one
        raise RuntimeError("phase 1 kept no epoch (config.epochs must be at least 1)")

    # the served blend, tuned on the same validation split with the phase-1 model
    blend = _tune_blend(
        model, vocab, clips, train_part, valid_part, inputs.out, config.k, config.blend_tuning_pairs
    )

    # phase 2: refit on everything for the chosen number of epochs
    final_epochs = int(best["epoch"])
    print(
        f"train: phase 2, refit on all {len(events)} events for {final_epochs} epochs", flush=True
    )
    refit_events = train_part if inputs.valid else events
    full_vocab = vocab if inputs.valid else Vocab.build(events, clips.track_audio)
    refit = fit(
        refit_events,
        full_vocab,
        config.replace(
            epochs=final_epochs, schedule_epochs=config.schedule_epochs or config.epochs
        ),
        progress=True,
        deadline=clock.deadline,
        phase="phase 2",
    )
    final, ran = refit.model, refit.epochs_run
    clock.note("phase 2 (refit)", ran, final_epochs)

    # the model directory: ONNX parts and tables, sequential rules, report
    summary = _summary(best, blend, final, ran, config, inputs, clock, trained_on)
    export_with_vocab(
        final,
        inputs.out,
        full_vocab,
        clips.encoder,
        spec_extra={
            "id_only": config.id_only,
            "feedback": config.feedback,
            "blend": blend["blend"],
            "blend_only": blend["blend_only"],
        },
        data_sha256=data_sha256(inputs.events),
        metrics=summary,
        trained=True,
        train_config=config.to_dict(),
    )
    export_rules(refit_events, inputs.out)
    timing = {"total": time.monotonic() - clock.started, "audio": audio_seconds}
    TrainingReport(
        config, history, clips.loss, summary, clock.stops, timing, len(train_part), len(valid_part)
    ).write(inputs.out)
    print(
        f"train: model written to {inputs.out} in {clock.minutes():.1f} min; "
        f"epoch {best['epoch']} kept: validation HR@20 {best.get('valid_hr', 0):.4f} "
        f"(GRU + session indicators), {best.get('valid_gru_hr', 0):.4f} (GRU alone)"
        + "".join(f"; {stop.describe()}" for stop in clock.stops),
        flush=True,
    )
    return inputs.out


def _tune_blend(
    model: ListenerModel,
    vocab: Vocab,
    clips: ClipAudio,
    train_part: Events,
    valid_part: Events,
    out: Path,
    k: int,
    max_pairs: int,
) -> dict[str, Any]:
    """The served blend's weights (evaluate.tune_blend_weights) for the phase-1 model, exported
    beside `out` for the while (the tuning scores through the served path)."""
    from radio_engine.model.runtime import ServingModel
    from radio_engine.training.evaluate import tune_blend_weights

    tmp_dir = out.with_name(out.name + ".phase1")
    export_with_vocab(model, tmp_dir, vocab, clips.encoder)
    try:
        print(
            "train: tuning the served blend (GRU + session signals) on the validation split",
            flush=True,
        )
        return tune_blend_weights(
            train_part,
            valid_part,
            k=k,
            model=ServingModel(tmp_dir),
            max_gru_pairs=max_pairs,
            progress=sys.stderr.isatty(),
        )
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def _summary(
    best: dict[str, Any],
    blend: dict[str, Any],
    final: ListenerModel,
    ran: int,
    config: TrainConfig,
    inputs: TrainInputs,
    clock: _Clock,
    trained_on: dict[str, Any],
) -> dict[str, Any]:
    """The manifest's metrics: the chosen epoch's validation figures, the tuned blend's, the
    refit's learned indicator weights, and how the run went."""
    return {
        "valid_hr@20": best.get("valid_hr"),
        "valid_mrr@20": best.get("valid_mrr"),
        "valid_hr@20_gru_alone": best.get("valid_gru_hr"),
        "valid_hr@20_indicators_alone": best.get("valid_signals_hr"),
        "valid_blend": blend.get("valid", {}),
        "epochs": ran,
        # learned only when the indicators join the training logits
        "session_weights": (
            dict(zip(INDICATORS, final.session_weights.detach().tolist(), strict=True))
            if config.indicators_in_loss
            else None
        ),
        "audio_steps": config.audio_steps if inputs.audio else 0,
        "max_minutes": config.max_minutes,
        "stopped_early": [stop.as_dict() for stop in clock.stops],
        "training_data": trained_on,
    }

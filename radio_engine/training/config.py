"""Every hyper-parameter of `radio-engine train` in one typed, frozen config.

The command line builds a TrainConfig (`from_args`), training reads only it, and the model
directory records it (manifest.json `train_config`, report.md), so a model says exactly how it
was trained. The defaults were chosen on a validation split of the 30Music development file
(the nested split inside /tmp/split/train.csv; see the README's "Model" section). This module
imports nothing heavy: the CLI reads its defaults.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from typing import Any

#: accepted values of TrainConfig.artist_init
ARTIST_INITS = ("cooccurrence", "random")


def _setting(default: Any, doc: str) -> Any:
    """A config field with its one-line doc (read by TrainConfig.describe)."""
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class TrainConfig:
    """The hyper-parameters of one training run; see each field's doc (`describe`)."""

    epochs: int = _setting(10, "validated epochs of phase 1; the refit runs as many as the best")
    seed: int = _setting(7, "seed of the GRU's initial weights, batches, negatives and dropout")
    audio_steps: int = _setting(300, "steps of the audio encoder on the --audio clips")
    max_minutes: float | None = _setting(
        None, "opt-in guard: end a phase between epochs once past this (None: never)"
    )
    id_only: bool = _setting(False, "ablation: tracks are their ids alone (no artist, no audio)")
    feedback: bool = _setting(
        True, "skips and dislikes are inputs but never targets (False: every event a play)"
    )
    validation_days: float = _setting(
        1.0, "without --valid: sessions starting in each fold's last days validate"
    )
    batch: int = _setting(64, "session-parallel slots: listeners stepped together")
    negatives: int = _setting(1024, "popularity-sampled negatives per step, besides in-batch ones")
    sampling_exponent: float = _setting(0.75, "negatives are drawn by popularity ** this")
    bptt: int = _setting(8, "steps between two back-propagations (truncated BPTT)")
    learning_rate: float = _setting(2e-3, "Adam step of every weight but the indicator weights")
    final_learning_rate_share: float = _setting(
        0.05,
        "the learning rate falls along a cosine from its start to this share of it at the last "
        "planned epoch (1.0: constant)",
    )
    schedule_epochs: int | None = _setting(
        None, "epochs the learning-rate schedule spans (None: epochs; the refit keeps phase 1's)"
    )
    session_weights_learning_rate: float = _setting(
        0.05, "Adam step of the learned session-indicator weights (a few scalars)"
    )
    grad_clip: float = _setting(5.0, "largest gradient norm of a step")
    dropout: float = _setting(0.3, "dropout of the GRU's step input and head while training")
    id_dropout: float = _setting(
        0.3, "share of input events and of candidates whose track id is hidden while training"
    )
    tied_tables: bool = _setting(
        True, "one vector per track for input and output (GRU4Rec's constrained embedding)"
    )
    session_window: int = _setting(
        64, "events of a slot the session indicators look back over in training"
    )
    indicators_in_loss: bool = _setting(
        False,
        "learned weights x session indicators join the training logits (False: the GRU learns "
        "the next track alone, epochs are chosen on the GRU alone, the served blend adds them)",
    )
    artist_init: str = _setting(
        "cooccurrence",
        "artist vectors start as the SVD of within-session artist PPMI ('cooccurrence') or "
        "random ('random')",
    )
    cooccurrence_window: int = _setting(
        3, "artist pairs up to this many accepted events apart in a session count together"
    )
    blend_tuning_pairs: int = _setting(
        20000, "at most this many warm validation pairs tune the served blend with the GRU"
    )
    k: int = _setting(20, "cut-off of HR@k / MRR@k: epochs are chosen and the blend tuned on it")
    threads: int = _setting(2, "PyTorch threads")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> TrainConfig:
        """The config the `train` command line asks for; options it lacks keep their defaults."""
        given = {
            "epochs": getattr(args, "epochs", None),
            "seed": getattr(args, "seed", None),
            "audio_steps": getattr(args, "audio_steps", None),
            "max_minutes": getattr(args, "max_minutes", None),
            "id_only": bool(getattr(args, "id_only", False)),
            "feedback": not getattr(args, "no_feedback", False),
            "threads": getattr(args, "threads", None),
            "artist_init": getattr(args, "artist_init", None),
            "indicators_in_loss": bool(getattr(args, "indicators_in_loss", False)),
        }
        return cls(**{k: v for k, v in given.items() if v is not None})

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, not {self.epochs}")
        if self.artist_init not in ARTIST_INITS:
            raise ValueError(f"artist_init must be one of {ARTIST_INITS}, not {self.artist_init!r}")

    @property
    def choice_key(self) -> str:
        """The validation figure phase 1 keeps its best epoch by (a key of the epoch log)."""
        return "valid_hr" if self.indicators_in_loss else "valid_gru_hr"

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain values by field name (manifest.json's `train_config`)."""
        return dataclasses.asdict(self)

    @classmethod
    def describe(cls) -> list[tuple[str, str, Any, str]]:
        """(name, type, default, doc) of every field, in order."""
        return [
            (f.name, str(f.type), f.default, f.metadata["doc"]) for f in dataclasses.fields(cls)
        ]

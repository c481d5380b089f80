"""What a training run says about itself: the data it learned from, the curves, report.md.

report.md and report.json sit beside the model. Everything before report.md's last section
("## Timing") and everything in report.json but its "timing" is the same for the same data,
seed and config: wall-clock times live only there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from radio_engine.model.session_indicators import accepted_feedback
from radio_engine.training.config import TrainConfig
from radio_engine.training.data import Events

#: report.md's last section: the only lines that change from run to run (wall-clock times)
TIMING_HEADER = "## Timing"


@dataclass(frozen=True)
class EarlyStop:
    """A phase that the opt-in --max-minutes guard ended between epochs, and what that cost."""

    phase: str
    after_epoch: int
    epochs: int
    limit_minutes: float

    @property
    def skipped(self) -> int:
        """Epochs of the phase that never ran."""
        return self.epochs - self.after_epoch

    def describe(self) -> str:
        """One plain sentence for the console and report.md."""
        return (
            f"{self.phase} STOPPED EARLY by --max-minutes {self.limit_minutes:g}: after epoch "
            f"{self.after_epoch} of {self.epochs}, {self.skipped} epoch(s) skipped"
        )

    def as_dict(self) -> dict[str, Any]:
        """The same facts for the manifest's metrics."""
        return {
            "phase": self.phase,
            "after_epoch": self.after_epoch,
            "epochs": self.epochs,
            "epochs_skipped": self.skipped,
            "limit_minutes": self.limit_minutes,
        }


def training_data(path: Path, events: Events, feedback: bool) -> dict[str, Any]:
    """What the model learned feedback from, for the console, manifest and report.md: the data
    (SIMULATED when `simulate` labelled its folder), its feedback counts, with or without."""
    from radio_engine.training.simulated_listeners import LABEL, LABEL_FILE

    simulated = (path.parent / LABEL_FILE).is_file()
    kinds, counts = np.unique(events.event, return_counts=True)
    events_by_kind = {str(k): int(n) for k, n in zip(kinds, counts, strict=True)}
    rejected = int((~accepted_feedback(events.event)).sum())
    data = f"{LABEL} listeners ({path})" if simulated else str(path)
    if not feedback:
        how = "no (--no-feedback: every event read as a play, every next event a target)"
    elif rejected:
        how = f"yes ({rejected} skip/dislike events are inputs but never targets)"
    else:
        how = "yes, but every event is a play: nothing to mask, the same pairs as without"
    sentence = f"Trained with feedback: {how}. Data: {data}; events {events_by_kind}."
    return {
        "with_feedback": feedback,
        "data": data,
        "simulated": simulated,
        "events": events_by_kind,
        "sentence": sentence,
    }


@dataclass(frozen=True)
class TrainingReport:
    """Everything report.md, report.json and training.png show about one run."""

    config: TrainConfig
    history: list[dict[str, Any]]
    audio_loss: list[float]
    summary: dict[str, Any]
    stops: list[EarlyStop]
    timing: dict[str, float]
    n_train: int
    n_valid: int

    def write(self, out: Path) -> None:
        """training.png, report.json and report.md into the model directory."""
        self._plot(out / "training.png")
        (out / "report.json").write_text(json.dumps(self._json(), indent=2, default=float))
        (out / "report.md").write_text("\n".join(self._markdown()) + "\n")

    def _plot(self, path: Path) -> None:
        """The loss and validation curves (and the audio encoder's loss)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        history, audio_loss = self.history, self.audio_loss
        fig, axes = plt.subplots(1, 3 if audio_loss else 2, figsize=(13, 3.6))
        epochs = [h["epoch"] for h in history]
        axes[0].plot(epochs, [h["loss"] for h in history], marker="o")
        axes[0].set(title="listener GRU: training loss", xlabel="epoch", ylabel="sampled softmax")
        for key, label in (
            ("valid_hr", "GRU + session indicators"),
            ("valid_signals_hr", "indicators alone"),
            ("valid_gru_hr", "GRU alone"),
        ):
            axes[1].plot(epochs, [h.get(key, np.nan) for h in history], marker="o", label=label)
        axes[1].set(title="validation HR@20", xlabel="epoch")
        axes[1].legend()
        if audio_loss:
            axes[2].plot(audio_loss)
            axes[2].set(title="audio encoder: InfoNCE", xlabel="step")
        fig.tight_layout()
        fig.savefig(path, dpi=110)

    def _json(self) -> dict[str, Any]:
        return {
            "train_events": self.n_train,
            "valid_events": self.n_valid,
            "history": [{k: v for k, v in h.items() if k != "seconds"} for h in self.history],
            "metrics": self.summary,
            "train_config": self.config.to_dict(),
            "timing": {
                "seconds": self.timing,
                "phase1_epoch_seconds": [h["seconds"] for h in self.history],
            },
        }

    def _markdown(self) -> list[str]:
        summary, history, timing = self.summary, self.history, self.timing
        nan = float("nan")
        limit = summary.get("max_minutes")
        lines = [
            "# Training report",
            "",
            f"{self.n_train} training / {self.n_valid} validation events; refit: "
            f"{summary['epochs']} epoch(s); audio encoder: {summary.get('audio_steps', 0)} steps.",
            "",
            "Stopped on epoch and step counts only."
            if limit is None
            else f"Time limit --max-minutes {limit:g} (checked between epochs only).",
            "",
            summary["training_data"]["sentence"],
        ]
        for stop in self.stops:
            lines += ["", f"**{stop.describe()}.**"]
        lines += [
            "",
            "Validation HR@20 / MRR@20 on next-track pairs of the validation sessions: the GRU",
            "plus the session indicators (fixed weights unless they train beside it), and each",
            f"part alone. Epochs are chosen by `{self.config.choice_key}`.",
            "",
            "| epoch | loss | HR@20 | MRR@20 | HR@20 GRU alone | MRR@20 GRU alone "
            "| HR@20 indicators alone |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        lines += [
            f"| {h['epoch']} | {h['loss']:.4f} | {h.get('valid_hr', nan):.4f} | "
            f"{h.get('valid_mrr', nan):.4f} | {h.get('valid_gru_hr', nan):.4f} | "
            f"{h.get('valid_gru_mrr', nan):.4f} | {h.get('valid_signals_hr', nan):.4f} |"
            for h in history
        ]
        lines += [
            "",
            f"Served blend tuned on validation: `{json.dumps(summary.get('valid_blend', {}))}`",
            "(hr_served vs hr_served_no_gru: the same pairs with the GRU switched off).",
            "",
            "![curves](training.png)",
            "",
            "## Training config",
            "",
            "| setting | value | what |",
            "| --- | --- | --- |",
        ]
        values = self.config.to_dict()
        lines += [
            f"| `{name}` | `{values[name]}` | {doc} |" for name, _, _, doc in TrainConfig.describe()
        ]
        epoch_seconds = ", ".join(f"{h['seconds']:.0f}" for h in history)
        lines += [
            "",
            TIMING_HEADER,
            "",
            f"Wall clock on this machine (varies with load; nothing above depends on it): "
            f"{timing['total'] / 60:.1f} min in all, audio features and encoder "
            f"{timing['audio']:.0f} s, phase-1 epochs (train + validation) {epoch_seconds} s.",
        ]
        return lines

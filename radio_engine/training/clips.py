"""The --audio clips of a training run: their features, the audio encoder trained on them (no
labels), and each clip's embedding by track id.

A metadata.csv (--metadata, or one in the folder) names the clips, as produce-audio reads it;
without one every audio file counts, named by its stem. Features are the worker's own streaming
MFCC + deltas (audio.features), so a clip is embedded in training as it is when it arrives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from radio_engine.training.audio_model import AudioEncoder
from radio_engine.training.progress import Progress


@dataclass(frozen=True)
class ClipAudio:
    """The trained encoder (None without --audio), its loss per step, and the clip embeddings."""

    encoder: AudioEncoder | None = None
    loss: list[float] = field(default_factory=list)
    track_audio: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def train(cls, folder: Path | None, metadata: Path | None, steps: int) -> ClipAudio:
        """The encoder trained for `steps` on the clips of `folder`; empty without a folder."""
        if folder is None:
            return cls()
        from radio_engine.audio.decode import load_audio_file
        from radio_engine.audio.features import track_features
        from radio_engine.audio.files import find_tracks, read_metadata
        from radio_engine.training.audio_model import embed_clips, train_audio_encoder

        metadata = metadata or folder / "metadata.csv"
        # a metadata.csv (--metadata, or in the folder) names the clips; other files are not used
        found = metadata.is_file()
        tracks = read_metadata(metadata, metadata.parent) if found else find_tracks(folder)
        print(f"train: audio features of {len(tracks)} clips", flush=True)
        shown = Progress("audio features", len(tracks))
        features = []
        for t in tracks:
            features.append(track_features(*load_audio_file(t.path)))
            shown.update()
        shown.close()
        print(f"train: audio encoder, {steps} steps", flush=True)
        module, history = train_audio_encoder(features, steps=steps)
        embeddings = embed_clips(module, features)
        by_track = {t.track_id: e for t, e in zip(tracks, embeddings, strict=True)}
        return cls(module, history["loss"], by_track)

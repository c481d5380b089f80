"""Serving a model directory with onnxruntime and numpy alone (no PyTorch at serve time)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from radio_engine.model.manifest import FILES, Manifest, read_manifest


def _session(path: Path, threads: int) -> ort.InferenceSession:
    """One CPU inference session; one intra-op thread per worker process is the fast setting."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@dataclass(frozen=True)
class TrackTable:
    """The tracks a model learned in training, with their precomputed vectors."""

    track_ids: np.ndarray  # str [N]
    artist_ids: np.ndarray  # str [N], '' when unknown
    track_in: np.ndarray  # float32 [N, track_in]
    track_out: np.ndarray  # float32 [N, query]
    popularity: np.ndarray  # float32 [N], training play counts


class ServingModel:
    """The three ONNX parts of a model directory plus its track table and vocabularies."""

    def __init__(self, model_dir: Path | str, threads: int = 1) -> None:
        self.dir = Path(model_dir)
        self.manifest: Manifest = read_manifest(self.dir)
        self.dims = self.manifest.dims
        self._step = _session(self.dir / FILES["listener_step"], threads)
        self._tracks = _session(self.dir / FILES["track_encoder"], threads)
        self._audio = _session(self.dir / FILES["audio_encoder"], threads)
        with np.load(self.dir / FILES["tracks"], allow_pickle=False) as t:
            self.tracks = TrackTable(
                track_ids=t["track_ids"].astype(str),
                artist_ids=t["artist_ids"].astype(str),
                track_in=t["track_in"].astype(np.float32),
                track_out=t["track_out"].astype(np.float32),
                popularity=t["popularity"].astype(np.float32),
            )
        with np.load(self.dir / FILES["vocab"], allow_pickle=False) as v:
            self.h0 = v["h0"].astype(np.float32)
            artists = v["artist_vocab"].astype(str)
        self.artist_index = {a: i + 1 for i, a in enumerate(artists)}
        self.track_index = {t: i + 1 for i, t in enumerate(self.tracks.track_ids)}

    @property
    def version(self) -> str:
        return self.manifest.version

    def step(self, x: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One GRU step for a batch: (h_next [B, hidden], q [B, query])."""
        h_next, q = self._step.run(
            ["h_next", "q"],
            {"x": np.ascontiguousarray(x, np.float32), "h": np.ascontiguousarray(h, np.float32)},
        )
        return h_next, q

    def encode_tracks(
        self,
        id_index: np.ndarray,
        artist_index: np.ndarray,
        audio: np.ndarray,
        has_audio: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Input and output vectors for tracks from their parts: (track_in, track_out).

        An id-only model's encoder reads no artist or audio (the export drops unused inputs), so
        only the inputs the graph declares are fed.
        """
        feeds = {
            "id_index": np.asarray(id_index, np.int64),
            "artist_index": np.asarray(artist_index, np.int64),
            "audio": np.ascontiguousarray(audio, np.float32),
            "has_audio": np.asarray(has_audio, np.float32),
        }
        declared = {i.name for i in self._tracks.get_inputs()}
        track_in, track_out = self._tracks.run(
            ["track_in", "track_out"], {k: v for k, v in feeds.items() if k in declared}
        )
        return track_in, track_out

    def embed_audio(self, features: np.ndarray) -> np.ndarray:
        """A track's audio embedding from its MFCC + delta frames [T, audio_features]."""
        (embedding,) = self._audio.run(
            ["embedding"], {"features": np.ascontiguousarray(features, np.float32)}
        )
        return embedding

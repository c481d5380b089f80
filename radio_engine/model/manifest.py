"""The model directory format shared by the exporter (training/export.py) and the worker.

A model directory holds:

| file | what |
| --- | --- |
| manifest.json | format, version, dims, feature spec, training-data hash, metrics, the training config (`train_config`: every hyper-parameter, training/config.py) |
| listener_step.onnx | x[B, step_input] float32, h[B, hidden] float32 -> h_next[B, hidden], q[B, query] |
| track_encoder.onnx | id_index[B] int64, artist_index[B] int64, audio[B, audio_embedding] float32, has_audio[B] float32 -> track_in[B, track_in], track_out[B, query] |
| audio_encoder.onnx | features[T, audio_features] float32 (MFCC + deltas frames) -> embedding[audio_embedding] |
| tracks.npz | the tracks learned in training: track_ids, artist_ids (str, '' unknown), track_in, track_out, popularity |
| vocab.npz | artist_vocab (str; artist index = position + 1, 0 = unknown), h0[hidden] (a new listener's state) |

Index 0 of ids and artists is the learned "unknown" vector. A track's score for a listener is
track_out @ q: the selector scores a whole catalog with one matrix product.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

FORMAT = "radio-engine-model/1"
FILES = {
    "manifest": "manifest.json",
    "listener_step": "listener_step.onnx",
    "track_encoder": "track_encoder.onnx",
    "audio_encoder": "audio_encoder.onnx",
    "tracks": "tracks.npz",
    "vocab": "vocab.npz",
}


@dataclass(frozen=True)
class Dims:
    """Sizes of every tensor that crosses the model's interfaces."""

    track_in: int
    context: int
    hidden: int
    query: int
    audio_features: int
    audio_embedding: int

    @property
    def step_input(self) -> int:
        return self.track_in + self.context


@dataclass(frozen=True)
class Manifest:
    """What a model directory says about itself."""

    version: str
    dims: Dims
    feature_spec: dict[str, Any]
    training_data_sha256: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    trained: bool = True
    format: str = FORMAT
    train_config: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        body = asdict(self)
        body["dims"]["step_input"] = self.dims.step_input
        body["files"] = FILES
        return json.dumps(body, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        body = json.loads(text)
        if body.get("format") != FORMAT:
            raise ValueError(f"model format {body.get('format')!r} is not {FORMAT!r}")
        dims = dict(body["dims"])
        dims.pop("step_input", None)
        return cls(
            version=body["version"],
            dims=Dims(**dims),
            feature_spec=body.get("feature_spec", {}),
            training_data_sha256=body.get("training_data_sha256", ""),
            metrics=body.get("metrics", {}),
            created_at=body.get("created_at", ""),
            trained=body.get("trained", True),
            train_config=body.get("train_config", {}),
        )


def read_manifest(model_dir: Path) -> Manifest:
    """Read and check a model directory's manifest, with errors that say what is missing."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise FileNotFoundError(
            f"model directory {model_dir} does not exist: train one with "
            "`radio-engine train --events CSV --out DIR` or set RADIO_MODEL_DIR"
        )
    missing = [name for name in FILES.values() if not (model_dir / name).exists()]
    if missing:
        raise FileNotFoundError(f"model directory {model_dir} lacks {', '.join(missing)}")
    return Manifest.from_json((model_dir / FILES["manifest"]).read_text())


def write_manifest(model_dir: Path, manifest: Manifest) -> Path:
    """Write manifest.json into a model directory."""
    path = Path(model_dir) / FILES["manifest"]
    path.write_text(manifest.to_json())
    return path

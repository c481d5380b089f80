"""Export a trained (or untrained) model to the directory format of radio_engine.model.manifest.

The same function writes every model the engine serves, so tests and the first demos run the
exact serving path a trained model takes.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from radio_engine.audio.features import FEATURE_DIM, FEATURE_SPEC
from radio_engine.model.inputs import CONTEXT_NAMES, FEEDBACK_TYPES, SESSION_GAP_S
from radio_engine.model.manifest import FILES, Dims, Manifest, write_manifest
from radio_engine.training.audio_model import (
    AudioEncoder,
    export_audio_encoder,
    untrained_audio_encoder,
)
from radio_engine.training.data import Events
from radio_engine.training.encoding import Vocab
from radio_engine.training.model import ListenerModel

OPSET = 17


def feature_spec(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a step input and an audio frame are made of, for the manifest."""
    spec: dict[str, Any] = {
        "step_input": "[track_in | context]",
        "context": list(CONTEXT_NAMES),
        "feedback_types": list(FEEDBACK_TYPES),
        "session_gap_s": SESSION_GAP_S,
        "audio_features": FEATURE_SPEC,
        "state_policy": "kept across sessions; learned h0 for a new listener; no resets",
    }
    spec.update(extra or {})
    return spec


def export_model(
    model: ListenerModel,
    out_dir: Path | str,
    *,
    track_ids: list[str],
    artist_ids: list[str],
    artist_vocab: list[str],
    popularity: np.ndarray,
    audio_module: AudioEncoder | None = None,
    track_audio: dict[str, np.ndarray] | None = None,
    spec_extra: dict[str, Any] | None = None,
    data_sha256: str = "",
    metrics: dict[str, Any] | None = None,
    trained: bool = True,
    train_config: dict[str, Any] | None = None,
) -> Path:
    """Write the ONNX parts, the track table, the vocabularies and the manifest into out_dir.

    track_ids[i] has id index i + 1 and artist artist_ids[i] (index in artist_vocab + 1, or 0);
    track_audio optionally gives audio embeddings for some tracks (simulated clips).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    dims = model.dims
    audio_module = audio_module or untrained_audio_encoder(dims["audio_embedding"])
    artist_lookup = {a: i + 1 for i, a in enumerate(artist_vocab)}
    with torch.no_grad():
        _export_step(model, out / FILES["listener_step"])
        _export_track_encoder(model, out / FILES["track_encoder"])
        export_audio_encoder(audio_module, out / FILES["audio_encoder"])
        n = len(track_ids)
        audio = np.zeros((n, dims["audio_embedding"]), dtype=np.float32)
        has_audio = np.zeros(n, dtype=np.float32)
        for i, tid in enumerate(track_ids):
            if track_audio and tid in track_audio:
                audio[i] = track_audio[tid]
                has_audio[i] = 1.0
        track_in, track_out = model.tracks(
            torch.arange(1, n + 1),
            torch.tensor([artist_lookup.get(a, 0) for a in artist_ids], dtype=torch.long),
            torch.from_numpy(audio),
            torch.from_numpy(has_audio),
        )
        np.savez(
            out / FILES["tracks"],
            track_ids=np.asarray(track_ids, dtype=str),
            artist_ids=np.asarray(artist_ids, dtype=str),
            track_in=track_in.numpy().astype(np.float32),
            track_out=track_out.numpy().astype(np.float32),
            popularity=np.asarray(popularity, dtype=np.float32),
        )
        np.savez(
            out / FILES["vocab"],
            artist_vocab=np.asarray(artist_vocab, dtype=str),
            h0=model.h0.detach().numpy().astype(np.float32),
        )
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    digest = hashlib.sha256((out / FILES["listener_step"]).read_bytes()).hexdigest()[:8]
    manifest = Manifest(
        version=f"{stamp}-{digest}",
        dims=Dims(
            track_in=dims["track_in"],
            context=dims["context"],
            hidden=dims["hidden"],
            query=dims["query"],
            audio_features=FEATURE_DIM,
            audio_embedding=dims["audio_embedding"],
        ),
        feature_spec=feature_spec(spec_extra),
        training_data_sha256=data_sha256,
        metrics=metrics or {},
        created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        trained=trained,
        train_config=train_config or {},
    )
    write_manifest(out, manifest)
    return out


def export_with_vocab(
    model: ListenerModel, out: Path, vocab: Vocab, audio_module: AudioEncoder | None, **extra: Any
) -> Path:
    """export_model with the vocabulary's tracks, artists, popularity and audio."""
    return export_model(
        model,
        out,
        track_ids=vocab.track_ids,
        artist_ids=vocab.track_artists,
        artist_vocab=vocab.artists,
        popularity=vocab.popularity,
        audio_module=audio_module,
        track_audio=vocab.track_audio,
        **extra,
    )


def export_rules(events: Events, out: Path) -> Path:
    """The sequential-rules table of `events` over an exported model's track table
    (transitions.npz, which the selector serves)."""
    from radio_engine.model.runtime import ServingModel
    from radio_engine.model.transitions import save_transitions
    from radio_engine.training.rules import build_rules

    model = ServingModel(out)
    return save_transitions(out, build_rules(events, model.tracks.track_ids))


def _export_step(model: ListenerModel, path: Path) -> None:
    d = model.dims
    x = torch.zeros(2, d["track_in"] + d["context"])
    h = torch.zeros(2, d["hidden"])
    torch.onnx.export(
        model.step,
        (x, h),
        str(path),
        input_names=["x", "h"],
        output_names=["h_next", "q"],
        dynamic_axes={
            "x": {0: "batch"},
            "h": {0: "batch"},
            "h_next": {0: "batch"},
            "q": {0: "batch"},
        },
        opset_version=OPSET,
        dynamo=False,
    )


def _export_track_encoder(model: ListenerModel, path: Path) -> None:
    a = model.dims["audio_embedding"]
    args = (
        torch.zeros(2, dtype=torch.long),
        torch.zeros(2, dtype=torch.long),
        torch.zeros(2, a),
        torch.zeros(2),
    )
    names = ["id_index", "artist_index", "audio", "has_audio"]
    torch.onnx.export(
        model.tracks,
        args,
        str(path),
        input_names=names,
        output_names=["track_in", "track_out"],
        dynamic_axes={
            **{n: {0: "batch"} for n in names},
            "track_in": {0: "batch"},
            "track_out": {0: "batch"},
        },
        opset_version=OPSET,
        dynamo=False,
    )


def export_random_model(
    out_dir: Path | str, track_ids: list[str], artist_ids: list[str], seed: int = 0
) -> Path:
    """A model directory from untrained weights, through the same export (tests, first demos)."""
    torch.manual_seed(seed)
    vocab = sorted({a for a in artist_ids if a})
    model = ListenerModel(len(track_ids), len(vocab))
    return export_model(
        model,
        out_dir,
        track_ids=list(track_ids),
        artist_ids=list(artist_ids),
        artist_vocab=vocab,
        popularity=np.ones(len(track_ids), dtype=np.float32),
        trained=False,
    )

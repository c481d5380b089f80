"""Audio chunks of a real clip -> one track record; broken sequences and bytes are refused."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import orjson
import pytest

from radio_engine import schemas
from radio_engine.audio.assembly import AudioAssembler
from radio_engine.audio.decode import encode_chunks, load_audio_file
from radio_engine.audio.features import FEATURE_DIM, track_features
from radio_engine.model.runtime import ServingModel
from radio_engine.schemas import BadMessage
from radio_engine.settings import Settings

CLIP = Settings().data_path / "game-music" / "clips" / "asc-music" / "frontiers.ogg"


def chunk_messages(path: Path, track_id: str, fmt: str = "flac") -> list[bytes]:
    samples, rate = load_audio_file(path)
    chunks = encode_chunks(samples, rate, fmt, chunk_seconds=7.0)
    out = []
    for seq, data in enumerate(chunks):
        body = {
            "track_id": track_id,
            "seq": seq,
            "last": seq == len(chunks) - 1,
            "format": fmt,
            "data": base64.b64encode(data).decode(),
        }
        if seq == 0:
            body["metadata"] = {"artist_id": "composer", "title": "Frontiers"}
        out.append(orjson.dumps(body))
    return out


def assembler(model: ServingModel, **kw: float) -> AudioAssembler:
    limits = {"max_chunk_bytes": 768 * 1024, "max_track_seconds": 1200.0, **kw}
    return AudioAssembler(model.embed_audio, model.version, **limits)  # type: ignore[arg-type]


def test_chunks_of_a_real_clip_make_one_track_with_the_whole_file_embedding(
    tiny_model: ServingModel,
) -> None:
    a = assembler(tiny_model)
    messages = chunk_messages(CLIP, "frontiers")
    assert len(messages) == 5
    results = [a.accept(b"frontiers", m) for m in messages]
    assert results[:-1] == [None] * 4
    record = schemas.validate("track", results[-1])
    assert record["artist_id"] == "composer" and record["title"] == "Frontiers"
    assert record["audio_seconds"] == pytest.approx(30.0, abs=0.01)
    # the same embedding as featurising the decoded whole (FLAC is 16-bit: compare after quantising)
    samples, rate = load_audio_file(CLIP)
    quantised = np.round(np.clip(samples, -1, 1) * 32767) / 32768
    expected = tiny_model.embed_audio(track_features(quantised.astype(np.float32), rate))
    assert np.allclose(record["embedding"], expected, atol=1e-3)
    assert not a.in_progress


def test_a_gap_in_the_sequence_is_out_of_order_and_abandons_the_track(
    tiny_model: ServingModel,
) -> None:
    a = assembler(tiny_model)
    messages = chunk_messages(CLIP, "frontiers")
    a.accept(b"frontiers", messages[0])
    with pytest.raises(BadMessage) as info:
        a.accept(b"frontiers", messages[2])
    assert info.value.reason == "out_of_order" and "expected seq 1" in info.value.error
    with pytest.raises(BadMessage, match="out_of_order"):
        a.accept(b"frontiers", messages[3])  # nothing in progress any more


def test_tracks_that_never_finish_are_evicted_oldest_first(tiny_model: ServingModel) -> None:
    """A producer that starts tracks and never sends their last chunk cannot grow memory."""
    a = assembler(tiny_model, max_in_progress=2)
    firsts = {name: chunk_messages(CLIP, name)[:2] for name in ("t1", "t2", "t3")}
    for name, (first, _) in firsts.items():
        assert a.accept(name.encode(), first) is None
    assert list(a.in_progress) == ["t2", "t3"] and a.evicted == 1
    with pytest.raises(BadMessage) as info:  # t1 was evicted: its next chunk has nowhere to go
        a.accept(b"t1", firsts["t1"][1])
    assert info.value.reason == "out_of_order" and "no track in progress" in info.value.error
    assert a.accept(b"t3", firsts["t3"][1]) is None  # the ones kept go on


def test_corrupt_and_oversize_audio_are_refused(tiny_model: ServingModel) -> None:
    a = assembler(tiny_model)
    corrupt = orjson.dumps(
        {
            "track_id": "x",
            "seq": 0,
            "last": True,
            "format": "ogg",
            "data": base64.b64encode(b"OggS" + bytes(500)).decode(),
        }
    )
    with pytest.raises(BadMessage) as info:
        a.accept(b"x", corrupt)
    assert info.value.reason == "bad_audio"
    small = assembler(tiny_model, max_track_seconds=10.0)
    messages = chunk_messages(CLIP, "long")
    small.accept(b"long", messages[0])
    with pytest.raises(BadMessage, match="oversize"):
        small.accept(b"long", messages[1])
    with pytest.raises(BadMessage, match="key_mismatch"):
        a.accept(b"other", messages[0])


def test_feature_dim_matches_the_model(tiny_model: ServingModel) -> None:
    assert tiny_model.dims.audio_features == FEATURE_DIM

"""The catalog: the model's table, audio tracks through the real track encoder, growth, changes."""

from __future__ import annotations

import numpy as np
import pytest

from radio_engine import catalog as catalog_module
from radio_engine.catalog import Catalog
from radio_engine.model.runtime import ServingModel


def audio_record(track_id: str, value: float, dim: int, **extra: str) -> dict:
    rng = np.random.default_rng(int(value * 1000) % 2**32)
    emb = rng.normal(size=dim) + value
    return {"track_id": track_id, "embedding": emb.tolist(), "model_version": "m", **extra}


def test_from_model_holds_the_track_table(tiny_model: ServingModel) -> None:
    t = tiny_model.tracks
    c = Catalog.from_model(tiny_model)
    assert c.size == len(c) == 40 and c.epoch == 1 and c.audio_count == 0
    assert c.ids == t.track_ids.tolist() and c.rows(["t7", "nope"]).tolist() == [7, -1]
    np.testing.assert_array_equal(c.track_out, t.track_out)
    np.testing.assert_array_equal(c.track_in, t.track_in)
    assert c.artist_of("t9") == "a1" and c.artist_of("zzz") == ""
    # rows of one artist share a code; different artists differ
    codes = c.artist_codes
    assert codes[1] == codes[9] != codes[2] and c.codes(["a1", "", "nobody"]).tolist() == [
        codes[1],
        -1,
        -1,
    ]


def test_a_new_audio_track_is_encoded_by_the_model(tiny_model: ServingModel) -> None:
    c = Catalog.from_model(tiny_model)
    dim = tiny_model.dims.audio_embedding
    rec = audio_record("fresh", 0.5, dim, artist_id="a3", title="Overworld")
    row = c.upsert_audio_track(rec, tiny_model)
    assert row == 40 and c.epoch == 2 and c.audio_count == 1 and len(c) == 41
    expect_in, expect_out = tiny_model.encode_tracks(
        np.array([0]),  # an id the model never saw
        np.array([tiny_model.artist_index["a3"]]),
        np.asarray(rec["embedding"], np.float32)[None],
        np.ones(1, np.float32),
    )
    np.testing.assert_allclose(c.track_in[row], expect_in[0], atol=1e-6)
    np.testing.assert_allclose(c.track_out[row], expect_out[0], atol=1e-6)
    assert c.has_audio[row] and c.artist_codes[row] == c.artist_codes[3]
    assert c.describe(["fresh"]) == [{"track_id": "fresh", "artist_id": "a3", "title": "Overworld"}]
    assert c.changed_rows_since(1).tolist() == [40] and c.changed_rows_since(2).tolist() == []


def test_audio_for_a_known_track_uses_its_learned_id(tiny_model: ServingModel) -> None:
    c = Catalog.from_model(tiny_model)
    rec = audio_record("t5", 0.1, tiny_model.dims.audio_embedding, artist_id="a5")
    assert c.upsert_audio_track(rec, tiny_model) == 5 and c.size == 40
    _, expect_out = tiny_model.encode_tracks(
        np.array([tiny_model.track_index["t5"]]),
        np.array([tiny_model.artist_index["a5"]]),
        np.asarray(rec["embedding"], np.float32)[None],
        np.ones(1, np.float32),
    )
    np.testing.assert_allclose(c.track_out[5], expect_out[0], atol=1e-6)
    assert not np.allclose(c.track_out[5], tiny_model.tracks.track_out[5])


def test_an_embedding_of_the_wrong_size_is_refused(tiny_model: ServingModel) -> None:
    c = Catalog.from_model(tiny_model)
    with pytest.raises(ValueError, match="embedding has 3 values"):
        c.upsert_audio_track(
            {"track_id": "x", "embedding": [1, 2, 3], "model_version": "m"}, tiny_model
        )
    assert c.epoch == 1 and c.size == 40


def test_growth_past_capacity_keeps_every_row(tiny_model: ServingModel) -> None:
    dim = tiny_model.dims.audio_embedding
    c = Catalog(tiny_model.dims.track_in, tiny_model.dims.query, capacity=2)
    outs = []
    for i in range(9):
        c.upsert_audio_track(audio_record(f"n{i}", i, dim, artist_id=f"x{i % 2}"), tiny_model)
        outs.append(c.track_out[i].copy())
    assert len(c) == 9 and c._out.shape[0] == 16  # 2 -> 4 -> 8 -> 16
    np.testing.assert_array_equal(c.track_out, np.stack(outs))
    assert c.artist_codes.tolist() == [0, 1] * 4 + [0]
    c.remove("n4")
    assert len(c) == 8 and not c.active[4] and c.epoch == 10
    c.remove("n4")  # a second tombstone changes nothing
    assert c.epoch == 10 and c.changed_rows_since(8).tolist() == [4, 8]


def test_track_in_for_events_counts_and_caches_unknown_tracks(
    tiny_model: ServingModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = Catalog.from_model(tiny_model)
    calls: list[int] = []
    real = tiny_model.encode_tracks

    def counting(*args: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        calls.append(len(args[0]))
        return real(*args)

    monkeypatch.setattr(tiny_model, "encode_tracks", counting)
    vecs, unknown = c.track_in_for(["t3", "new1", "new2", "t0"], ["a3", "a2", "a2", ""], tiny_model)
    assert unknown == 2 and c.unknown_total == 2
    np.testing.assert_array_equal(vecs[0], tiny_model.tracks.track_in[3])
    np.testing.assert_array_equal(vecs[3], tiny_model.tracks.track_in[0])
    expect, _ = real(
        np.array([0]),
        np.array([tiny_model.artist_index["a2"]]),
        np.zeros((1, tiny_model.dims.audio_embedding), np.float32),
        np.zeros(1, np.float32),
    )
    np.testing.assert_allclose(vecs[1], expect[0], atol=1e-6)
    np.testing.assert_array_equal(vecs[1], vecs[2])
    assert calls == [1]  # one encode for artist a2, then the cache
    vecs2, unknown2 = c.track_in_for(["new3", "new4"], ["a2", "someone"], tiny_model)
    assert unknown2 == 2 and c.unknown_total == 4 and calls == [1, 1]
    assert not np.allclose(vecs2[0], vecs2[1])  # a known artist moves the unknown vector
    # the catalog's own rows are untouched by the lookups
    np.testing.assert_array_equal(c.track_in, tiny_model.tracks.track_in)


def test_old_epochs_fall_out_of_the_change_log(
    tiny_model: ServingModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(catalog_module, "CHANGE_LOG_LENGTH", 4)
    c = Catalog.from_model(tiny_model)
    dim = tiny_model.dims.audio_embedding
    for i in range(5):
        c.upsert_audio_track(audio_record(f"n{i}", i, dim), tiny_model)
    assert c.epoch == 6
    assert c.changed_rows_since(1) is None  # too old: a pool from then must rescore
    assert c.changed_rows_since(5).tolist() == [44]
    assert c.changed_rows_since(99) is None


def test_from_arrays_checks_its_inputs() -> None:
    vec = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match="unique"):
        Catalog.from_arrays(["a", "a"], ["", ""], vec, vec)
    with pytest.raises(ValueError, match="disagree"):
        Catalog.from_arrays(["a", "b"], [""], vec, vec)


def test_a_record_naming_an_artist_updates_the_row() -> None:
    vec = np.ones((2, 3), np.float32)
    c = Catalog.from_arrays(["a", "b"], ["", "x"], vec, vec)
    row = c.upsert("a", np.zeros(3), np.full(3, 2.0), artist="y", title="T")
    assert row == 0 and c.artist_of("a") == "y" and c.titles[0] == "T"
    assert c.artist_rows["y"] == [0] and c.artist_codes[0] == c.artist_code["y"]
    c.upsert("b", np.zeros(3), np.zeros(3), artist="y")
    assert c.artist_rows["x"] == [] and c.artist_rows["y"] == [0, 1]
    c.upsert("b", np.zeros(3), np.ones(3))  # no artist named: keep it
    assert c.artist_of("b") == "y" and c.epoch == 4 and not c.has_audio.any()

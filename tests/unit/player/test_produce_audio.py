"""produce-audio: which files go out under which ids, and chunk messages that fit and decode."""

from __future__ import annotations

import base64
import csv
import logging
from pathlib import Path

import numpy as np
import orjson
import pytest
import soundfile as sf

from radio_engine import schemas
from radio_engine.audio.decode import decode_chunk, load_audio_file
from radio_engine.audio.files import TrackFile, find_tracks, track_metadata
from radio_engine.player.produce_audio import (
    MAX_MESSAGE_BYTES,
    ChunkTooLarge,
    chunk_messages,
    max_chunk_bytes,
)
from radio_engine.settings import Settings

GAME_MUSIC = Settings.from_env().data_path / "game-music"
METADATA = GAME_MUSIC / "metadata.csv"
CLIP = GAME_MUSIC / "clips" / "asc-music" / "frontiers.ogg"


def metadata_rows() -> list[dict[str, str]]:
    with open(METADATA, newline="") as f:
        return list(csv.DictReader(f))


def test_artist_is_the_composer_or_else_the_game() -> None:
    rows = metadata_rows()
    with_artist = next(r for r in rows if r["artist"])
    without = next(r for r in rows if not r["artist"])
    assert track_metadata(with_artist)["artist_id"] == with_artist["artist"]
    assert track_metadata(without)["artist_id"] == without["game"]
    assert track_metadata(with_artist).get("title") == with_artist["title"]


def test_a_folder_with_metadata_sends_its_files_under_their_clip_ids() -> None:
    folder = GAME_MUSIC / "clips" / "wesnoth-1.16-music"
    tracks = find_tracks(folder, METADATA)
    files = sorted(folder.glob("*.ogg"))
    assert [t.path for t in tracks] == files
    by_path = {(GAME_MUSIC / r["clip_path"]).resolve(): r for r in metadata_rows()}
    for track in tracks:
        row = by_path[track.path.resolve()]
        assert track.track_id == row["clip_id"]
        assert track.metadata["artist_id"] == (row["artist"] or row["game"])


def test_the_whole_set_without_metadata_uses_file_stems_in_path_order() -> None:
    tracks = find_tracks(GAME_MUSIC / "clips")
    assert len(tracks) == 157
    assert [t.path for t in tracks] == sorted(t.path for t in tracks)
    assert all(t.track_id == t.path.stem and t.metadata == {} for t in tracks)


def test_a_file_missing_from_the_metadata_goes_out_under_its_stem(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sf.write(tmp_path / "tone.wav", np.zeros(8000, dtype=np.float32), 8000)
    with caplog.at_level(logging.WARNING):
        [track] = find_tracks(tmp_path, METADATA)
    assert (track.track_id, track.metadata) == ("tone", {})
    assert "not in" in caplog.text


def test_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a folder"):
        find_tracks(tmp_path / "nope")


@pytest.mark.parametrize("fmt", ["flac", "wav", "ogg", "pcm_s16le"])
def test_chunks_of_a_real_clip_fit_validate_and_decode_back_to_the_track(fmt: str) -> None:
    track = TrackFile(CLIP, "asc__frontiers", {"artist_id": "someone", "title": "Frontiers"})
    messages = chunk_messages(track, fmt, chunk_seconds=10.0)
    samples, rate = load_audio_file(CLIP)
    decoded = [schemas.decode("audio_chunk", m) for m in messages]
    assert all(len(m) < MAX_MESSAGE_BYTES for m in messages)
    assert [c["seq"] for c in decoded] == list(range(len(messages))) == [0, 1, 2]
    assert [c["last"] for c in decoded] == [False, False, True]
    assert {c["track_id"] for c in decoded} == {"asc__frontiers"}
    assert decoded[0]["metadata"] == {
        "artist_id": "someone",
        "title": "Frontiers",
        "duration_s": pytest.approx(30.0, abs=0.01),
    }
    assert all("metadata" not in c for c in decoded[1:])
    parts = [
        decode_chunk(
            base64.b64decode(c["data"]), c["format"], c.get("sample_rate"), c.get("channels")
        )
        for c in decoded
    ]
    assert {r for _, r in parts} == {rate}
    audio = np.concatenate([p for p, _ in parts])
    assert len(audio) == len(samples)
    if fmt != "ogg":  # lossless 16-bit: equal to the quantisation step
        assert np.max(np.abs(audio - samples)) <= 1.0 / 32768 + 1e-7


def test_a_small_chunk_limit_cuts_more_chunks_each_under_it() -> None:
    track = TrackFile(CLIP, "t", {})
    limit = 100 * 1024
    messages = chunk_messages(track, "wav", chunk_seconds=10.0, max_chunk_bytes=limit)
    sizes = [len(base64.b64decode(orjson.loads(m)["data"])) for m in messages]
    assert len(messages) > 3
    assert max(sizes) <= limit


def test_a_chunk_over_one_mib_is_refused_before_sending() -> None:
    track = TrackFile(CLIP, "t", {})  # 30 s of 16-bit WAV at 22050 Hz: 1.3 MB raw
    with pytest.raises(ChunkTooLarge, match="over Kafka"):
        chunk_messages(track, "wav", chunk_seconds=30.0, max_chunk_bytes=4 * 1024 * 1024)


def test_chunk_bytes_never_exceed_what_the_worker_accepts() -> None:
    assert max_chunk_bytes(Settings(audio_max_chunk_bytes=64 * 1024)) == 64 * 1024
    assert max_chunk_bytes(Settings(audio_max_chunk_bytes=4 * 1024 * 1024)) * 4 / 3 < 1024 * 1024

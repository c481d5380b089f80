"""Decoding real clips and chunks: every format round-trips, broken bytes are refused clearly."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from radio_engine.audio.decode import (
    FORMATS,
    decode_chunk,
    encode_audio,
    encode_chunks,
    load_audio_file,
)
from radio_engine.schemas import BadMessage
from radio_engine.settings import Settings

GAME_MUSIC = Settings().data_path / "game-music"
CLIP = GAME_MUSIC / "clips" / "asc-music" / "frontiers.ogg"
FULL = GAME_MUSIC / "full" / "singularity-music" / "Awakening.ogg"


@pytest.fixture(scope="module")
def clip() -> tuple[np.ndarray, int]:
    return load_audio_file(CLIP)


def test_a_real_ogg_clip_decodes_to_30_seconds_of_mono_22050() -> None:
    samples, rate = load_audio_file(CLIP)
    assert rate == 22050
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert samples.size == 30 * 22050
    assert 0.01 < float(np.sqrt(np.mean(samples**2))) < 1.0  # music, not silence
    # the same bytes through the chunk path give the same samples
    again, again_rate = decode_chunk(CLIP.read_bytes(), "ogg")
    assert again_rate == 22050
    np.testing.assert_array_equal(again, samples)


def test_a_stereo_file_and_a_stereo_chunk_are_averaged_to_mono() -> None:
    with sf.SoundFile(FULL) as f:
        assert f.channels == 2 and f.samplerate == 48000
        f.seek(60 * 48000)
        stereo = f.read(48000, dtype="float32")
    assert not np.allclose(stereo[:, 0], stereo[:, 1])  # really two channels
    mono, rate = load_audio_file(FULL)
    assert rate == 48000
    np.testing.assert_allclose(mono[60 * 48000 : 61 * 48000], stereo.mean(axis=1), atol=1e-7)
    buffer = io.BytesIO()
    sf.write(buffer, stereo, 48000, format="WAV", subtype="FLOAT")
    chunk, chunk_rate = decode_chunk(buffer.getvalue(), "wav")
    assert chunk_rate == 48000
    np.testing.assert_allclose(chunk, stereo.mean(axis=1), atol=1e-7)


@pytest.mark.parametrize("fmt", ["flac", "wav", "pcm_s16le"])
def test_lossless_chunks_round_trip_to_16_bit_precision(
    clip: tuple[np.ndarray, int], fmt: str
) -> None:
    samples, rate = clip
    chunks = encode_chunks(samples, rate, fmt, chunk_seconds=7.0)
    assert len(chunks) == 5  # 7 + 7 + 7 + 7 + 2 seconds
    decoded = [decode_chunk(c, fmt, rate, 1) for c in chunks]
    assert {r for _, r in decoded} == {rate}
    assert [d.size for d, _ in decoded] == [7 * rate] * 4 + [2 * rate]
    joined = np.concatenate([d for d, _ in decoded])
    assert np.abs(joined - samples).max() <= 1.0 / 32767 + 1e-6


def test_ogg_chunks_decode_on_their_own_and_stay_close(clip: tuple[np.ndarray, int]) -> None:
    samples, rate = clip
    chunks = encode_chunks(samples, rate, "ogg", chunk_seconds=10.0)
    assert len(chunks) == 3
    joined = np.concatenate([decode_chunk(c, "ogg")[0] for c in chunks])
    assert joined.size == samples.size
    # lossy, but the waveform is the same music: error far below the signal
    error = np.sqrt(np.mean((joined - samples) ** 2))
    assert error < 0.1 * np.sqrt(np.mean(samples**2))


def test_chunks_stay_under_the_byte_limit_by_cutting_shorter() -> None:
    with sf.SoundFile(FULL) as f:
        rate = f.samplerate
        samples = f.read(25 * rate, dtype="float32").mean(axis=1)
    chunks = encode_chunks(samples, rate, "pcm_s16le", chunk_seconds=10.0, max_bytes=700 * 1024)
    # 10 s of 48 kHz 16-bit mono is 960,000 bytes: halved to 5 s (480,000 bytes)
    assert [len(c) for c in chunks] == [480_000] * 5
    wav = encode_chunks(samples, rate, "wav", chunk_seconds=10.0, max_bytes=300 * 1024)
    assert all(len(c) <= 300 * 1024 for c in wav)
    assert sum(decode_chunk(c, "wav")[0].size for c in wav) == samples.size
    with pytest.raises(ValueError, match="cannot fit"):
        encode_chunks(samples, rate, "wav", max_bytes=100)


def test_pcm_with_two_channels_is_averaged() -> None:
    left = np.array([1000, -2000, 3000], dtype="<i2")
    right = np.array([3000, 2000, -1000], dtype="<i2")
    data = np.stack([left, right], axis=1).reshape(-1).tobytes()
    mono, rate = decode_chunk(data, "pcm_s16le", 16000, 2)
    assert rate == 16000
    np.testing.assert_allclose(mono, np.array([2000, 0, 1000]) / 32768.0)


@pytest.mark.parametrize(
    "data, fmt",
    [
        (b"", "flac"),
        (b"not audio at all " * 50, "flac"),
        (b"not audio at all " * 50, "wav"),
        (b"not audio at all " * 50, "ogg"),
        (b"RIFF" + bytes(60), "wav"),
        (CLIP.read_bytes()[:300], "ogg"),  # an OGG cut inside its headers
    ],
)
def test_corrupt_bytes_are_bad_audio(data: bytes, fmt: str) -> None:
    with pytest.raises(BadMessage) as err:
        decode_chunk(data, fmt)
    assert err.value.reason == "bad_audio"


def test_truncated_flac_and_mislabelled_chunks_are_bad_audio(clip: tuple[np.ndarray, int]) -> None:
    samples, rate = clip
    flac = encode_audio(samples[:rate], rate, "flac")
    with pytest.raises(BadMessage, match="bad_audio"):
        decode_chunk(flac[: len(flac) // 2], "flac")
    with pytest.raises(BadMessage, match="declared wav holds FLAC"):
        decode_chunk(flac, "wav")


@pytest.mark.parametrize(
    "data, rate, channels",
    [(bytes(6), None, 1), (bytes(6), 16000, None), (bytes(7), 16000, 1), (bytes(6), 16000, 4)],
)
def test_pcm_without_rate_or_whole_frames_is_bad_audio(
    data: bytes, rate: int | None, channels: int | None
) -> None:
    with pytest.raises(BadMessage) as err:
        decode_chunk(data, "pcm_s16le", rate, channels)
    assert err.value.reason == "bad_audio"


def test_an_unknown_format_is_refused_as_such() -> None:
    with pytest.raises(BadMessage) as err:
        decode_chunk(b"ID3...", "mp3")
    assert err.value.reason == "unknown_track_format"
    assert "mp3" in str(err.value) and all(f in str(err.value) for f in FORMATS)


def test_a_missing_file_names_itself() -> None:
    with pytest.raises(ValueError, match=r"no-such\.ogg"):
        load_audio_file(GAME_MUSIC / "no-such.ogg")

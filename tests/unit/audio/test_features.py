"""MFCC + deltas: the streaming featuriser gives the whole-track frames, chunk by chunk."""

from __future__ import annotations

import io

import numpy as np
import pytest
import python_speech_features as psf
import soundfile as sf
from scipy.signal import resample_poly

from radio_engine.audio.decode import decode_chunk, encode_chunks, load_audio_file
from radio_engine.audio.features import (
    FEATURE_DIM,
    FEATURE_SAMPLE_RATE,
    FEATURE_SPEC,
    FRAME_LEN,
    FRAME_STEP,
    NFFT,
    NUM_CEPSTRA,
    StreamingFeatures,
    deltas,
    track_features,
)
from radio_engine.audio.resample import StreamingResampler
from radio_engine.schemas import BadMessage
from radio_engine.settings import Settings

GAME_MUSIC = Settings().data_path / "game-music"
CLIP = GAME_MUSIC / "clips" / "wesnoth-1.16-music" / "battle.ogg"
FULL = GAME_MUSIC / "full" / "singularity-music" / "Awakening.ogg"


@pytest.fixture(scope="module")
def clip() -> tuple[np.ndarray, int]:
    return load_audio_file(CLIP)


def test_the_spec_describes_the_frames() -> None:
    assert FEATURE_DIM == 2 * NUM_CEPSTRA == FEATURE_SPEC["dim"] == 40
    assert NFFT >= FRAME_LEN == 551  # no truncated frames at 22050 Hz
    assert FRAME_STEP == 221
    assert FEATURE_SPEC["sample_rate"] == FEATURE_SAMPLE_RATE == 22050


def test_whole_clip_features_are_psf_mfccs_and_deltas(clip: tuple[np.ndarray, int]) -> None:
    samples, rate = clip
    frames = track_features(samples, rate)
    # 30 s: 1 + (661500 - 551) // 221 whole frames (psf would zero-pad one more)
    assert frames.shape == (2991, FEATURE_DIM) and frames.dtype == np.float32
    reference = psf.mfcc(
        samples.astype(np.float64),
        samplerate=rate,
        numcep=NUM_CEPSTRA,
        nfilt=FEATURE_SPEC["nfilt"],
        nfft=NFFT,
        preemph=FEATURE_SPEC["preemph"],
        appendEnergy=True,
        winfunc=np.hamming,
    )
    assert reference.shape[0] == 2992
    np.testing.assert_allclose(frames[:, :NUM_CEPSTRA], reference[:2991], atol=1e-4, rtol=1e-5)
    np.testing.assert_allclose(
        frames[:, NUM_CEPSTRA:], psf.delta(frames[:, :NUM_CEPSTRA], 2), atol=1e-4
    )


def test_vectorised_deltas_equal_psf_delta() -> None:
    feat = np.random.default_rng(1).standard_normal((50, 7))
    np.testing.assert_allclose(deltas(feat, 2), psf.delta(feat, 2), atol=1e-12)
    np.testing.assert_allclose(deltas(feat, 1), psf.delta(feat, 1), atol=1e-12)


@pytest.mark.parametrize("piece", [7, 220, 551, 4410, 100_000])
def test_streaming_in_any_pieces_equals_the_whole_clip(
    clip: tuple[np.ndarray, int], piece: int
) -> None:
    samples, rate = clip
    samples = samples[: 3 * rate] if piece < 1000 else samples
    whole = track_features(samples, rate)
    stream = StreamingFeatures()
    for start in range(0, samples.size, piece):
        stream.push(samples[start : start + piece], rate)
    assert stream.seconds == pytest.approx(samples.size / rate)
    np.testing.assert_allclose(stream.finish(), whole, atol=1e-5)


def test_frames_are_computed_while_chunks_arrive(clip: tuple[np.ndarray, int]) -> None:
    samples, rate = clip
    stream = StreamingFeatures()
    stream.push(samples[: 10 * rate], rate)
    assert stream.frames == 1 + (10 * rate - FRAME_LEN) // FRAME_STEP
    stream.push(samples[10 * rate :], rate)
    assert stream.frames == 2991


@pytest.mark.parametrize("fmt", ["flac", "wav", "pcm_s16le"])
def test_decoded_chunks_give_the_features_of_the_decoded_whole(
    clip: tuple[np.ndarray, int], fmt: str
) -> None:
    samples, rate = clip
    chunks = encode_chunks(samples, rate, fmt, chunk_seconds=7.0)
    pieces = [decode_chunk(c, fmt, rate, 1)[0] for c in chunks]
    stream = StreamingFeatures()
    for piece in pieces:
        stream.push(piece, rate)
    streamed = stream.finish()
    np.testing.assert_allclose(streamed, track_features(np.concatenate(pieces), rate), atol=1e-5)
    # and 16-bit quantisation barely moves the features of the original
    original = track_features(samples, rate)
    assert np.median(np.abs(streamed - original)) < 0.01


def test_a_48k_stereo_file_streamed_in_stereo_flac_chunks_equals_the_whole() -> None:
    seconds = 40
    with sf.SoundFile(FULL) as f:
        assert (f.samplerate, f.channels) == (48000, 2)
        rate = f.samplerate
        stereo = f.read(seconds * rate, dtype="float32")
    stream = StreamingFeatures()
    decoded = []
    block = int(4.3 * rate)  # chunk edges that fall anywhere in the resampler's phase
    for start in range(0, stereo.shape[0], block):
        buffer = io.BytesIO()
        sf.write(buffer, stereo[start : start + block], rate, format="FLAC", subtype="PCM_24")
        mono, chunk_rate = decode_chunk(buffer.getvalue(), "flac")
        decoded.append(mono)
        stream.push(mono, chunk_rate)
    assert stream.seconds == pytest.approx(seconds)
    streamed = stream.finish()
    whole = track_features(np.concatenate(decoded), rate)
    assert streamed.shape == whole.shape == (1 + (seconds * 22050 - FRAME_LEN) // FRAME_STEP, 40)
    np.testing.assert_allclose(streamed, whole, atol=1e-5)
    # 24-bit FLAC rounding hardly moves the features of the original float audio
    original = track_features(stereo.mean(axis=1), rate)
    assert np.median(np.abs(streamed - original)) < 1e-4


def test_the_streaming_resampler_equals_resample_poly_on_the_whole_signal() -> None:
    rng = np.random.default_rng(5)
    for rate in (48000, 44100, 16000):
        x = rng.standard_normal(rate + 777)
        resampler = StreamingResampler(rate, FEATURE_SAMPLE_RATE)
        out, start = [], 0
        for size in rng.integers(1, rate // 3, size=100):
            out.append(resampler.push(x[start : start + size]))
            start += int(size)
            if start >= x.size:
                break
        out.append(resampler.push(x[start:]))
        out.append(resampler.finish())
        np.testing.assert_allclose(
            np.concatenate(out), resample_poly(x, FEATURE_SAMPLE_RATE, rate), atol=1e-10
        )


def test_resampled_audio_has_the_features_of_the_same_music_at_22050(
    clip: tuple[np.ndarray, int],
) -> None:
    samples, rate = clip
    up = resample_poly(samples, 160, 147).astype(np.float32)  # 22050 -> 24000 Hz
    back = track_features(up, 24000)
    direct = track_features(samples, rate)
    assert abs(back.shape[0] - direct.shape[0]) <= 1
    n = min(back.shape[0], direct.shape[0])
    # c1..c19 of the same music: close frame by frame, far from another frame
    same = np.median(np.abs(back[:n, 1:NUM_CEPSTRA] - direct[:n, 1:NUM_CEPSTRA]))
    shifted = np.median(np.abs(back[50:n, 1:NUM_CEPSTRA] - direct[: n - 50, 1:NUM_CEPSTRA]))
    assert same < 0.2 * shifted


def test_a_rate_change_mid_track_is_bad_audio(clip: tuple[np.ndarray, int]) -> None:
    samples, rate = clip
    stream = StreamingFeatures()
    stream.push(samples[:rate], rate)
    with pytest.raises(BadMessage, match="bad_audio"):
        stream.push(samples[:rate], 44100)


def test_too_little_audio_gives_no_frames() -> None:
    stream = StreamingFeatures()
    stream.push(np.zeros(FRAME_LEN - 1, dtype=np.float32), FEATURE_SAMPLE_RATE)
    assert stream.finish().shape == (0, FEATURE_DIM)
    assert track_features(np.zeros(FRAME_LEN, np.float32), FEATURE_SAMPLE_RATE).shape == (1, 40)

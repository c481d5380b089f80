"""Audio bytes <-> samples with soundfile: decode one self-contained chunk, cut a track into chunks.

Every chunk on radio.audio-chunks.v1 decodes on its own (raw PCM, or a small WAV/FLAC/OGG file),
so the worker can featurise a track while its later chunks are still on the way.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile as sf

from radio_engine.schemas import BadMessage

#: container formats soundfile reads and writes for chunks: (soundfile format, subtype written)
CONTAINERS = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS")}
FORMATS = ("pcm_s16le", *CONTAINERS)
#: sample rates the chunk schema allows
MIN_RATE, MAX_RATE = 4000, 192000
#: raw bytes per chunk that keep a base64 JSON message under Kafka's 1 MiB default
DEFAULT_MAX_CHUNK_BYTES = 700 * 1024


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average the channels of [frames, channels] audio into float32 mono."""
    if samples.ndim == 1:
        return samples.astype(np.float32, copy=False)
    return samples.mean(axis=1, dtype=np.float32)


def decode_chunk(
    data: bytes, fmt: str, sample_rate: int | None = None, channels: int | None = None
) -> tuple[np.ndarray, int]:
    """Decode one chunk into (mono float32 samples in [-1, 1], sample rate).

    Raises BadMessage('bad_audio') for bytes that do not decode (or decode to another container
    than declared, or to no audio), and BadMessage('unknown_track_format') for a format this
    engine does not take.
    """
    if fmt == "pcm_s16le":
        return _decode_pcm(data, sample_rate, channels)
    if fmt not in CONTAINERS:
        raise BadMessage("unknown_track_format", f"audio format {fmt!r} is not one of {FORMATS}")
    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            if f.format != CONTAINERS[fmt][0]:
                raise BadMessage("bad_audio", f"chunk declared {fmt} holds {f.format} data")
            samples = f.read(dtype="float32", always_2d=True)
            rate = int(f.samplerate)
    except BadMessage:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, EOFError) as exc:
        why = getattr(exc, "error_string", None) or str(exc)
        raise BadMessage("bad_audio", f"{fmt} chunk does not decode: {why}") from None
    if samples.size == 0:
        raise BadMessage("bad_audio", f"{fmt} chunk holds no audio")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise BadMessage("bad_audio", f"{fmt} chunk has sample rate {rate} Hz")
    mono = to_mono(samples)
    if not np.all(np.isfinite(mono)):
        raise BadMessage("bad_audio", f"{fmt} chunk decodes to non-finite samples")
    return mono, rate


def _decode_pcm(
    data: bytes, sample_rate: int | None, channels: int | None
) -> tuple[np.ndarray, int]:
    """Raw interleaved little-endian 16-bit PCM -> mono float32."""
    if not sample_rate or not channels:
        raise BadMessage("bad_audio", "pcm_s16le chunks need sample_rate and channels")
    if not MIN_RATE <= sample_rate <= MAX_RATE or channels < 1:
        raise BadMessage("bad_audio", f"pcm_s16le at {sample_rate} Hz x {channels} channels")
    if not data or len(data) % (2 * channels):
        raise BadMessage(
            "bad_audio", f"{len(data)} PCM bytes is not a whole number of {channels}-channel frames"
        )
    pcm = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
    return to_mono(pcm.reshape(-1, channels)), int(sample_rate)


def load_audio_file(path: Path | str) -> tuple[np.ndarray, int]:
    """Read a whole audio file as (mono float32, sample rate); errors name the file."""
    try:
        samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise ValueError(f"cannot read audio file {path}: {exc}") from None
    return to_mono(samples), int(rate)


def encode_audio(samples: np.ndarray, sample_rate: int, fmt: str) -> bytes:
    """Encode mono float32 samples as one self-contained chunk in `fmt` (16-bit or Vorbis)."""
    clipped = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    if fmt == "pcm_s16le":  # the inverse of decoding's / 32768
        return np.clip(np.round(clipped * 32768.0), -32768, 32767).astype("<i2").tobytes()
    if fmt not in CONTAINERS:
        raise ValueError(f"audio format {fmt!r} is not one of {FORMATS}")
    container, subtype = CONTAINERS[fmt]
    buffer = io.BytesIO()
    sf.write(buffer, clipped, sample_rate, format=container, subtype=subtype)
    return buffer.getvalue()


def encode_chunks(
    samples: np.ndarray,
    sample_rate: int,
    fmt: str = "flac",
    chunk_seconds: float = 10.0,
    max_bytes: int = DEFAULT_MAX_CHUNK_BYTES,
) -> list[bytes]:
    """Cut a mono track into self-contained chunks of about `chunk_seconds`, each <= `max_bytes`.

    A chunk that comes out too big is re-cut at half the length until every chunk fits; for
    pcm_s16le the message also needs sample_rate and channels=1.
    """
    if chunk_seconds <= 0:
        raise ValueError(f"chunk_seconds must be positive, got {chunk_seconds}")
    samples = np.asarray(samples, dtype=np.float32).reshape(-1)
    step = max(1, int(chunk_seconds * sample_rate))
    while True:
        chunks = [
            encode_audio(samples[i : i + step], sample_rate, fmt)
            for i in range(0, len(samples), step)
        ]
        if all(len(c) <= max_bytes for c in chunks):
            return chunks
        if step <= sample_rate // 100:
            raise ValueError(
                f"cannot fit {fmt} chunks of {sample_rate} Hz audio in {max_bytes} bytes"
            )
        step //= 2

"""`radio-engine produce-audio DIR`: send track audio as self-contained chunks onto Kafka.

Each chunk decodes on its own (FLAC by default), so the worker featurises a track while the rest
is on the way. A track's metadata travels on its first chunk. With the game-music metadata.csv,
track_id is the clip_id and artist_id the composer, or the game's name when the clip has no
artist (41 of the 157 clips): the game stands in for the unknown composer. duration_s is the
length of the audio sent (for game-music the 30 s clip the id names, not full_duration_s).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from radio_engine import schemas
from radio_engine.audio.decode import DEFAULT_MAX_CHUNK_BYTES, encode_chunks, load_audio_file
from radio_engine.audio.files import AUDIO_SUFFIXES, TrackFile, find_tracks
from radio_engine.player.kafka_io import make_producer, start_client
from radio_engine.settings import Settings

log = logging.getLogger(__name__)

#: most audio bytes in one chunk: base64 (x4/3) and the JSON envelope stay under 1 MiB
MAX_CHUNK_BYTES = DEFAULT_MAX_CHUNK_BYTES
#: Kafka's default message.max.bytes: every message must be smaller
MAX_MESSAGE_BYTES = 1024 * 1024
#: delivery futures awaited together
SEND_WINDOW = 32


class ChunkTooLarge(ValueError):
    """An encoded chunk message that would not fit in one Kafka message."""


@dataclass(frozen=True)
class AudioStats:
    """What produce-audio sent: tracks, chunk messages, message bytes, wall seconds."""

    tracks: int
    chunks: int
    bytes: int
    seconds: float


def chunk_messages(
    track: TrackFile,
    fmt: str = "flac",
    chunk_seconds: float = 10.0,
    max_chunk_bytes: int = MAX_CHUNK_BYTES,
) -> list[bytes]:
    """A track's audio as chunk messages (schemas/audio-chunk.v1.json), each under 1 MiB."""
    samples, rate = load_audio_file(track.path)
    chunks = encode_chunks(samples, rate, fmt, chunk_seconds, max_chunk_bytes)
    metadata = {**track.metadata, "duration_s": round(len(samples) / rate, 3)}
    messages = []
    for seq, data in enumerate(chunks):
        message: dict[str, Any] = {
            "track_id": track.track_id,
            "seq": seq,
            "last": seq == len(chunks) - 1,
            "format": fmt,
            "data": base64.b64encode(data).decode(),
        }
        if fmt == "pcm_s16le":
            message.update(sample_rate=rate, channels=1)
        if seq == 0:
            message["metadata"] = metadata
        encoded = schemas.encode("audio_chunk", message)
        if len(encoded) >= MAX_MESSAGE_BYTES:
            raise ChunkTooLarge(
                f"{track.path}: chunk {seq} is a {len(encoded)}-byte message, over Kafka's "
                f"{MAX_MESSAGE_BYTES}; use a smaller --chunk-seconds or max chunk bytes"
            )
        messages.append(encoded)
    return messages


def max_chunk_bytes(settings: Settings) -> int:
    """Raw audio bytes per chunk: what fits a 1 MiB message and what the worker accepts."""
    return min(MAX_CHUNK_BYTES, settings.audio_max_chunk_bytes)


async def produce_tracks(
    settings: Settings,
    tracks: list[TrackFile],
    fmt: str = "flac",
    chunk_seconds: float = 10.0,
    progress: bool = True,
) -> AudioStats:
    """Send every track's chunks in order onto the audio topic (key = track_id: one partition,
    so seq order holds). Delivery is awaited in windows, so a broker error surfaces here.
    """
    producer = make_producer(settings)
    await start_client(producer)
    started = time.monotonic()
    chunks = sent_bytes = 0
    limit = max_chunk_bytes(settings)
    try:
        pending: list[asyncio.Future[Any]] = []
        for track in tqdm(tracks, desc="audio", unit="track", disable=not progress):
            key = track.track_id.encode()
            for message in chunk_messages(track, fmt, chunk_seconds, limit):
                pending.append(await producer.send(settings.topic_audio, value=message, key=key))
                chunks += 1
                sent_bytes += len(message)
            if len(pending) >= SEND_WINDOW:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return AudioStats(len(tracks), chunks, sent_bytes, time.monotonic() - started)


async def produce_directory(
    settings: Settings,
    directory: Path,
    metadata_csv: Path | str | None = None,
    limit: int | None = None,
    fmt: str = "flac",
    chunk_seconds: float = 10.0,
    progress: bool = True,
) -> AudioStats:
    """find_tracks + produce_tracks: the first `limit` audio files under DIR."""
    tracks = find_tracks(Path(directory), Path(metadata_csv) if metadata_csv else None)
    chosen = tracks[:limit] if limit is not None else tracks
    return await produce_tracks(settings, chosen, fmt, chunk_seconds, progress)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """`radio-engine produce-audio DIR [--metadata CSV] [--limit N] [--chunk-seconds S] [--format F]`."""
    if args.chunk_seconds <= 0:
        raise SystemExit(
            f"produce-audio: --chunk-seconds must be positive, got {args.chunk_seconds}"
        )
    try:
        tracks = find_tracks(Path(args.directory), Path(args.metadata) if args.metadata else None)
        if args.limit is not None:
            tracks = tracks[: args.limit]
        if not tracks:
            kinds = ", ".join(sorted(AUDIO_SUFFIXES))
            print(f"produce-audio: no audio files ({kinds}) under {args.directory}")
            return 1
        stats = asyncio.run(produce_tracks(settings, tracks, args.format, args.chunk_seconds))
    except (FileNotFoundError, ValueError) as exc:  # unreadable file, oversize chunk, bad CSV
        raise SystemExit(f"produce-audio: {exc}") from None
    print(
        f"produce-audio: {stats.tracks} tracks as {stats.chunks} chunks "
        f"({stats.bytes / 1e6:.1f} MB) in {stats.seconds:.1f} s onto {settings.topic_audio}"
    )
    return 0

"""`radio-engine produce-audio DIR`: send track audio as self-contained chunks onto Kafka.

Each chunk decodes on its own (FLAC by default), so the worker featurises a track while the rest
is on the way. A track's metadata travels on its first chunk. With the game-music metadata.csv,
track_id is the clip_id and artist_id the composer, or the game's name when no artist is known.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import csv
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from radio_engine import schemas
from radio_engine.audio.decode import encode_chunks, load_audio_file
from radio_engine.player.kafka_io import make_producer
from radio_engine.settings import Settings

AUDIO_SUFFIXES = {".ogg", ".flac", ".wav", ".oga"}
#: most audio bytes in one chunk: base64 (x4/3) and the JSON envelope stay under 1 MiB
MAX_CHUNK_BYTES = 700 * 1024
MAX_MESSAGE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class TrackFile:
    """An audio file to send and the metadata that goes with it."""

    path: Path
    track_id: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
class AudioStats:
    tracks: int
    chunks: int
    bytes: int
    seconds: float


def read_metadata(metadata_csv: Path, root: Path) -> list[TrackFile]:
    """Tracks listed in a game-music style metadata.csv (clip_id, clip_path, artist, title...)."""
    tracks = []
    with open(metadata_csv, newline="") as f:
        for row in csv.DictReader(f):
            path = root / row["clip_path"]
            if not path.exists():
                path = root.parent / row["clip_path"]
            meta: dict[str, Any] = {"artist_id": row.get("artist") or row.get("game", "")}
            for key, column in (("title", "title"), ("album", "album")):
                if row.get(column):
                    meta[key] = row[column]
            tracks.append(TrackFile(path, row["clip_id"], meta))
    return sorted(tracks, key=lambda t: t.track_id)


def find_tracks(directory: Path, metadata_csv: Path | None = None) -> list[TrackFile]:
    """The tracks to send: from the metadata file when given, else every audio file under DIR."""
    if metadata_csv is not None:
        return read_metadata(metadata_csv, metadata_csv.parent)
    files = sorted(p for p in directory.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    return [TrackFile(p, p.stem, {}) for p in files]


def chunk_messages(track: TrackFile, fmt: str = "flac", chunk_seconds: float = 10.0) -> list[bytes]:
    """A track's audio as chunk messages (schemas/audio-chunk.v1.json), each under 1 MiB."""
    samples, rate = load_audio_file(track.path)
    chunks = encode_chunks(samples, rate, fmt, chunk_seconds, MAX_CHUNK_BYTES)
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
            raise ValueError(
                f"{track.path}: chunk {seq} is {len(encoded)} bytes, over Kafka's 1 MiB"
            )
        messages.append(encoded)
    return messages


async def produce_tracks(
    settings: Settings,
    tracks: list[TrackFile],
    fmt: str = "flac",
    chunk_seconds: float = 10.0,
    progress: bool = True,
) -> AudioStats:
    """Send every track's chunks in order on the audio topic (key = track_id)."""
    producer = make_producer(settings)
    await producer.start()
    started = time.monotonic()
    chunks = sent_bytes = 0
    try:
        for track in tqdm(tracks, desc="audio", unit="track", disable=not progress):
            for message in chunk_messages(track, fmt, chunk_seconds):
                await producer.send(
                    settings.topic_audio, value=message, key=track.track_id.encode()
                )
                chunks += 1
                sent_bytes += len(message)
        await producer.flush()
    finally:
        await producer.stop()
    return AudioStats(len(tracks), chunks, sent_bytes, time.monotonic() - started)


async def produce_directory(
    settings: Settings,
    directory: Path,
    metadata_csv: Path | None = None,
    limit: int | None = None,
    fmt: str = "flac",
    chunk_seconds: float = 10.0,
) -> AudioStats:
    """find_tracks + produce_tracks."""
    tracks = find_tracks(Path(directory), Path(metadata_csv) if metadata_csv else None)
    return await produce_tracks(settings, tracks[:limit] if limit else tracks, fmt, chunk_seconds)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """`radio-engine produce-audio DIR [--metadata CSV] [--limit N] [--chunk-seconds S] [--format F]`."""
    stats = asyncio.run(
        produce_directory(
            settings,
            Path(args.directory),
            args.metadata,
            args.limit,
            args.format,
            args.chunk_seconds,
        )
    )
    print(
        f"produce-audio: {stats.tracks} tracks as {stats.chunks} chunks ({stats.bytes / 1e6:.1f} MB) "
        f"in {stats.seconds:.1f} s onto {settings.topic_audio}"
    )
    return 0

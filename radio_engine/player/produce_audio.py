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
import csv
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from radio_engine import schemas
from radio_engine.audio.decode import DEFAULT_MAX_CHUNK_BYTES, encode_chunks, load_audio_file
from radio_engine.player.kafka_io import make_producer
from radio_engine.settings import Settings

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = {".ogg", ".oga", ".flac", ".wav"}
#: most audio bytes in one chunk: base64 (x4/3) and the JSON envelope stay under 1 MiB
MAX_CHUNK_BYTES = DEFAULT_MAX_CHUNK_BYTES
#: Kafka's default message.max.bytes: every message must be smaller
MAX_MESSAGE_BYTES = 1024 * 1024
#: delivery futures awaited together
SEND_WINDOW = 32


class ChunkTooLarge(ValueError):
    """An encoded chunk message that would not fit in one Kafka message."""


@dataclass(frozen=True)
class TrackFile:
    """An audio file to send, the track id it is sent under and its metadata (for seq 0)."""

    path: Path
    track_id: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
class AudioStats:
    """What produce-audio sent: tracks, chunk messages, message bytes, wall seconds."""

    tracks: int
    chunks: int
    bytes: int
    seconds: float


def read_metadata(metadata_csv: Path, root: Path) -> list[TrackFile]:
    """Tracks listed in a game-music style metadata.csv (clip_id, clip_path, artist, title...).

    clip_path is relative to `root` (the data set's folder; its parent is also tried).
    """
    tracks = []
    with open(metadata_csv, newline="") as f:
        reader = csv.DictReader(f)
        missing = {"clip_id", "clip_path"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{metadata_csv}: missing column(s) {', '.join(sorted(missing))}")
        for row in reader:
            path = root / row["clip_path"]
            if not path.exists():
                path = root.parent / row["clip_path"]
            tracks.append(TrackFile(path, row["clip_id"], track_metadata(row)))
    return sorted(tracks, key=lambda t: t.track_id)


def track_metadata(row: dict[str, str]) -> dict[str, Any]:
    """artist_id (the artist, else the game's name), title and album from a metadata row."""
    meta: dict[str, Any] = {}
    artist = (row.get("artist") or "").strip() or (row.get("game") or "").strip()
    if artist:
        meta["artist_id"] = artist
    for key in ("title", "album"):
        if (row.get(key) or "").strip():
            meta[key] = row[key].strip()
    return meta


def audio_files(directory: Path) -> list[Path]:
    """Every audio file under `directory`, searched recursively, sorted by path."""
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory} is not a folder of audio files")
    return sorted(p for p in directory.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)


def find_tracks(directory: Path, metadata_csv: Path | None = None) -> list[TrackFile]:
    """The audio files under DIR (sorted) as tracks: ids and metadata from the CSV when given,
    else the file stem and no metadata (also for a file the CSV does not list, with a warning).
    """
    files = audio_files(Path(directory))
    if metadata_csv is None:
        return [TrackFile(p, p.stem, {}) for p in files]
    listed = {t.path.resolve(): t for t in read_metadata(metadata_csv, metadata_csv.parent)}
    tracks = []
    for path in files:
        known = listed.get(path.resolve())
        if known is None:
            log.warning(
                "%s is not in %s: sent as %r without metadata", path, metadata_csv, path.stem
            )
            tracks.append(TrackFile(path, path.stem, {}))
        else:
            tracks.append(TrackFile(path, known.track_id, known.metadata))
    return tracks


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
    await producer.start()
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

"""Audio files on disk as tracks: which files, under which track id, with which metadata.

Shared by the player's `produce-audio` and by training (the audio encoder and the simulated
listeners read the same clips under the same ids).
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = {".ogg", ".oga", ".flac", ".wav"}


@dataclass(frozen=True)
class TrackFile:
    """An audio file to send, the track id it is sent under and its metadata (for seq 0)."""

    path: Path
    track_id: str
    metadata: dict[str, Any]


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

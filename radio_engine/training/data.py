"""30Music-style listening events: load, split by time for validation, write back.

Columns used: fold, user_id, session_id, track_id, artist_id, ts (and an optional `event`
column for simulated data). pct_played_derived is never read: it is computed from the next
scrobble's time, so it leaks the target. Rows keep the file's order; sorting is always stable,
so events with equal timestamps keep the order they had in the file.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from radio_engine.settings import Settings

COLUMNS = ("fold", "user_id", "session_id", "track_id", "artist_id", "ts")


@dataclass(frozen=True)
class Events:
    """Listening events as numpy columns, in file order."""

    fold: np.ndarray  # int64
    user_id: np.ndarray  # str
    session_id: np.ndarray  # str
    track_id: np.ndarray  # str
    artist_id: np.ndarray  # str ('' unknown)
    ts: np.ndarray  # float64 unix seconds
    event: np.ndarray  # str: play/skip/complete/like/dislike

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    def take(self, mask_or_index: np.ndarray) -> Events:
        """A subset of rows (boolean mask or index array), order kept."""
        return Events(**{name: getattr(self, name)[mask_or_index] for name in (*COLUMNS, "event")})

    @classmethod
    def concat(cls, parts: list[Events]) -> Events:
        return cls(
            **{
                name: np.concatenate([getattr(p, name) for p in parts])
                for name in (*COLUMNS, "event")
            }
        )


def load_events(path: Path | str) -> Events:
    """Read a CSV with the columns of ../shared/data/30music/events.csv."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = set(COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)}")
        rows = list(reader)

    def col(name: str) -> list[str]:
        return [r[name] for r in rows]

    events = [r.get("event") or "play" for r in rows]
    return Events(
        fold=np.asarray(col("fold"), dtype=np.int64),
        user_id=np.asarray(col("user_id"), dtype=str),
        session_id=np.asarray(col("session_id"), dtype=str),
        track_id=np.asarray(col("track_id"), dtype=str),
        artist_id=np.asarray(col("artist_id"), dtype=str),
        ts=np.asarray(col("ts"), dtype=np.float64),
        event=np.asarray(events, dtype=str),
    )


def split_last_days(events: Events, days: float = 1.0) -> tuple[Events, Events]:
    """(train, valid): per fold, sessions that START in the fold's last `days` go to valid.

    Mirrors how the held-out 30Music part was cut (sessions starting on each fold's last days).
    """
    valid = np.zeros(len(events), dtype=bool)
    session_key = np.char.add(np.char.add(events.fold.astype(str), ":"), events.session_id)
    _, first_index, inverse = np.unique(session_key, return_index=True, return_inverse=True)
    session_start = np.full(first_index.shape, np.inf)
    np.minimum.at(session_start, inverse, events.ts)
    for fold in np.unique(events.fold):
        in_fold = events.fold == fold
        cutoff = events.ts[in_fold].max() - days * 86400.0
        valid |= in_fold & (session_start[inverse] > cutoff)
    return events.take(~valid), events.take(valid)


def write_events_csv(events: Events, path: Path | str) -> Path:
    """Write events with the 30Music columns (derived columns left empty)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [*COLUMNS, "iso_time", "pct_played_derived", "gap_after_prev_s_derived", "event"]
        )
        for i in range(len(events)):
            ts = events.ts[i]
            w.writerow(
                [
                    events.fold[i],
                    events.user_id[i],
                    events.session_id[i],
                    events.track_id[i],
                    events.artist_id[i],
                    int(ts) if float(ts).is_integer() else ts,
                    "",
                    "",
                    "",
                    events.event[i],
                ]
            )
    return path


def data_sha256(path: Path | str) -> str:
    """SHA-256 of a data file, recorded in the model manifest."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run_split(args: argparse.Namespace, settings: Settings) -> int:
    """`radio-engine split --events CSV --out DIR [--days D]`: train.csv and valid.csv."""
    events = load_events(args.events)
    train, valid = split_last_days(events, args.days)
    out = Path(args.out)
    write_events_csv(train, out / "train.csv")
    write_events_csv(valid, out / "valid.csv")
    print(
        f"split: {len(train)} train events, {len(valid)} valid events "
        f"({len(set(valid.session_id.tolist()))} sessions starting in the last {args.days:g} day(s) of each fold) -> {out}"
    )
    return 0

"""The catalog: track ids <-> rows of the float32 matrices the selector scores.

Starts from the model's track table (tracks learned in training, queueable without audio) and
grows from radio.tracks.v1 (tracks whose audio arrived, queueable before anyone played them).
Rows are appended into capacity-doubling arrays, so an insert is O(1) amortised. Every change
moves `epoch` and is logged, so a listener's candidate pool can take in just the rows that
changed since it was built (`changed_rows_since`) instead of rescoring the whole catalog.
"""

from __future__ import annotations

import bisect
import itertools
import secrets
from collections import defaultdict
from typing import Any

import numpy as np

from radio_engine.model.runtime import ServingModel

#: changes remembered for incremental pool updates; older pools rescore the whole catalog
CHANGE_LOG_LENGTH = 65536
#: unknown-track input vectors cached (by artist) before the cache is cleared
UNKNOWN_CACHE_SIZE = 100_000


class Catalog:
    """Track vectors and metadata by row; `epoch` moves on every change.

    `instance` is random per catalog object: rows are only meaningful inside the worker process
    that built them, so a stored pool of rows is trusted only when its instance matches.
    """

    def __init__(self, track_in_dim: int, query_dim: int, capacity: int = 1024) -> None:
        capacity = max(int(capacity), 1)
        self.ids: list[str] = []
        self.index: dict[str, int] = {}
        self.artists: list[str] = []
        self.titles: list[str] = []
        self.artist_rows: dict[str, list[int]] = defaultdict(list)
        self.artist_code: dict[str, int] = {}  # artist name -> small int ('' is never coded)
        self._in = np.zeros((capacity, track_in_dim), dtype=np.float32)
        self._out = np.zeros((capacity, query_dim), dtype=np.float32)
        self._popularity = np.zeros(capacity, dtype=np.float32)
        self._active = np.zeros(capacity, dtype=bool)
        self._audio = np.zeros(capacity, dtype=bool)
        self._artist = np.full(capacity, -1, dtype=np.int32)
        self.epoch = 0
        self.instance = secrets.randbits(32)
        self.unknown_total = 0  # events whose track was not in the catalog (a metric)
        self._unknown_cache: dict[str, np.ndarray] = {}
        self._log_epochs: list[int] = []
        self._log_rows: list[int] = []
        self._log_start = 0  # changes after this epoch are in the log

    # -- building ---------------------------------------------------------------------------
    @classmethod
    def from_model(cls, model: ServingModel) -> Catalog:
        """A catalog holding the model's learned tracks (rows = the track table's rows)."""
        t = model.tracks
        return cls.from_arrays(t.track_ids, t.artist_ids, t.track_in, t.track_out, t.popularity)

    @classmethod
    def from_arrays(
        cls,
        track_ids: np.ndarray | list[str],
        artist_ids: np.ndarray | list[str],
        track_in: np.ndarray,
        track_out: np.ndarray,
        popularity: np.ndarray | None = None,
    ) -> Catalog:
        """A catalog from precomputed vectors (the model's table, or a benchmark's)."""
        ids = [str(t) for t in track_ids]
        n = len(ids)
        if len(set(ids)) != n:
            raise ValueError("catalog track ids must be unique")
        if not (len(artist_ids) == track_in.shape[0] == track_out.shape[0] == n):
            raise ValueError(
                f"catalog arrays disagree: {n} ids, {len(artist_ids)} artists, "
                f"{track_in.shape[0]} track_in rows, {track_out.shape[0]} track_out rows"
            )
        catalog = cls(track_in.shape[1], track_out.shape[1], capacity=n + max(1024, n // 8))
        catalog._in[:n] = track_in
        catalog._out[:n] = track_out
        if popularity is not None:
            catalog._popularity[:n] = popularity
        catalog._active[:n] = True
        catalog.ids = ids
        catalog.index = {tid: row for row, tid in enumerate(ids)}
        catalog.artists = [str(a) for a in artist_ids]
        catalog.titles = [""] * n
        for row, artist in enumerate(catalog.artists):
            catalog._artist[row] = catalog._code(artist)
            if artist:
                catalog.artist_rows[artist].append(row)
        catalog.epoch = 1
        catalog._log_start = 1
        return catalog

    def _code(self, artist: str) -> int:
        """The artist's code, made on first sight; -1 for no artist."""
        if not artist:
            return -1
        code = self.artist_code.get(artist)
        if code is None:
            code = self.artist_code[artist] = len(self.artist_code)
        return code

    def _grow(self) -> None:
        """Double every per-row array (amortised O(1) appends)."""
        capacity = 2 * self._in.shape[0]
        for name in ("_in", "_out", "_popularity", "_active", "_audio", "_artist"):
            old = getattr(self, name)
            new = np.zeros((capacity, *old.shape[1:]), dtype=old.dtype)
            if name == "_artist":
                new.fill(-1)
            new[: old.shape[0]] = old
            setattr(self, name, new)

    def _changed(self, row: int) -> None:
        """Move the epoch and log which row changed."""
        self.epoch += 1
        self._log_epochs.append(self.epoch)
        self._log_rows.append(row)
        if len(self._log_rows) > CHANGE_LOG_LENGTH:
            drop = len(self._log_rows) - CHANGE_LOG_LENGTH // 2
            self._log_start = self._log_epochs[drop - 1]
            del self._log_epochs[:drop], self._log_rows[:drop]

    def upsert_audio_track(self, record: dict[str, Any], model: ServingModel) -> int:
        """Add or update a track from its tracks-topic record (schemas/track.v1.json); its row.

        The vectors come from the model's track encoder: the id's learned part when the model
        knows the id, the artist's when it knows the artist, and the audio embedding.
        """
        track_id = record["track_id"]
        artist = record.get("artist_id", "")
        embedding = np.asarray(record["embedding"], dtype=np.float32)
        if embedding.shape != (model.dims.audio_embedding,):
            raise ValueError(
                f"track {track_id}: embedding has {embedding.size} values, model wants "
                f"{model.dims.audio_embedding} (made by {record.get('model_version')})"
            )
        track_in, track_out = model.encode_tracks(
            np.array([model.track_index.get(track_id, 0)]),
            np.array([model.artist_index.get(artist, 0)]),
            embedding[None, :],
            np.ones(1, dtype=np.float32),
        )
        return self.upsert(
            track_id,
            track_in[0],
            track_out[0],
            artist=artist,
            title=record.get("title"),
            has_audio=True,
        )

    def upsert(
        self,
        track_id: str,
        track_in: np.ndarray,
        track_out: np.ndarray,
        artist: str = "",
        title: str | None = None,
        has_audio: bool = False,
    ) -> int:
        """Add or replace one track's vectors; an existing track keeps its row (and its artist
        unless a new one is named)."""
        row = self.index.get(track_id)
        if row is None:
            row = len(self.ids)
            if row >= self._in.shape[0]:
                self._grow()
            self.ids.append(track_id)
            self.index[track_id] = row
            self.artists.append(artist)
            self.titles.append(title or "")
            if artist:
                self.artist_rows[artist].append(row)
            self._artist[row] = self._code(artist)
        else:
            if title is not None:
                self.titles[row] = title
            if artist and artist != self.artists[row]:
                self._move_artist(row, artist)
        self._in[row] = track_in
        self._out[row] = track_out
        self._active[row] = True
        self._audio[row] = has_audio or self._audio[row]
        self._changed(row)
        return row

    def _move_artist(self, row: int, artist: str) -> None:
        """Give a row another artist (a record naming one the table did not know)."""
        old = self.artists[row]
        if old:
            self.artist_rows[old].remove(row)
        self.artists[row] = artist
        self.artist_rows[artist].append(row)
        self._artist[row] = self._code(artist)

    def remove(self, track_id: str) -> None:
        """Stop recommending a track (a tombstone on the tracks topic)."""
        row = self.index.get(track_id)
        if row is not None and self._active[row]:
            self._active[row] = False
            self._changed(row)

    # -- reading ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self._active[: len(self.ids)].sum())

    @property
    def version(self) -> tuple[int, int]:
        """(instance, epoch): what a cached pool was built against."""
        return self.instance, self.epoch

    @property
    def size(self) -> int:
        """Rows in use (active or not)."""
        return len(self.ids)

    @property
    def audio_count(self) -> int:
        """Active tracks whose vectors came from their audio."""
        return int((self._audio & self._active)[: len(self.ids)].sum())

    @property
    def track_in(self) -> np.ndarray:
        """Step-input vectors [rows, track_in] (a view: do not keep across inserts)."""
        return self._in[: len(self.ids)]

    @property
    def track_out(self) -> np.ndarray:
        """Output vectors [rows, query] (a view: do not keep across inserts)."""
        return self._out[: len(self.ids)]

    @property
    def active(self) -> np.ndarray:
        """Whether each row may be queued [rows] bool."""
        return self._active[: len(self.ids)]

    @property
    def has_audio(self) -> np.ndarray:
        """Whether each row's vectors came from audio [rows] bool."""
        return self._audio[: len(self.ids)]

    @property
    def popularity(self) -> np.ndarray:
        """Training play counts [rows] (0 for tracks known only by audio)."""
        return self._popularity[: len(self.ids)]

    @property
    def artist_codes(self) -> np.ndarray:
        """Artist code per row [rows] int32, -1 when the track has no artist."""
        return self._artist[: len(self.ids)]

    def rows(self, track_ids: list[str]) -> np.ndarray:
        """Rows of the given ids (-1 for ids not in the catalog)."""
        found = map(self.index.get, track_ids, itertools.repeat(-1))
        return np.fromiter(found, dtype=np.int64, count=len(track_ids))

    def codes(self, artists: list[str]) -> np.ndarray:
        """Codes of artist names (-1 for '' and artists no track in the catalog has)."""
        found = map(self.artist_code.get, artists, itertools.repeat(-1))
        return np.fromiter(found, dtype=np.int32, count=len(artists))

    def artist_of(self, track_id: str) -> str:
        """The catalog's artist for a track ('' when unknown)."""
        row = self.index.get(track_id)
        return self.artists[row] if row is not None else ""

    def changed_rows_since(self, epoch: int) -> np.ndarray | None:
        """Rows added, updated or removed after `epoch`; None when the log no longer reaches it."""
        if epoch < self._log_start or epoch > self.epoch:
            return None
        start = bisect.bisect_right(self._log_epochs, epoch)
        return np.unique(np.asarray(self._log_rows[start:], dtype=np.int64))

    def track_in_for(
        self, track_ids: list[str], artist_ids: list[str], model: ServingModel
    ) -> tuple[np.ndarray, int]:
        """Step-input track vectors for events: (float32 [B, track_in], count of unknown tracks).

        A track outside the catalog gets the model's unknown-id vector plus its artist's vector
        when the event names an artist the model knows (encoded once per artist, then cached).
        The unknowns are also added to `unknown_total`.
        """
        rows = self.rows(track_ids)
        out = (
            self._in[np.maximum(rows, 0)]
            if len(self.ids)
            else np.zeros((len(track_ids), self._in.shape[1]), dtype=np.float32)
        )
        missing = np.flatnonzero(rows < 0)
        for i in missing.tolist():
            out[i] = self._unknown_vector(artist_ids[i], model)
        self.unknown_total += missing.size
        return out, int(missing.size)

    def _unknown_vector(self, artist: str, model: ServingModel) -> np.ndarray:
        """The input vector of a track the catalog lacks: unknown id + the artist when known."""
        vec = self._unknown_cache.get(artist)
        if vec is None:
            if len(self._unknown_cache) >= UNKNOWN_CACHE_SIZE:
                self._unknown_cache.clear()
            vec = model.encode_tracks(
                np.zeros(1, dtype=np.int64),
                np.array([model.artist_index.get(artist, 0)]),
                np.zeros((1, model.dims.audio_embedding), dtype=np.float32),
                np.zeros(1, dtype=np.float32),
            )[0][0]
            self._unknown_cache[artist] = vec
        return vec

    def describe(self, track_ids: list[str]) -> list[dict[str, Any]]:
        """Id, artist and title of tracks, for the web page and queue messages."""
        described = []
        for tid in track_ids:
            row = self.index.get(tid)
            entry: dict[str, Any] = {"track_id": tid}
            if row is not None:
                if self.artists[row]:
                    entry["artist_id"] = self.artists[row]
                if self.titles[row]:
                    entry["title"] = self.titles[row]
            described.append(entry)
        return described

"""The catalog: track ids <-> rows of the float32 matrices the selector scores.

Starts from the model's track table (tracks learned in training, queueable without audio) and
grows from radio.tracks.v1 (tracks whose audio arrived, queueable before anyone played them).
Rows are appended into capacity-doubling arrays, so an insert is O(1) amortised.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from radio_engine.model.runtime import ServingModel


class Catalog:
    """Track vectors and metadata by row; `epoch` moves on every change."""

    def __init__(self, track_in_dim: int, query_dim: int, capacity: int = 1024) -> None:
        self.ids: list[str] = []
        self.index: dict[str, int] = {}
        self.artists: list[str] = []
        self.titles: list[str] = []
        self.artist_rows: dict[str, list[int]] = defaultdict(list)
        self._in = np.zeros((capacity, track_in_dim), dtype=np.float32)
        self._out = np.zeros((capacity, query_dim), dtype=np.float32)
        self._popularity = np.zeros(capacity, dtype=np.float32)
        self._active = np.zeros(capacity, dtype=bool)
        self._audio = np.zeros(capacity, dtype=bool)
        self.epoch = 0
        self._unknown_cache: dict[str, np.ndarray] = {}

    # -- building ---------------------------------------------------------------------------
    @classmethod
    def from_model(cls, model: ServingModel) -> Catalog:
        """A catalog holding the model's learned tracks."""
        t = model.tracks
        catalog = cls(
            model.dims.track_in, model.dims.query, capacity=max(1024, 2 * len(t.track_ids))
        )
        n = len(t.track_ids)
        catalog._in[:n] = t.track_in
        catalog._out[:n] = t.track_out
        catalog._popularity[:n] = t.popularity
        catalog._active[:n] = True
        for row, (tid, artist) in enumerate(
            zip(t.track_ids.tolist(), t.artist_ids.tolist(), strict=True)
        ):
            catalog.ids.append(tid)
            catalog.index[tid] = row
            catalog.artists.append(artist)
            catalog.titles.append("")
            if artist:
                catalog.artist_rows[artist].append(row)
        catalog.epoch = 1
        return catalog

    def _grow(self) -> None:
        capacity = 2 * self._in.shape[0]
        for name in ("_in", "_out", "_popularity", "_active", "_audio"):
            old = getattr(self, name)
            new = np.zeros((capacity, *old.shape[1:]), dtype=old.dtype)
            new[: old.shape[0]] = old
            setattr(self, name, new)

    def upsert_audio_track(self, record: dict[str, Any], model: ServingModel) -> int:
        """Add or update a track from its tracks-topic record; returns its row."""
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
        row = self.index.get(track_id)
        if row is None:
            row = len(self.ids)
            if row >= self._in.shape[0]:
                self._grow()
            self.ids.append(track_id)
            self.index[track_id] = row
            self.artists.append(artist)
            self.titles.append(record.get("title", ""))
            if artist:
                self.artist_rows[artist].append(row)
        else:
            self.titles[row] = record.get("title", self.titles[row])
        self._in[row] = track_in[0]
        self._out[row] = track_out[0]
        self._active[row] = True
        self._audio[row] = True
        self.epoch += 1
        return row

    def remove(self, track_id: str) -> None:
        """Stop recommending a track (a tombstone on the tracks topic)."""
        row = self.index.get(track_id)
        if row is not None and self._active[row]:
            self._active[row] = False
            self.epoch += 1

    # -- reading ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self._active[: len(self.ids)].sum())

    @property
    def size(self) -> int:
        """Rows in use (active or not)."""
        return len(self.ids)

    @property
    def audio_count(self) -> int:
        return int((self._audio & self._active)[: len(self.ids)].sum())

    @property
    def track_out(self) -> np.ndarray:
        """Output vectors [rows, query] (a view: do not keep across inserts)."""
        return self._out[: len(self.ids)]

    @property
    def active(self) -> np.ndarray:
        return self._active[: len(self.ids)]

    @property
    def popularity(self) -> np.ndarray:
        return self._popularity[: len(self.ids)]

    def rows(self, track_ids: list[str]) -> np.ndarray:
        """Rows of the given ids (-1 for ids not in the catalog)."""
        return np.array([self.index.get(t, -1) for t in track_ids], dtype=np.int64)

    def artist_of(self, track_id: str) -> str:
        row = self.index.get(track_id)
        return self.artists[row] if row is not None else ""

    def track_in_for(
        self, track_ids: list[str], artist_ids: list[str], model: ServingModel
    ) -> tuple[np.ndarray, int]:
        """Step-input track vectors for events: (float32 [B, track_in], count of unknown tracks).

        A track outside the catalog gets the model's unknown-id vector plus its artist's vector
        when the event names a known artist.
        """
        out = np.empty((len(track_ids), self._in.shape[1]), dtype=np.float32)
        unknown = 0
        for i, (tid, artist) in enumerate(zip(track_ids, artist_ids, strict=True)):
            row = self.index.get(tid)
            if row is not None:
                out[i] = self._in[row]
                continue
            unknown += 1
            vec = self._unknown_cache.get(artist)
            if vec is None:
                vec = model.encode_tracks(
                    np.zeros(1, dtype=np.int64),
                    np.array([model.artist_index.get(artist, 0)]),
                    np.zeros((1, model.dims.audio_embedding), dtype=np.float32),
                    np.zeros(1, dtype=np.float32),
                )[0][0]
                self._unknown_cache[artist] = vec
            out[i] = vec
        return out, unknown

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

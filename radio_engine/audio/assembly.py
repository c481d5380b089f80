"""Audio chunks -> track records: ordered assembly, incremental features, embedding when complete.

Plain logic with no Kafka: the worker's audio agent feeds it raw messages in partition order and
publishes what it returns. Each chunk is decoded on arrival and its MFCC frames computed at once,
so the work is spread over the chunks and a finished track only costs the deltas and the encoder.
At most `max_in_progress` tracks are assembled at once: a new track evicts the one started
longest ago (its later chunks become out_of_order dead letters), so tracks whose last chunk
never comes cannot grow the worker's memory without bound.

Restarts: what is assembled lives only in memory. Given each chunk's partition and offset, the
assembler keeps `resume` (audio/resume.py) up to date: the offset per partition from which a
fresh assembler, reading again, gives the same tracks and refusals, so no unfinished track is
cut in two. The worker commits only that far (worker/audio.py); a worker killed mid-track reads
the track's first chunks again after its restart and finishes it as if it had never died.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from radio_engine import schemas
from radio_engine.audio.decode import decode_chunk
from radio_engine.audio.features import StreamingFeatures
from radio_engine.audio.resume import ResumePoints
from radio_engine.schemas import BadMessage

#: metadata fields copied from a track's first chunk into its track record
METADATA_FIELDS = ("artist_id", "title", "album", "duration_s")


@dataclass
class TrackInProgress:
    """A track whose chunks are arriving: its features so far and the chunk it expects next."""

    features: StreamingFeatures
    metadata: dict[str, Any]
    next_seq: int = 1
    started_at: float = field(default_factory=time.monotonic)
    #: where its first chunk was read (offset None: the caller does not track offsets)
    partition: int = 0
    offset: int | None = None


class AudioAssembler:
    """Turns ordered audio chunks into track records (schemas/track.v1.json)."""

    def __init__(
        self,
        embed: Callable[[np.ndarray], np.ndarray],
        model_version: str,
        *,
        max_chunk_bytes: int,
        max_track_seconds: float,
        max_in_progress: int = 64,
    ) -> None:
        self.embed = embed
        self.model_version = model_version
        self.max_chunk_bytes = max_chunk_bytes
        self.max_track_seconds = max_track_seconds
        self.max_in_progress = max_in_progress
        self.in_progress: dict[str, TrackInProgress] = {}  # oldest start first
        self.evicted = 0
        self.resume = ResumePoints()

    def accept(
        self,
        key: bytes | None,
        raw: bytes | None,
        partition: int = 0,
        offset: int | None = None,
    ) -> dict[str, Any] | None:
        """Take one chunk message; return the finished track record, or None if more is due.

        Raises BadMessage (reason: bad_json, schema, key_mismatch, oversize, out_of_order,
        bad_audio) for a chunk that cannot be used; a track with a bad chunk is abandoned.
        With the chunk's `offset` in `partition`, `resume` follows where a re-read must start.
        """
        if offset is not None:
            self.resume.read(partition, offset)
        if raw is None:  # a tombstone
            raise BadMessage("schema", "empty message (null value)")
        # base64 inflates by 4/3; allow the JSON envelope on top of the decoded limit
        if len(raw) > self.max_chunk_bytes * 4 // 3 + 4096:
            raise BadMessage("oversize", f"chunk message of {len(raw)} bytes is over the limit")
        chunk = schemas.decode("audio_chunk", raw)
        for name in ("seq", "sample_rate", "channels"):  # JSON Schema: 2.0 is an integer too
            if isinstance(chunk.get(name), float):
                chunk[name] = int(chunk[name])
        track_id = chunk["track_id"]
        if key != track_id.encode():  # exact bytes: no key, or one that only decodes alike, is not
            raise BadMessage("key_mismatch", f"key {key!r} is not track_id {track_id!r}")
        seq = chunk["seq"]
        if seq == 0:
            metadata = {
                k: chunk["metadata"][k] for k in METADATA_FIELDS if k in chunk.get("metadata", {})
            }
            track = TrackInProgress(
                features=StreamingFeatures(), metadata=metadata, partition=partition, offset=offset
            )
            self._drop(track_id)  # a restart goes to the back of the line
            while len(self.in_progress) >= max(self.max_in_progress, 1):
                self._drop(next(iter(self.in_progress)))
                self.evicted += 1
            self.in_progress[track_id] = track
            if offset is not None:
                self.resume.open(partition, track_id, offset)
        else:
            track = self.in_progress.get(track_id)
            if track is None or track.partition != partition or seq != track.next_seq:
                expected = (
                    "seq 0 (no track in progress)" if track is None else f"seq {track.next_seq}"
                )
                same_partition = track is not None and track.partition == partition
                self._drop(track_id, offset if same_partition else None)
                raise BadMessage(
                    "out_of_order", f"track {track_id}: got seq {seq}, expected {expected}"
                )
            track.next_seq += 1
            if offset is not None:
                self.resume.extend(partition, track_id, offset)
        try:
            self._push(track, chunk)
        except BadMessage:
            self._drop(track_id, offset)
            raise
        if not chunk["last"]:
            return None
        self._drop(track_id, offset)
        return self._finish(track_id, track)

    def _drop(self, track_id: str, offset: int | None = None) -> None:
        """Take a track out of progress (finished, refused, evicted or restarted); its span
        closes at its last chunk, or at `offset`, the chunk that ended it."""
        track = self.in_progress.pop(track_id, None)
        if track is not None and track.offset is not None:
            self.resume.close(track.partition, track_id, offset)

    def forget(self, partition: int) -> None:
        """Drop every track in progress from `partition` and what `resume` knows of it: the
        partition was taken away, or is about to be read again from its resume point."""
        for track_id in [
            t for t, track in self.in_progress.items() if track.partition == partition
        ]:
            del self.in_progress[track_id]
        self.resume.forget(partition)

    def _push(self, track: TrackInProgress, chunk: dict[str, Any]) -> None:
        try:
            data = base64.b64decode(chunk["data"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadMessage("bad_audio", f"data is not base64: {exc}") from None
        if len(data) > self.max_chunk_bytes:
            raise BadMessage("oversize", f"chunk of {len(data)} bytes > {self.max_chunk_bytes}")
        samples, rate = decode_chunk(
            data, chunk["format"], chunk.get("sample_rate"), chunk.get("channels")
        )
        track.features.push(samples, rate)
        if track.features.seconds > self.max_track_seconds:
            raise BadMessage(
                "oversize", f"track is longer than {self.max_track_seconds:.0f} s of audio"
            )

    def _finish(self, track_id: str, track: TrackInProgress) -> dict[str, Any]:
        frames = track.features.finish()
        if frames.shape[0] < 2:
            raise BadMessage("bad_audio", f"track {track_id} has too little audio to describe")
        embedding = np.asarray(self.embed(frames), dtype=np.float32).reshape(-1)
        record: dict[str, Any] = {
            "track_id": track_id,
            **track.metadata,
            "embedding": [float(v) for v in embedding],
            "model_version": self.model_version,
            "audio_seconds": round(float(track.features.seconds), 3),
        }
        return schemas.validate("track", record)

"""Where a restart must start reading the audio topic again so that no track is cut in two.

A track's chunks are assembled in memory, so a worker that dies mid-track loses what it had.
The worker therefore commits the audio topic's offset only up to a *resume point*: re-read from
there with an empty assembler, every chunk gives the same result as the first time. That holds
when no track "straddles" the point, i.e. no track whose first chunk lies before the point has
a chunk at or after it: such a chunk would come without its seq 0 and be refused as out of
order. A track in progress straddles every point after its first chunk, so the resume point is
at most the first chunk of the oldest unfinished track; a finished (or abandoned) track whose
chunks span the point pulls it back to its own first chunk, and so on (`resume_offset`).

Plain bookkeeping, per partition: the next offset to read, and the span (first, last offset)
of every track started there that may still straddle a future resume point.
"""

from __future__ import annotations

from collections.abc import Iterable


def resume_offset(next_offset: int, spans: Iterable[tuple[int, int | None]]) -> int:
    """The lowest offset such that no span (first, last; last None: still open) starts before
    it and reaches it, found from `next_offset` (everything before it has been read) down.

    One pass in descending order of `first` suffices: once the point moves down to a span's
    first offset, only spans starting lower can reach it.
    """
    point = next_offset
    for first, last in sorted(spans, key=lambda span: span[0], reverse=True):
        if first < point and (last is None or last >= point):
            point = first
    return point


class ResumePoints:
    """The resume point of each partition, kept up to date as tracks open, grow and close."""

    def __init__(self) -> None:
        self._next: dict[int, int] = {}
        self._open: dict[int, dict[str, list[int]]] = {}  # partition -> track -> [first, last]
        self._closed: dict[int, list[tuple[int, int]]] = {}

    def read(self, partition: int, offset: int) -> None:
        """A record at `offset` was read (whatever became of it)."""
        self._next[partition] = max(self._next.get(partition, 0), offset + 1)

    def open(self, partition: int, track_id: str, offset: int) -> None:
        """A track's first chunk was read at `offset`."""
        self._open.setdefault(partition, {})[track_id] = [offset, offset]

    def extend(self, partition: int, track_id: str, offset: int) -> None:
        """Another chunk of an open track was read at `offset`."""
        span = self._open.get(partition, {}).get(track_id)
        if span is not None:
            span[1] = max(span[1], offset)

    def close(self, partition: int, track_id: str, offset: int | None = None) -> None:
        """The track ended (finished, refused or evicted); `offset`: the chunk that ended it,
        when that chunk came after the last one it took."""
        span = self._open.get(partition, {}).pop(track_id, None)
        if span is not None:
            last = max(span[1], offset) if offset is not None else span[1]
            self._closed.setdefault(partition, []).append((span[0], last))

    def resume_at(self, partition: int) -> int | None:
        """The offset to commit for `partition` (None: nothing read there yet). Closed spans
        wholly before it can no longer matter and are forgotten."""
        if partition not in self._next:
            return None
        closed = self._closed.get(partition, [])
        spans: list[tuple[int, int | None]] = [(first, None) for first, _ in self._opens(partition)]
        point = resume_offset(self._next[partition], [*spans, *closed])
        self._closed[partition] = [span for span in closed if span[1] >= point]
        return point

    def _opens(self, partition: int) -> list[tuple[int, int]]:
        return [(first, last) for first, last in self._open.get(partition, {}).values()]

    def forget(self, partition: int) -> None:
        """Drop everything known about a partition (it was revoked, or will be read again)."""
        self._next.pop(partition, None)
        self._open.pop(partition, None)
        self._closed.pop(partition, None)

    def tracked(self, partition: int) -> int:
        """Spans kept for a partition, open and closed (bounded: see assembly.py)."""
        return len(self._open.get(partition, {})) + len(self._closed.get(partition, []))

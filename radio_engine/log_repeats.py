"""Repeated log lines of the Kafka clients, rate-limited: the first of a kind, then a summary.

With its broker gone, aiokafka (and Faust and mode above it) log the same few errors for every
retry: thousands of lines a minute that bury everything else. `RepeatFilter` lets the first
record of each kind through (kind: logger, level and message template, so the changing address
or error text of a retry does not make a new kind), drops the like ones that follow, and lets
one through again once `interval_s` has passed, marked with how many were dropped:
"... [repeated 1234 times in the last 30 s]". Records of other loggers are never touched.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

#: seconds between two records of one kind that are let through
INTERVAL_S = 30.0
#: loggers (and their children) whose repeats are limited: the Kafka client and the framework
NOISY_LOGGERS = ("aiokafka", "faust", "mode")
#: kinds remembered at most (the oldest is forgotten first), so odd messages cannot grow memory
MAX_KINDS = 1000


class Window:
    """One kind of record: when one was last let through, and how many were dropped since."""

    __slots__ = ("dropped", "since")

    def __init__(self, since: float) -> None:
        self.since = since
        self.dropped = 0


def admit(
    windows: OrderedDict[object, Window], kind: object, now: float, interval_s: float
) -> tuple[bool, int, float]:
    """Whether a record of `kind` at time `now` is let through, and if so how many like records
    were dropped before it and over how many seconds: (let through, dropped, seconds)."""
    window = windows.get(kind)
    if window is not None and now - window.since < interval_s:
        window.dropped += 1
        return False, 0, 0.0
    dropped, seconds = (window.dropped, now - window.since) if window is not None else (0, 0.0)
    windows[kind] = Window(now)
    windows.move_to_end(kind)
    while len(windows) > MAX_KINDS:
        windows.popitem(last=False)
    return True, dropped, seconds


class RepeatFilter(logging.Filter):
    """A handler filter that rate-limits the records of `loggers` (module docstring)."""

    def __init__(
        self,
        interval_s: float = INTERVAL_S,
        loggers: Iterable[str] = NOISY_LOGGERS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.interval_s = interval_s
        self.loggers = tuple(loggers)
        self.clock = clock
        self.windows: OrderedDict[object, Window] = OrderedDict()

    def _limited(self, name: str) -> bool:
        return any(name == n or name.startswith(n + ".") for n in self.loggers)

    def filter(self, record: logging.LogRecord) -> bool:
        """False drops the record; a record let through after drops says how many."""
        if not self._limited(record.name):
            return True
        kind = (record.name, record.levelno, str(record.msg))
        passed, dropped, seconds = admit(self.windows, kind, self.clock(), self.interval_s)
        if passed and dropped:
            record.msg = (
                f"{record.getMessage()} [repeated {dropped} times in the last {seconds:.0f} s]"
            )
            record.args = ()  # the message is formatted already (and None trips mode's formatter)
        return passed


def limit_repeats(logger: logging.Logger | None = None, interval_s: float = INTERVAL_S) -> None:
    """Put one RepeatFilter on every handler of `logger` (default: the root logger), once."""
    target = logger if logger is not None else logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RepeatFilter) for f in handler.filters):
            handler.addFilter(RepeatFilter(interval_s))

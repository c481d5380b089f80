"""The repeat filter: the first record of a kind, then one summary per interval; no broker."""

from __future__ import annotations

import io
import logging
from collections import OrderedDict

import pytest

from radio_engine.log_repeats import MAX_KINDS, RepeatFilter, Window, admit, limit_repeats


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record(name: str, msg: str, *args: object, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_admit_lets_the_first_through_then_counts_until_the_interval_ends() -> None:
    windows: OrderedDict[object, Window] = OrderedDict()
    assert admit(windows, "k", 0.0, 30.0) == (True, 0, 0.0)
    assert [admit(windows, "k", t, 30.0)[0] for t in (1.0, 10.0, 29.9)] == [False] * 3
    assert admit(windows, "k", 31.0, 30.0) == (True, 3, 31.0)
    assert admit(windows, "k", 40.0, 30.0) == (False, 0, 0.0)
    assert admit(windows, "other", 40.0, 30.0) == (True, 0, 0.0)


def test_admit_remembers_a_bounded_number_of_kinds() -> None:
    windows: OrderedDict[object, Window] = OrderedDict()
    for i in range(MAX_KINDS + 5):
        admit(windows, i, 0.0, 30.0)
    assert len(windows) == MAX_KINDS and 0 not in windows and MAX_KINDS + 4 in windows


def test_retries_of_one_error_become_the_first_line_and_a_summary() -> None:
    clock = Clock()
    flt = RepeatFilter(interval_s=30.0, clock=clock)
    passed = []
    for i in range(2000):  # a retry every 15 ms for 30 s, each with another error text
        clock.now = i * 0.015
        r = record("aiokafka.conn", "Unable connect to node with id %s: %s", 1, f"errno {i}")
        if flt.filter(r):
            passed.append(r.getMessage())
    assert passed == ["Unable connect to node with id 1: errno 0"]
    clock.now = 30.5
    r = record("aiokafka.conn", "Unable connect to node with id %s: %s", 1, "errno x")
    assert flt.filter(r)
    assert r.getMessage() == (
        "Unable connect to node with id 1: errno x [repeated 1999 times in the last 30 s]"
    )


def test_kinds_are_told_apart_by_logger_level_and_template() -> None:
    flt = RepeatFilter(clock=Clock())
    first = [
        record("aiokafka.conn", "a %s", 1),
        record("aiokafka.cluster", "a %s", 1),
        record("aiokafka.conn", "a %s", 1, level=logging.WARNING),
        record("aiokafka.conn", "b %s", 1),
    ]
    assert all(flt.filter(r) for r in first)
    assert not any(flt.filter(r) for r in [record("aiokafka.conn", "a %s", 2)])


@pytest.mark.parametrize("name", ["radio_engine.worker", "aiokafkaesque", "root"])
def test_other_loggers_are_never_limited(name: str) -> None:
    flt = RepeatFilter(clock=Clock())
    assert all(flt.filter(record(name, "same line")) for _ in range(100))


@pytest.mark.parametrize("name", ["aiokafka", "faust.transport.drivers.aiokafka", "mode.services"])
def test_the_kafka_client_and_framework_loggers_are_limited(name: str) -> None:
    flt = RepeatFilter(clock=Clock())
    assert [flt.filter(record(name, "same line")) for _ in range(3)] == [True, False, False]


def test_limit_repeats_puts_one_filter_on_each_handler_of_a_logger() -> None:
    logger = logging.getLogger("test_log_repeats.isolated")
    logger.propagate = False
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    try:
        limit_repeats(logger)
        limit_repeats(logger)  # idempotent
        assert sum(isinstance(f, RepeatFilter) for f in handler.filters) == 1
        noisy = logging.getLogger("aiokafka.test_log_repeats")
        for _ in range(50):  # records of another logger reach this handler only by propagation
            handler.handle(noisy.makeRecord(noisy.name, logging.ERROR, __file__, 1, "x", (), None))
        assert stream.getvalue().splitlines() == ["x"]
    finally:
        logger.removeHandler(handler)


def test_a_summary_line_formats_through_the_workers_log_formatter() -> None:
    """The worker logs through mode's formatter, which rewrites a record's args."""
    from mode.utils.logging import ExtensionFormatter

    clock = Clock()
    flt = RepeatFilter(clock=clock)
    for _ in range(3):
        flt.filter(record("aiokafka.cluster", "Unable to update metadata from %s", [1]))
    clock.now = 31.0
    last = record("aiokafka.cluster", "Unable to update metadata from %s", [1])
    assert flt.filter(last)
    text = ExtensionFormatter(stream=io.StringIO(), fmt="%(message)s").format(last)
    assert text == "Unable to update metadata from [1] [repeated 2 times in the last 31 s]"

"""Send generated hostile input (tests/fuzz_messages.py) to a running worker and check it.

Checks, all through the worker's process interface: the process is alive with the same pid;
every message due to be refused is on the dead-letter topic with its reason, found by the
topic/partition/offset the letter carries, with its original key and bytes; nothing else is
there; the worker's counters agree (events applied, chunks accepted, tracks embedded, dead
letters by reason); and its resident memory after a warm-up share and after the whole run.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from prometheus_client.parser import text_string_to_metric_families

from radio_engine.player.kafka_io import make_consumer, make_producer
from radio_engine.worker.process import WorkerProcess
from tests.fuzz_messages import ACCEPTED, AUDIO, LISTENS, Fuzzed


@dataclass
class FuzzReport:
    """What one run found; `problems` is empty when the worker did everything right."""

    sent: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    rss_kib: dict[str, int] = field(default_factory=dict)
    expected: Counter[tuple[str, str]] = field(default_factory=Counter)  # (topic, verdict)
    dead_letters: Counter[tuple[str, str]] = field(default_factory=Counter)  # (topic, reason)
    mismatches: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    crashed: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The report as plain JSON-able data."""
        return {
            "sent": self.sent,
            "seconds": self.seconds,
            "rss_kib": self.rss_kib,
            "expected": {f"{t}/{v}": n for (t, v), n in sorted(self.expected.items())},
            "dead_letters": {f"{t}/{r}": n for (t, r), n in sorted(self.dead_letters.items())},
            "mismatches": len(self.mismatches),
            "mismatch_examples": self.mismatches[:20],
            "problems": self.problems,
            "crashed": self.crashed,
        }


def rss_kib(pid: int) -> int:
    """Resident memory of a process (VmRSS, KiB), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def metric_samples(worker: WorkerProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample on the worker's /metrics: (name, sorted labels) -> value."""
    text = worker.get("/metrics", timeout=10).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def metric_sum(samples: dict[Any, float], name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels`."""
    return sum(
        v
        for (n, ls), v in samples.items()
        if n == name and all(dict(ls).get(k) == w for k, w in labels.items())
    )


async def send(worker: WorkerProcess, messages: list[Fuzzed]) -> list[tuple[int, int]]:
    """Produce the messages in order to the worker's topics; their (partition, offset)."""
    topics = {LISTENS: worker.settings.topic_listens, AUDIO: worker.settings.topic_audio}
    producer = make_producer(worker.settings)
    await producer.start()
    try:
        futures = [await producer.send(topics[m.topic], value=m.value, key=m.key) for m in messages]
        done = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return [(md.partition, md.offset) for md in done]


def wait_processed(worker: WorkerProcess, listens: int, audio: int, timeout: float) -> None:
    """Wait until the worker has counted this many listen records and audio chunks."""
    deadline = time.monotonic() + timeout
    seen = (0.0, 0.0)
    while time.monotonic() < deadline:
        if not worker.alive():
            return
        samples = metric_samples(worker)
        seen = (
            metric_sum(samples, "radio_listen_events_total"),
            metric_sum(samples, "radio_audio_chunks_total"),
        )
        if seen[0] >= listens and seen[1] >= audio:
            return
        time.sleep(0.5)
    raise AssertionError(f"worker counted {seen} of ({listens}, {audio}) in {timeout} s")


async def read_dead_letters(worker: WorkerProcess, at_least: int, timeout: float) -> list[Any]:
    """The dead-letter topic from the start: at least `at_least` records, then 2 s of quiet."""
    consumer = make_consumer(
        worker.settings, worker.settings.topic_dead_letters, max_partition_fetch_bytes=4 << 20
    )
    await consumer.start()
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    quiet_since = time.monotonic()
    try:
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            new = [r for records in batch.values() for r in records]
            got += new
            if new:
                quiet_since = time.monotonic()
            if len(got) >= at_least and time.monotonic() - quiet_since > 2.0:
                break
    finally:
        await consumer.stop()
    return got


def run_fuzz(
    worker: WorkerProcess, messages: list[Fuzzed], warmup: float = 0.25, timeout: float = 300
) -> FuzzReport:
    """Send `messages` (the first `warmup` share first, then the rest) and check the worker."""
    report = FuzzReport(sent=len(messages))
    pid = worker.proc.pid
    split = int(len(messages) * warmup)
    placed: list[tuple[int, int]] = []
    report.rss_kib["start"] = rss_kib(pid)
    started = time.monotonic()
    for name, part in (("warmup", messages[:split]), ("rest", messages[split:])):
        placed += asyncio.run(send(worker, part))
        sent = messages[: len(placed)]
        wait_processed(
            worker,
            sum(m.topic == LISTENS for m in sent),
            sum(m.topic == AUDIO for m in sent),
            timeout,
        )
        report.seconds[f"{name}_sent_and_processed"] = time.monotonic() - started
        if not worker.alive():
            break
        report.rss_kib[f"after_{name}"] = rss_kib(pid)
    report.crashed = not worker.alive() or worker.proc.pid != pid
    if report.crashed:
        report.problems.append(f"worker died: exit {worker.proc.poll()}")
        return report
    for m in messages:
        report.expected[(m.topic, m.verdict)] += 1
    _check_dead_letters(worker, messages, placed, report, timeout)
    _check_metrics(worker, messages, report)
    report.seconds["total"] = time.monotonic() - started
    return report


def _check_dead_letters(
    worker: WorkerProcess,
    messages: list[Fuzzed],
    placed: list[tuple[int, int]],
    report: FuzzReport,
    timeout: float,
) -> None:
    """Every refused message has its letter, with its reason, key and bytes; nothing else."""
    s = worker.settings
    names = {LISTENS: s.topic_listens, AUDIO: s.topic_audio}
    due = {
        (names[m.topic], *where): m
        for m, where in zip(messages, placed, strict=True)
        if m.verdict != ACCEPTED
    }
    letters = asyncio.run(read_dead_letters(worker, len(due), timeout))
    found: set[tuple[str, int, int]] = set()
    for record in letters:
        letter = orjson.loads(record.value)
        where = (letter["topic"], letter["partition"], letter["offset"])
        report.dead_letters[(letter["topic"], letter["reason"])] += 1
        m = due.get(where)
        if m is None:
            report.mismatches.append(f"{where}: refused ({letter['reason']}) but due to be applied")
            continue
        found.add(where)
        if letter["reason"] != m.verdict:
            report.mismatches.append(
                f"{where} {m.topic}/{m.kind}: reason {letter['reason']}, expected {m.verdict} "
                f"({letter['error'][:120]})"
            )
        if not _holds_original(letter, record.key, m):
            report.mismatches.append(f"{where} {m.topic}/{m.kind}: letter lost the original")
    for where, m in due.items():
        if where not in found:
            report.mismatches.append(f"{where} {m.topic}/{m.kind}: no dead letter ({m.verdict})")


def _holds_original(letter: dict[str, Any], key: bytes | None, m: Fuzzed) -> bool:
    """The letter keeps the message's key (as its own key and key_b64) and its bytes."""
    value = m.value or b""
    kept = base64.b64decode(letter["value_b64"])
    whole = kept == value and not letter.get("value_truncated")
    cut = letter.get("value_truncated") and letter["value_bytes"] == len(value)
    key_b64 = None if m.key is None else base64.b64encode(m.key).decode()
    return (
        key == m.key
        and letter["key_b64"] == key_b64
        and bool(whole or (cut and value[: len(kept)] == kept))
    )


def _check_metrics(worker: WorkerProcess, messages: list[Fuzzed], report: FuzzReport) -> None:
    """The worker's own counters agree with the verdicts."""
    samples = metric_samples(worker)
    s = worker.settings
    want = {
        "listen events applied": sum(
            m.topic == LISTENS and m.verdict == ACCEPTED for m in messages
        ),
        "audio chunks accepted": sum(m.topic == AUDIO and m.verdict == ACCEPTED for m in messages),
        "tracks embedded": sum(m.completes_track for m in messages),
    }
    got = {
        "listen events applied": metric_sum(
            samples, "radio_listen_events_total", outcome="applied"
        ),
        "audio chunks accepted": metric_sum(
            samples, "radio_audio_chunks_total", outcome="accepted"
        ),
        "tracks embedded": metric_sum(samples, "radio_tracks_embedded_total"),
    }
    names = {LISTENS: s.topic_listens, AUDIO: s.topic_audio}
    refused = Counter((names[m.topic], m.verdict) for m in messages if m.verdict != ACCEPTED)
    for (topic, reason), n in refused.items():
        want[f"dead letters {topic} {reason}"] = n
        got[f"dead letters {topic} {reason}"] = metric_sum(
            samples, "radio_dead_letters_total", topic=topic, reason=reason
        )
    got["dead letters, all"] = metric_sum(samples, "radio_dead_letters_total")
    want["dead letters, all"] = sum(refused.values())
    for name, n in want.items():
        if got[name] != n:
            report.problems.append(f"{name}: worker counted {got[name]:g}, expected {n}")

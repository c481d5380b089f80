"""Hostile input, short form: ~2,000 generated messages (tests/fuzz_messages.py) at a real worker
on the real broker: no crash, every refusal in the dead letters with its reason, memory flat.

The long form is `python benchmarks/fuzz_input.py` (10,000 messages, a table of figures).
"""

from __future__ import annotations

import time
from pathlib import Path

from radio_engine.broker.config import MESSAGE_MAX_BYTES
from radio_engine.settings import Settings
from tests.fuzz_messages import ACCEPTED, Limits, generate, summary
from tests.fuzz_run import run_fuzz
from tests.integration.conftest import start_worker, worker_settings

#: small audio limits so that oversize chunks and tracks fit far under the broker's limit
LIMITS = Limits(
    max_chunk_bytes=64 * 1024, max_track_seconds=30.0, max_message_bytes=MESSAGE_MAX_BYTES - 16384
)
#: resident memory the worker may gain between the warm-up quarter and the end: the first batches
#: of near-limit messages set the allocator's high-water mark, later growth would be a leak
RSS_MARGIN_KIB = 50 * 1024


def test_two_thousand_hostile_messages_no_crash_every_refusal_explained(
    kafka_settings: Settings, tmp_path: Path, slice_model: Path
) -> None:
    messages = generate(2000, seed=20240607, limits=LIMITS)
    kinds = summary(messages)
    assert len(messages) == 2000 and len({k for _, k, _ in kinds}) >= 30
    assert {v for _, _, v in kinds} >= {
        ACCEPTED,
        "bad_json",
        "schema",
        "key_mismatch",
        "bad_audio",
        "oversize",
        "out_of_order",
    }
    settings = worker_settings(
        kafka_settings,
        tmp_path,
        slice_model,
        f"fuzz-{time.time_ns() % 10**6}",
        audio_max_chunk_bytes=LIMITS.max_chunk_bytes,
        audio_max_track_seconds=LIMITS.max_track_seconds,
    )
    worker = start_worker(settings, tmp_path / "worker.log")
    try:
        report = run_fuzz(worker, messages, timeout=240)
    finally:
        worker.stop()
    log = (tmp_path / "worker.log").read_text()[-3000:]
    assert not report.crashed, log
    assert report.mismatches == [], report.mismatches[:20]
    assert report.problems == [], report.problems
    assert sum(report.dead_letters.values()) == sum(
        n for (_, verdict), n in report.expected.items() if verdict != ACCEPTED
    )
    grown = report.rss_kib["after_rest"] - report.rss_kib["after_warmup"]
    assert grown < RSS_MARGIN_KIB, report.rss_kib

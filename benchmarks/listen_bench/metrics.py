"""A worker's /metrics: scrape it, sum and diff counters, and the per-run outcome breakdowns."""

from __future__ import annotations

import asyncio
import re
import urllib.request


def http_get(port: int, path: str) -> bytes:
    """GET a worker's page on loopback."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return response.read()


Sample = tuple[str, dict[str, str], float]
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def scrape(port: int) -> list[Sample]:
    """Every sample of a worker's /metrics (Prometheus text format) as (name, labels, value)."""
    samples = []
    for line in http_get(port, "/metrics").decode().splitlines():
        if not line or line.startswith("#"):
            continue
        head, value = line.rsplit(" ", 1)
        name, _, labels = head.partition("{")
        samples.append((name, dict(_LABEL.findall(labels)), float(value)))
    return samples


def total(samples: list[Sample], name: str, **labels: str) -> float:
    """Sum of a metric's samples whose labels match."""
    return sum(
        v for n, lab, v in samples if n == name and all(lab.get(k) == x for k, x in labels.items())
    )


def diff(after: list[Sample], before: list[Sample], name: str, **labels: str) -> float:
    """How much a metric moved between two scrapes."""
    return total(after, name, **labels) - total(before, name, **labels)


async def scrape_all(ports: list[int]) -> list[Sample]:
    """The samples of every worker together (counters then sum across workers)."""
    out: list[Sample] = []
    for port in ports:
        out += await asyncio.to_thread(scrape, port)
    return out


def outcomes(after: list[Sample], before: list[Sample]) -> dict[str, float]:
    """radio_listen_events_total by outcome over the run."""
    outcomes = {lab.get("outcome", "") for n, lab, _ in after if n == "radio_listen_events_total"}
    return {
        o: diff(after, before, "radio_listen_events_total", outcome=o) for o in sorted(outcomes)
    }


def breakdown(after: list[Sample], before: list[Sample]) -> dict[str, float]:
    """Where the worker says its time went over the run (its own histograms' sums and counts)."""
    names = {
        "batches": "radio_listen_batch_size_events_count",
        "batch_s": "radio_listen_batch_seconds_sum",
        "gru_s": "radio_gru_step_seconds_sum",
        "selector_s": "radio_selector_seconds_sum",
        "queues_published": "radio_queues_published_total",
        "rescores": "radio_catalog_rescores_total",
        "first_pools": "radio_first_pools_total",
        "unknown_tracks": "radio_unknown_track_events_total",
        "event_to_queue_s_sum": "radio_event_to_queue_seconds_sum",
        "event_to_queue_count": "radio_event_to_queue_seconds_count",
    }
    return {key: diff(after, before, metric) for key, metric in names.items()}

"""The broker phases' tables (throughput, the worker's own account, latency, state bytes)."""

from __future__ import annotations

import argparse
from typing import Any

from listen_bench.common import PARTITIONS
from listen_bench.markdown import num, table
from listen_bench.report_offline import print_offline_tables


def throughput_rows(r: dict[str, Any]) -> list[list[str]]:
    """One table row per throughput figure that was measured."""
    rows, one, two = [], r.get("engine"), r.get("two")
    if one:
        rows.append(_engine_row("radio-engine worker, 1 process", one, _first_last(one)))
        rows += _wall_rows(one)
    if two:
        ratio = two["events_per_s"] / one["events_per_s"] if one else float("nan")
        each = " + ".join(num(x) for x in two["processed_per_worker"])
        note = f"{_first_last(two)}; {num(ratio, '.2f')}x one worker; per worker {each}"
        rows.append(_engine_row("radio-engine workers, 2 processes", two, note))
        rows += _wall_rows(two)
    if r.get("faust"):
        f = r["faust"]
        rows.append(
            ["bare Faust agent, counting only", num(f["events"]), _check(f["events"], f["sent"], "counted"),
             num(f["events_per_s"]), num(f["window_s"], ".2f"), "first -> last counted"]
        )  # fmt: skip
    if r.get("aiokafka"):
        a = r["aiokafka"]
        rows.append(
            ["plain aiokafka consume-decode-produce", num(a["events"]),
             _check(a["produced"], a["sent"], "in output topic"), num(a["events_per_s"]),
             num(a["window_s"], ".2f"),
             "first consumed -> last acked"]
        )  # fmt: skip
    return rows


def _check(got: float, want: float, what: str) -> str:
    """'N what', marked MISMATCH when it is not the number of events sent."""
    return f"{num(got)} {what}" + ("" if got == want else f" MISMATCH (sent {num(want)})")


def _first_last(e: dict[str, Any]) -> str:
    """How the headline figure is taken, and how far its first batch can lift it."""
    how = "first -> last queue record"
    if e.get("batch_max") and e["events"] > e["batch_max"]:
        lift = e["batch_max"] / (e["events"] - e["batch_max"])
        how += f" (the first batch is counted, not timed: up to +{lift:.0%})"
    return how


def _engine_row(label: str, e: dict[str, Any], note: str) -> list[str]:
    """A throughput row for worker runs, with the worker's own event count by outcome."""
    verified = (
        _check(e["processed"], e["events"], "counted")
        + " "
        + " ".join(f"{k}={num(v)}" for k, v in e["outcomes"].items())
    )
    return [
        label,
        num(e["events"]),
        verified,
        num(e["events_per_s"]),
        num(e["window_s"], ".2f"),
        note,
    ]


def _wall_rows(e: dict[str, Any]) -> list[list[str]]:
    """The same run's other two figures: from the first send, and the drain after the last ack."""
    sent = f"backlog sent in {e['send_s']:.2f} s while the worker(s) ran"
    drain = (
        f"{num(e['drain_events'])} events not yet counted by the worker when the last send was "
        "acked; "
        f"backlog still arriving for {e['arriving_share']:.0%} of the window above"
    )
    return [
        ["  same run, from the first send", "", "", num(e["wall_events_per_s"]),
         num(e["wall_s"], ".2f"), sent],
        ["  same run, drain after the last ack", "", "", num(e["drain_events_per_s"]),
         num(e["drain_s"], ".2f"), drain],
    ]  # fmt: skip


def breakdown_rows(r: dict[str, Any]) -> list[list[str]]:
    """The worker's own account of the backlog run, one row per engine run."""
    rows = []
    for label, key in (("1 worker", "engine"), ("2 workers", "two")):
        e = r.get(key)
        if not e:
            continue
        b, window = e["breakdown"], e["window_s"]
        rows.append(
            [label, num(b["batches"]), num(e["events"] / max(b["batches"], 1), ".1f"),
             f"{b['batch_s']:.2f} ({b['batch_s'] / window:.0%})", f"{b['gru_s']:.2f}",
             f"{b['selector_s']:.2f}", num(b["queues_published"]), num(b["rescores"]),
             " + ".join(f"{c:.1f}" for c in e["cpu_s"])]
        )  # fmt: skip
    return rows


def print_tables(r: dict[str, Any], args: argparse.Namespace) -> None:
    """Every table the run produced (the broker's two headline tables unless --skip-broker)."""
    if not getattr(args, "skip_broker", False):
        table(
            f"Throughput, {args.events:,} events, one broker, {PARTITIONS} partitions",
            ["pipeline", "events", "verified", "events/s", "window s", "how"],
            throughput_rows(r),
        )
        table(
            "Where the worker's time went (its /metrics, backlog run)",
            ["run", "batches", "events/batch", "in-batch s, summed (of window)", "GRU s",
             "selector s", "queues", "rescores", "worker CPU s"],
            breakdown_rows(r),
        )  # fmt: skip
    if r.get("latency"):
        latency_table(r["latency"])
    if r.get("state"):
        state_table(r["state"])
    print_offline_tables(r)


def latency_table(lt: dict[str, Any]) -> None:
    """The paced run's latency percentiles, what the worker counted and where its time went."""
    table(
        "Latency per listen event (queue record time - event record time), fresh listeners",
        ["rate (achieved)", "s", "events", "listeners", "measured", "no queue", "p50 ms",
         "p90 ms", "p99 ms", "max ms", "worker's own mean ms"],
        [[f"{lt['rate']:.0f} ({lt['achieved_rate']:.0f})", f"{lt['seconds']:g}",
          num(lt["events"]), num(lt["listeners"]), num(lt["measured"]), num(lt["no_queue"]),
          num(lt["p50_ms"], ".1f"), num(lt["p90_ms"], ".1f"), num(lt["p99_ms"], ".1f"),
          num(lt["max_ms"], ".1f"), num(lt["worker_mean_ms"], ".1f")]],
    )  # fmt: skip
    counted = ", ".join(f"{k}={num(v)}" for k, v in lt["outcomes"].items())
    b = lt["breakdown"]
    print(f"the worker counted {num(lt['processed'])} of these events: {counted}")
    print(
        f"the worker during this run: {sum(lt['cpu_s']):.1f} CPU s, {num(b['batches'])} "
        f"batches of {lt['events'] / max(b['batches'], 1):.0f} events on average, "
        f"{b['batch_s']:.2f} s in batches (GRU {b['gru_s']:.2f}, selector "
        f"{b['selector_s']:.2f}), {num(b['rescores'])} catalog rescores, "
        f"{num(b['first_pools'])} shared first pools"
    )
    for m in lt["no_queue_events"]:
        print(f"no queue for: {m}")
    if lt["negative"]:
        print(f"{lt['negative']} events with a negative latency (clock or matching problem)")
    print()


def state_table(s: dict[str, Any]) -> None:
    """Changelog bytes per listener after the backlog run."""
    table(
        f"State bytes per listener ({s['topic']}, last record per key)",
        ["listeners", "changelog records", "mean bytes", "p50 bytes", "max bytes"],
        [[num(s["listeners"]), num(s["records"]), num(s["mean_bytes"]), num(s["p50_bytes"]),
          num(s["max_bytes"])]],
    )  # fmt: skip

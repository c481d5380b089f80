"""What the figures depend on: the model served, the machine, the broker, the settings."""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path
from typing import Any

from listen_bench.common import PARTITIONS
from radio_engine.model.runtime import ServingModel
from radio_engine.player.replay import read_events
from radio_engine.settings import Settings


def resolve_model(arg: str | None, base: Settings, data: Path, tmp: Path) -> tuple[Path, str]:
    """--model DIR, else the trained model at Settings().model_path, else an untrained export."""
    if arg:
        return Path(arg), f"--model {arg}"
    if (base.model_path / "manifest.json").exists():
        return base.model_path, f"the model at Settings().model_path ({base.model_path})"
    from radio_engine.training.export import export_random_model

    tracks: dict[str, str] = {}
    for e in read_events(data / "30music" / "events.csv"):
        tracks.setdefault(e["track_id"], e.get("artist_id", ""))
    path = export_random_model(tmp / "model", list(tracks), list(tracks.values()))
    why = f"no manifest.json at {base.model_path}"
    return path, f"UNTRAINED export with the full 30Music catalog ({why})"


def cpu_model() -> str:
    """The CPU's model name (Linux), else the machine type."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def broker_version(base: Settings) -> str:
    """The Kafka version the launcher runs, with the broker jar it found."""
    libs = base.home_path / f"kafka-{base.kafka_version}" / "libs"
    jars = sorted(p.name for p in libs.glob("kafka_2.13-*.jar") if "test" not in p.name)
    return f"Apache Kafka {base.kafka_version} ({', '.join(jars) or 'jar not found'})"


#: settings that only say where things are: left out of the printed settings line
_WHERE = ("BROKER", "HOME", "_DIR", "KAFKA", "PORT", "APP_ID", "REPLAY", "TOPIC_")


def shown_settings(settings: Settings) -> dict[str, str]:
    """Every engine knob (batching and any new field), partitions; not addresses and paths."""
    return {
        name: str(getattr(settings, name.removeprefix("RADIO_").lower()))
        for name, *_ in Settings.describe()
        if name == "RADIO_TOPIC_PARTITIONS" or not any(w in name for w in _WHERE)
    }


def header(info: dict[str, Any], broker: bool = True) -> None:
    """Print what the figures depend on: machine, load, broker (if used), settings, model, events."""
    m = info["machine"]
    print(f"machine: {m['platform']}, {m['cpu']}, {m['cores']} cores, Python {m['python']}")
    print(f"load at start (1, 5, 15 min): {load_text(info['load_start'])}")
    if broker:
        print(f"broker: {info['broker']}, KRaft, single node, loopback; {PARTITIONS} partitions")
    else:
        print("broker: not started (--skip-broker)")
    print("settings: " + ", ".join(f"{k}={v}" for k, v in info["settings"].items()))
    md = info["model"]
    print(
        f"model: {md['source']}\n       version {md['version']}, trained={md['trained']}, "
        f"catalog {md['catalog']:,} tracks, dims {md['dims']}"
    )
    print(f"events: {info['events']:,} real 30Music listen events, {info['listeners']:,} listeners")
    print(flush=True)


def load_text(avg: tuple[float, ...] | list[float]) -> str:
    """Load averages as text."""
    return ", ".join(f"{x:.2f}" for x in avg)


def describe_machine(base: Settings) -> dict[str, Any]:
    """Machine, load, broker and settings: what every benchmark's figures depend on."""
    return {
        "machine": {
            "platform": platform.platform(),
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
        },
        "load_start": list(os.getloadavg()),
        "broker": broker_version(base),
        "partitions": PARTITIONS,
        "settings": shown_settings(base.with_overrides(topic_partitions=PARTITIONS)),
    }


def describe_run(base: Settings, model: ServingModel, source: str, events: list) -> dict[str, Any]:
    """The context every figure depends on."""
    return {
        **describe_machine(base),
        "model": {
            "source": source,
            "dir": str(model.dir),
            "version": model.version,
            "trained": model.manifest.trained,
            "catalog": len(model.tracks.track_ids),
            "dims": vars(model.dims),
        },
        "events": len(events),
        "listeners": len({e["listener_id"] for e in events}),
    }

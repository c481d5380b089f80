"""`radio-engine broker start|stop|status`: the dev broker from the command line."""

from __future__ import annotations

import argparse
import sys
import time

from radio_engine.broker.config import split_host_port
from radio_engine.broker.launcher import broker_paths, port_open, read_pid, start, stop
from radio_engine.broker.maven import MissingTool
from radio_engine.broker.topics import TopicCreationFailed, ensure_topics_sync
from radio_engine.settings import Settings


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Dispatch one broker action; exit code 0 on success, 1 when not running, 2 on errors."""
    host, port = split_host_port(settings.broker)
    paths = broker_paths(settings)
    if args.action == "status":
        pid = read_pid(paths)
        if port_open(host, port):
            owner = f"dev broker pid {pid}" if pid else "not started by radio-engine"
            print(f"broker: reachable at {settings.broker} ({owner})")
            return 0
        print(f"broker: not running at {settings.broker}")
        return 1
    if args.action == "stop":
        stopped = stop(paths)
        print(
            "broker: stopped" if stopped else f"broker: no dev broker running at {settings.broker}"
        )
        return 0
    began = time.monotonic()
    already = port_open(host, port)
    try:
        start(settings)
    except MissingTool as exc:
        print(f"broker: {exc}", file=sys.stderr)
        return 2
    try:
        created = ensure_topics_sync(settings)
    except TopicCreationFailed as exc:  # e.g. RADIO_TOPIC_REPLICATION_FACTOR above 1 here
        print(f"broker: {exc}", file=sys.stderr)
        return 2
    took = time.monotonic() - began
    state = "already running" if already else f"started in {took:.1f} s"
    print(f"broker: Apache Kafka {settings.kafka_version} (KRaft) at {settings.broker}, {state}")
    print(f"broker: log {paths.log}; topics created: {', '.join(created) or 'none (all existed)'}")
    if args.foreground:
        print("broker: Ctrl-C stops it")
        try:
            while read_pid(paths) is not None:
                time.sleep(1.0)
        except KeyboardInterrupt:
            stop(paths)
            print("broker: stopped")
    return 0

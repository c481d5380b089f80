"""`radio-engine worker`: load the model, make sure the topics exist, run the Faust worker."""

from __future__ import annotations

import argparse
import gc
import logging
import sys

from threadpoolctl import threadpool_limits

from radio_engine.settings import SettingError, Settings

log = logging.getLogger("radio_engine.worker")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run one worker until SIGINT/SIGTERM; returns the process exit code."""
    settings = settings.with_overrides(
        model_dir=getattr(args, "model", None),
        worker_port=getattr(args, "port", None),
        worker_data_dir=getattr(args, "data_dir", None),
    )
    return run_worker(settings)


def run_worker(settings: Settings) -> int:
    """Build the engine and the Faust app for `settings` and run the worker in this process."""
    from radio_engine.broker.topics import TopicCreationFailed, ensure_topics_sync
    from radio_engine.engine import Engine
    from radio_engine.worker.app import build_app
    from radio_engine.worker.stopping import StoppingWorker

    problem = preflight(settings)  # before logging is set up: its one line stays the only one
    if problem:
        print(f"radio-engine worker: {problem}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    http_token = settings.secret("http_token")  # preflight read it once already
    # BLAS threads beyond the worker's share fight the event loop (and each other) on few cores
    limits = threadpool_limits(limits=settings.worker_threads)
    try:
        engine = Engine.load(settings)
    except FileNotFoundError as exc:
        print(f"radio-engine worker: {exc}", file=sys.stderr)
        return 2
    try:
        ensure_topics_sync(settings)
    except TopicCreationFailed as exc:  # e.g. more replicas than brokers: the broker says so
        print(f"radio-engine worker: {exc}", file=sys.stderr)
        return 2
    app = build_app(settings, engine, http_token)
    # the model, catalog and app live as long as the process: keep the collector off them
    gc.collect()
    gc.freeze()
    print(
        f"radio-engine worker: model {engine.model.version} "
        f"({'trained' if engine.model.manifest.trained else 'UNTRAINED weights'}), "
        f"{len(engine.catalog)} catalog tracks, broker {settings.broker}, "
        f"metrics http://127.0.0.1:{settings.worker_port}/metrics",
        flush=True,
    )
    worker = StoppingWorker(app, stop_grace_s=settings.stop_grace_s, loglevel="WARNING", quiet=True)
    # faust's Worker leaves the root logger at DEBUG (~40 us of logging a produced record)
    worker.on_setup_root_logger = _quiet_root_logger  # type: ignore[method-assign]
    worker.execute_from_commandline()
    limits.restore_original_limits()
    return 0


def preflight(settings: Settings) -> str | None:
    """Why this worker cannot start, in one line (a setting that cannot work, no broker answers,
    the broker refuses its TLS or SASL credentials, its port is taken), or None: checked before
    Faust starts, which would otherwise retry with tracebacks."""
    from radio_engine.broker.config import split_host_port
    from radio_engine.broker.launcher import port_open
    from radio_engine.kafka_diagnosis import problem_sync, unreachable_line
    from radio_engine.kafka_security import security_kwargs

    try:
        security_kwargs(settings)
        settings.secret("http_token")
    except SettingError as exc:
        return str(exc)
    if not any(port_open(*split_host_port(b), timeout=3.0) for b in settings.broker.split(",")):
        return unreachable_line(settings.broker)
    if settings.kafka_security_protocol.upper() != "PLAINTEXT":
        problem = problem_sync(settings)
        if problem:
            return problem
    if port_open("127.0.0.1", settings.worker_port):
        return (
            f"port {settings.worker_port} is in use (another worker?); pick a free one with "
            "--port / RADIO_WORKER_PORT"
        )
    return None


def _quiet_root_logger(logger: logging.Logger, level: int) -> None:
    """Keep the root logger at WARNING and our own at INFO, whatever faust's Worker sets, and
    rate-limit the Kafka clients' repeated lines (a broker gone: thousands a minute)."""
    from radio_engine.log_repeats import limit_repeats

    logger.setLevel(logging.WARNING)
    logging.getLogger("radio_engine").setLevel(logging.INFO)
    limit_repeats(logger)

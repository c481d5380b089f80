"""Start, stop and check the dev broker: a real Apache Kafka (KRaft) in a child JVM on loopback.

start: check Java 17+ -> resolve jars (Maven, cached) -> write config -> format storage once ->
launch `kafka.Kafka` detached -> wait until the port answers and the log says it started.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from radio_engine.broker.config import (
    SaslListener,
    log4j2_properties,
    server_properties,
    split_host_port,
)
from radio_engine.broker.maven import MissingTool, ensure_kafka_jars
from radio_engine.settings import Settings

READY_LINE = "Kafka Server started"
JVM_OPTIONS = (
    "-Xms256m",
    "-Xmx768m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-Djava.awt.headless=true",
)


@dataclass(frozen=True)
class BrokerPaths:
    """The files of one dev broker instance (one per port)."""

    root: Path

    @property
    def properties(self) -> Path:
        return self.root / "server.properties"

    @property
    def log4j(self) -> Path:
        return self.root / "log4j2.properties"

    @property
    def data(self) -> Path:
        return self.root / "kraft-logs"

    @property
    def log(self) -> Path:
        return self.root / "broker.log"

    @property
    def pid(self) -> Path:
        return self.root / "broker.pid"


def broker_paths(settings: Settings) -> BrokerPaths:
    """Where the broker for these settings keeps its config, data, log and pid."""
    _, port = split_host_port(settings.broker)
    return BrokerPaths(settings.home_path / f"broker-{port}")


def java_major_version(java: str = "java") -> int:
    """The major version of the `java` on PATH; MissingTool if there is none."""
    if shutil.which(java) is None:
        raise MissingTool(
            "Java is not on PATH: install Java 17 or newer (Debian: openjdk-17-jre-headless)"
        )
    out = subprocess.run([java, "-version"], capture_output=True, text=True)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        raise MissingTool(f"cannot read the Java version from: {(out.stderr or out.stdout)[:200]}")
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 and match.group(2) else major


def check_java() -> None:
    """Raise MissingTool unless Java 17+ is available (Kafka 4.x needs it)."""
    major = java_major_version()
    if major < 17:
        raise MissingTool(f"Kafka 4.x needs Java 17 or newer; `java` on PATH is Java {major}")


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections on host:port."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def read_pid(paths: BrokerPaths) -> int | None:
    """The pid of the running broker for these paths, or None (stale pid files are removed)."""
    try:
        pid = int(paths.pid.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        paths.pid.unlink(missing_ok=True)
        return None
    return pid


def kafka_cluster_id() -> str:
    """A fresh cluster id in Kafka's format (URL-safe base64 of 16 random bytes), never one that
    starts with "-": kafka-storage's argument parser would read that as an option (1 in 64)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def start(
    settings: Settings,
    *,
    fresh: bool = False,
    timeout: float = 120.0,
    sasl: SaslListener | None = None,
) -> BrokerPaths:
    """Start the dev broker for `settings.broker` unless one already answers there; with `sasl`,
    also a SASL_SSL listener whose SCRAM users are created when the storage is formatted."""
    host, port = split_host_port(settings.broker)
    paths = broker_paths(settings)
    if port_open(host, port):
        return paths  # ours from an earlier start, or an existing cluster: either way reachable
    check_java()
    libs = ensure_kafka_jars(settings.home_path, settings.kafka_version)
    if fresh and paths.root.exists():
        shutil.rmtree(paths.root)
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.properties.write_text(
        server_properties(host, port, settings.broker_controller_port, paths.data, sasl)
    )
    paths.log4j.write_text(log4j2_properties())
    java = ["java", *JVM_OPTIONS, f"-Dlog4j2.configurationFile={paths.log4j}", "-cp", f"{libs}/*"]
    if not (paths.data / "meta.properties").exists():
        fmt = subprocess.run(
            [
                *java,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                kafka_cluster_id(),
                "-c",
                str(paths.properties),
                *(sasl.scram_arguments() if sasl is not None else []),
            ],
            capture_output=True,
            text=True,
        )
        if fmt.returncode != 0:
            said = (fmt.stdout + fmt.stderr)[-2000:]
            for _, password in sasl.users if sasl is not None else ():
                said = said.replace(password, "***")
            raise RuntimeError(f"formatting Kafka storage failed:\n{said}")
    with open(paths.log, "wb") as log:
        proc = subprocess.Popen(
            [*java, "kafka.Kafka", str(paths.properties)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    paths.pid.write_text(str(proc.pid))
    ports = [port] if sasl is None else [port, sasl.port]
    try:
        _wait_ready(proc, paths, host, ports, timeout)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM while it starts: it must not outlive us
        stop(paths)
        raise
    return paths


def _wait_ready(
    proc: subprocess.Popen[bytes], paths: BrokerPaths, host: str, ports: list[int], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            paths.pid.unlink(missing_ok=True)
            raise RuntimeError(f"Kafka exited with code {proc.returncode}:\n{log_tail(paths)}")
        if all(port_open(host, p) for p in ports) and READY_LINE in paths.log.read_text(
            errors="replace"
        ):
            return
        time.sleep(0.2)
    stop(paths)
    raise TimeoutError(f"Kafka did not start within {timeout:.0f} s:\n{log_tail(paths)}")


def log_tail(paths: BrokerPaths, lines: int = 30) -> str:
    """The last lines of the broker log, for error messages."""
    try:
        return "\n".join(paths.log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no broker log)"


def stop(paths: BrokerPaths, timeout: float = 30.0) -> bool:
    """Stop the broker of these paths (SIGTERM, then SIGKILL); False if none was running."""
    pid = read_pid(paths)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.2)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    paths.pid.unlink(missing_ok=True)
    return True


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningBroker:
    """A broker a block is using: the caller's settings pointed at it, and, when the block
    started it, its own settings and files (so it can be crashed and started again)."""

    settings: Settings
    own: Settings | None = None
    paths: BrokerPaths | None = None
    sasl: SaslListener | None = None

    def crash(self) -> None:
        """SIGKILL the broker: a crash, nothing flushed or handed over."""
        if self.paths is None:
            raise RuntimeError("this broker was not started here; it cannot be crashed")
        pid = read_pid(self.paths)
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        try:
            os.waitpid(pid, 0)  # started by this process: reap it, or it lingers as a zombie
        except ChildProcessError:
            host, port = split_host_port(self.settings.broker)
            while port_open(host, port):
                time.sleep(0.1)
        self.paths.pid.unlink(missing_ok=True)

    def start_again(self) -> None:
        """Start the broker again on its own data (after `crash`)."""
        if self.own is None:
            raise RuntimeError("this broker was not started here")
        self.paths = start(self.own, fresh=False, sasl=self.sasl)


@contextlib.contextmanager
def broker_for(
    settings: Settings,
    *,
    fresh: bool = True,
    isolated: bool = False,
    sasl: SaslListener | None = None,
) -> Iterator[RunningBroker]:
    """A broker for the duration of a block (see `running_broker`), as a handle; `sasl` adds a
    SASL_SSL listener (the handle's settings still point at the PLAINTEXT one)."""
    scratch: Path | None = None
    if isolated:
        ensure_kafka_jars(settings.home_path, settings.kafka_version)
        scratch = Path(tempfile.mkdtemp(prefix="radio-broker-"))
        (scratch / f"kafka-{settings.kafka_version}").symlink_to(
            settings.home_path / f"kafka-{settings.kafka_version}"
        )
        broker_settings = settings.with_overrides(
            broker=f"127.0.0.1:{free_port()}", broker_controller_port=free_port(), home=str(scratch)
        )
    else:
        broker_settings = settings
    host, port = split_host_port(broker_settings.broker)
    owned = not port_open(host, port)
    # callers keep their own home (models, caches); only the broker address changes
    handle = RunningBroker(
        settings.with_overrides(
            broker=broker_settings.broker,
            broker_controller_port=broker_settings.broker_controller_port,
        ),
        sasl=sasl,
    )
    if owned:
        handle.own = broker_settings
        handle.paths = start(broker_settings, fresh=fresh, sasl=sasl)
    try:
        yield handle
    finally:
        if owned and handle.paths is not None:
            stop(handle.paths)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


@contextlib.contextmanager
def running_broker(
    settings: Settings, *, fresh: bool = True, isolated: bool = False
) -> Iterator[Settings]:
    """A broker for the duration of a block; yields the settings that point at it.

    isolated=True picks free ports and a scratch home for the broker's files (tests); its jars
    still come from the shared cache. A broker that was already answering is left running.
    """
    with broker_for(settings, fresh=fresh, isolated=isolated) as broker:
        yield broker.settings

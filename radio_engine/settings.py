"""One settings object: every setting has a type, a default, an environment variable and a doc.

Commands read `Settings.from_env()`; command-line flags override single fields with
`dataclasses.replace`. `radio-engine settings` prints the table below, so docs cannot drift.
"""

from __future__ import annotations

import dataclasses
import hmac
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "RADIO_"


def _setting(default: Any, doc: str) -> Any:
    """A dataclass field carrying its one-line doc; the env var is RADIO_<FIELD NAME>."""
    return field(default=default, metadata={"doc": doc})


class SettingError(ValueError):
    """A setting that cannot work as given: one line naming it, never a secret's value."""


def read_secret_file(path: str, setting: str) -> str:
    """The contents of a secret file with one trailing newline dropped; SettingError (naming the
    setting and the file, never the contents) when it cannot be read or is empty."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise SettingError(f"{setting}={path}: cannot read it ({why})") from None
    value = text.removesuffix("\n").removesuffix("\r")
    if not value:
        raise SettingError(f"{setting}={path}: the file is empty")
    return value


class Secret:
    """A setting's value that is never shown: its repr and str are '***' (or '' when empty), so
    a password or token cannot leak through logs, `radio-engine settings` or a Settings repr."""

    __slots__ = ("_value",)

    def __init__(self, value: str = "") -> None:
        self._value = str(value)

    def reveal(self) -> str:
        """The value itself: only for the client that sends it (and a child's environment)."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash((Secret, len(self._value)))

    def __repr__(self) -> str:
        return "'***'" if self._value else "''"

    def __str__(self) -> str:
        return "***" if self._value else ""


def default_home() -> Path:
    """Where the engine keeps caches (Kafka jars, broker data, models) unless told otherwise."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "radio-engine"


@dataclass(frozen=True)
class Settings:
    """Every knob of the engine, the worker, the broker launcher and the player tools."""

    broker: str = _setting("127.0.0.1:19092", "Kafka bootstrap servers (host:port[,host:port])")
    home: str = _setting(str(default_home()), "cache dir: Kafka jars, broker data, default model")
    model_dir: str = _setting("", "model directory to serve (empty: <home>/models/current)")
    kafka_version: str = _setting("4.1.1", "Apache Kafka version the dev broker runs")
    broker_controller_port: int = _setting(19093, "KRaft controller port of the dev broker")
    topic_partitions: int = _setting(8, "partitions of the listens/queues topics when created")
    topic_replication_factor: int = _setting(
        1,
        "replicas of every topic the engine creates, table changelogs included (min.insync."
        "replicas follows: 1 up to 2 replicas, then a majority but at most all but one)",
    )
    topic_listens: str = _setting("radio.listens.v1", "listen events in (key = listener_id)")
    topic_audio: str = _setting("radio.audio-chunks.v1", "audio chunks in (key = track_id)")
    topic_tracks: str = _setting("radio.tracks.v1", "track embeddings, compacted (key = track_id)")
    topic_queues: str = _setting("radio.queues.v1", "radio queues out (key = listener_id)")
    topic_dead_letters: str = _setting("radio.dead-letters.v1", "bad input with the reason")
    kafka_security_protocol: str = _setting(
        "PLAINTEXT", "how every Kafka client connects: PLAINTEXT, or SASL_SSL (SCRAM over TLS)"
    )
    kafka_sasl_mechanism: str = _setting(
        "SCRAM-SHA-512", "SASL mechanism with SASL_SSL: SCRAM-SHA-256 or SCRAM-SHA-512"
    )
    kafka_username: str = _setting("", "SASL user name (SASL_SSL)")
    kafka_password: Secret = _setting(  # noqa: RUF009 - a Secret is immutable
        Secret(""), "SASL password (SASL_SSL); never shown, prefer RADIO_KAFKA_PASSWORD_FILE"
    )
    kafka_password_file: str = _setting(
        "", "file holding the SASL password (read at connect time; one trailing newline dropped)"
    )
    kafka_ssl_ca_file: str = _setting(
        "", "PEM CA bundle the broker's certificate is checked against (empty: system CAs)"
    )
    kafka_ssl_cert_file: str = _setting(
        "", "PEM client certificate, for a broker that asks for one (empty: none)"
    )
    kafka_ssl_key_file: str = _setting(
        "", "PEM private key of the client certificate, unencrypted (empty: in the cert file)"
    )
    app_id: str = _setting("radio-engine", "Faust app id (consumer group, table changelogs)")
    worker_port: int = _setting(6066, "worker HTTP port: /metrics, /health, /queues/<id>")
    worker_bind: str = _setting(
        "127.0.0.1", "address the worker's HTTP server listens on (0.0.0.0 in a container)"
    )
    http_token: Secret = _setting(  # noqa: RUF009 - a Secret is immutable
        Secret(""),
        "bearer token the worker's lookups and live page require (empty: open); never shown",
    )
    http_token_file: str = _setting(
        "", "file holding the HTTP bearer token (read at start; one trailing newline dropped)"
    )
    worker_host: str = _setting(
        "127.0.0.1", "host name other workers reach this one at (its /queues/<id> redirects)"
    )
    worker_data_dir: str = _setting("", "Faust data dir (empty: <home>/worker-<port>)")
    group_session_timeout_s: float = _setting(
        10.0,
        "seconds without a heartbeat before the group drops a worker: a killed worker's "
        "partitions wait this long to move, a restarted one without RADIO_WORKER_NAME this long "
        "to rejoin (>= 6)",
    )
    stop_grace_s: float = _setting(
        6.0,
        "seconds a worker or client command may take to stop cleanly after SIGTERM/SIGINT "
        "before it exits anyway with 128 + the signal (a worker cut short is a crash: nothing "
        "is lost)",
    )
    table_standby_replicas: int = _setting(
        0, "other workers that keep a standby copy of each listener-table partition (Faust)"
    )
    worker_name: str = _setting(
        "",
        "stable name of this worker, unique in its group: set, the worker is a static group "
        "member (group.instance.id <app_id>.<name>) and a restart rejoins without waiting out "
        "its old session; empty: a dynamic member",
    )
    batch_max: int = _setting(1024, "most listen events fetched into one micro-batch")
    fetch_max_wait_s: float = _setting(
        0.01, "longest time the broker holds a fetch with no new data (latency floor), seconds"
    )
    worker_threads: int = _setting(1, "BLAS and onnxruntime threads of a worker process")
    queue_length: int = _setting(10, "tracks kept ahead in every listener's queue")
    pool_size: int = _setting(200, "candidate pool per listener, re-ranked on every event")
    pool_cache_listeners: int = _setting(100_000, "listeners whose pools a worker keeps cached")
    rescores_per_batch: int = _setting(
        0, "new listeners rescored on the event path per batch (the rest: shared first pool)"
    )
    refine_per_tick: int = _setting(
        32, "listeners on the first pool rescored per tick, off the event path"
    )
    refine_interval_s: float = _setting(0.05, "seconds between refine ticks")
    history_length: int = _setting(50, "recent tracks remembered per listener (not re-queued)")
    event_id_window: int = _setting(
        32, "last event_ids per listener a retry is recognised against (kept in its state)"
    )
    artist_window: int = _setting(3, "at most `artist_max` tracks of one artist in this window")
    artist_max: int = _setting(1, "tracks of one artist allowed inside `artist_window`")
    exploration: float = _setting(0.05, "share of queue slots given to exploration picks")
    skip_artist_s: float = _setting(
        3600.0, "event-time seconds a skip keeps its artist after every other artist"
    )
    skips_to_drop_artist: int = _setting(
        2, "skips of one artist within `skip_artist_s` that take the artist out of the queue"
    )
    dislike_artist_s: float = _setting(
        30 * 86400.0, "event-time seconds a dislike keeps its artist out of the queue"
    )
    like_artist_s: float = _setting(30 * 86400.0, "event-time seconds a like raises its artist")
    like_artist_boost: float = _setting(
        0.5, "score added to tracks of an artist the listener liked"
    )
    like_similar_boost: float = _setting(
        0.5, "score added per unit of cosine similarity to the track the listener last liked"
    )
    seed: int = _setting(7, "seed for exploration and anything else random at serve time")
    audio_max_chunk_bytes: int = _setting(768 * 1024, "largest audio chunk accepted (bytes)")
    audio_max_track_seconds: float = _setting(1200.0, "longest track audio accepted (seconds)")
    audio_max_tracks_in_progress: int = _setting(
        64, "tracks assembled at once; a new one evicts the oldest (bounds memory)"
    )
    data_dir: str = _setting("", "real data sets (empty: ../shared/data beside the checkout)")
    replay_speed: float = _setting(0.0, "replay speed-up over real time (0: as fast as possible)")

    def __post_init__(self) -> None:
        """Wrap plain strings given for secret fields (overrides, tests) in Secret."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(f.default, Secret) and not isinstance(value, Secret):
                object.__setattr__(self, f.name, Secret(value))

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Build settings from RADIO_* environment variables, falling back to the defaults."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None:
                continue
            values[f.name] = _parse(raw, type(f.default), f.name)
        return cls(**values)

    def with_overrides(self, **overrides: Any) -> Settings:
        """Return a copy with the given fields replaced (None values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def for_app(self, app_id: str, **overrides: Any) -> Settings:
        """A copy for another app id, with topics of its own named after it (a run, a test or a
        benchmark that must never read another's records)."""
        return self.with_overrides(
            app_id=app_id,
            topic_listens=f"{app_id}.listens",
            topic_queues=f"{app_id}.queues",
            topic_audio=f"{app_id}.audio",
            topic_tracks=f"{app_id}.tracks",
            topic_dead_letters=f"{app_id}.dead-letters",
            **overrides,
        )

    @property
    def group_instance_id(self) -> str | None:
        """The consumer's static group.instance.id, from `worker_name` (None: dynamic)."""
        return f"{self.app_id}.{self.worker_name}" if self.worker_name else None

    @property
    def home_path(self) -> Path:
        return Path(self.home)

    @property
    def model_path(self) -> Path:
        return Path(self.model_dir) if self.model_dir else self.home_path / "models" / "current"

    @property
    def worker_data_path(self) -> Path:
        if self.worker_data_dir:
            return Path(self.worker_data_dir)
        return self.home_path / f"worker-{self.worker_port}"

    @property
    def topic_min_insync_replicas(self) -> int:
        """min.insync.replicas of the topics the engine creates: 1 for one or two replicas (one
        broker may be down and writes go on), then a majority, at most all replicas but one."""
        factor = self.topic_replication_factor
        return max(1, min(factor - 1, factor // 2 + 1))

    @property
    def data_path(self) -> Path:
        """Where ../shared/data lives: 30music/ and game-music/ (read, never copied)."""
        if self.data_dir:
            return Path(self.data_dir)
        return Path(__file__).resolve().parent.parent.parent / "shared" / "data"

    def secret(self, name: str) -> str:
        """A secret setting's value: RADIO_<NAME> itself, else the contents of the file
        RADIO_<NAME>_FILE names ('' when neither is set; SettingError when both are)."""
        value: Secret = getattr(self, name)
        path: str = getattr(self, f"{name}_file")
        env = ENV_PREFIX + name.upper()
        if value and path:
            raise SettingError(f"{env} and {env}_FILE are both set: keep one")
        if value:
            return value.reveal()
        return read_secret_file(path, f"{env}_FILE") if path else ""

    def env_value(self, name: str) -> str:
        """The value of one field as its environment variable would carry it (secrets
        revealed): for a child process that must get exactly these settings."""
        value = getattr(self, name)
        return value.reveal() if isinstance(value, Secret) else str(value)

    @classmethod
    def describe(cls) -> list[tuple[str, str, str, str]]:
        """(env var, type, default, doc) for every setting, for `radio-engine settings`."""
        return [
            (
                ENV_PREFIX + f.name.upper(),
                type(f.default).__name__,
                repr(f.default),
                f.metadata["doc"],
            )
            for f in dataclasses.fields(cls)
        ]


def _parse(raw: str, kind: type, name: str) -> Any:
    """Parse one env value into the setting's type with an error that names the variable."""
    try:
        if kind is bool:
            return raw.strip().lower() in {"1", "true", "yes", "on"}
        return kind(raw)
    except ValueError as exc:
        raise ValueError(
            f"{ENV_PREFIX}{name.upper()}={raw!r} is not a valid {kind.__name__}"
        ) from exc

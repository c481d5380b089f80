"""The dev broker's configuration files: server.properties (KRaft combined mode) and log4j2."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

#: the SCRAM mechanisms the dev broker's SASL_SSL listener offers (users get both)
SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")

#: largest record the broker and the audio topic accept; audio chunks stay well under 1 MiB
MESSAGE_MAX_BYTES = 2 * 1024 * 1024


def split_host_port(bootstrap: str) -> tuple[str, int]:
    """The first host:port of a bootstrap string."""
    first = bootstrap.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"broker address {bootstrap!r} is not host:port")
    return host, int(port)


@dataclass(frozen=True)
class SaslListener:
    """An extra SASL_SSL listener of the dev broker: SCRAM over TLS with the broker's key and
    certificate from a PKCS12 keystore; its users are created when the storage is formatted.
    With a truststore (the CA of the client certificates) it also requires a client certificate.
    The broker itself keeps talking PLAINTEXT to itself on the loopback listener."""

    port: int
    keystore: Path
    keystore_password: str = field(repr=False)
    #: (name, password) of each SCRAM user, for both mechanisms
    users: tuple[tuple[str, str], ...] = field(repr=False)
    truststore: Path | None = None
    truststore_password: str = field(default="", repr=False)

    def properties(self, host: str) -> dict[str, str]:
        """The listener's lines of server.properties (beside those of `server_properties`)."""
        prefix = "listener.name.sasl_ssl."
        jaas = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        lines = {
            "sasl.enabled.mechanisms": ",".join(SCRAM_MECHANISMS),
            **{f"{prefix}{m.lower()}.sasl.jaas.config": jaas for m in SCRAM_MECHANISMS},
            f"{prefix}ssl.keystore.type": "PKCS12",
            f"{prefix}ssl.keystore.location": str(self.keystore),
            f"{prefix}ssl.keystore.password": self.keystore_password,
            f"{prefix}ssl.key.password": self.keystore_password,
        }
        if self.truststore is not None:
            lines |= {
                f"{prefix}ssl.truststore.type": "PKCS12",
                f"{prefix}ssl.truststore.location": str(self.truststore),
                f"{prefix}ssl.truststore.password": self.truststore_password,
                f"{prefix}ssl.client.auth": "required",
            }
        return lines

    def scram_arguments(self) -> list[str]:
        """`--add-scram` arguments of `kafka-storage format`: every user, every mechanism."""
        out = []
        for name, password in self.users:
            for mechanism in SCRAM_MECHANISMS:
                out += ["--add-scram", f"{mechanism}=[name={name},password={password}]"]
        return out


def server_properties(
    host: str, port: int, controller_port: int, log_dir: Path, sasl: SaslListener | None = None
) -> str:
    """server.properties for one node that is both broker and KRaft controller, on loopback
    (PLAINTEXT; with `sasl`, a SASL_SSL listener besides)."""
    listeners = f"PLAINTEXT://{host}:{port}"
    protocols = "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
    if sasl is not None:
        listeners += f",SASL_SSL://{host}:{sasl.port}"
        protocols += ",SASL_SSL:SASL_SSL"
    lines = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{host}:{controller_port}",
        "listeners": f"{listeners},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": listeners,
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": protocols,
        "log.dirs": str(log_dir),
        "num.partitions": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "true",
        "message.max.bytes": str(MESSAGE_MAX_BYTES),
        "replica.fetch.max.bytes": str(MESSAGE_MAX_BYTES),
        "log.retention.hours": "168",
        "log.segment.bytes": str(64 * 1024 * 1024),
        "num.network.threads": "2",
        "num.io.threads": "2",
        "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),
        **(sasl.properties(host) if sasl is not None else {}),
    }
    return "".join(f"{key}={value}\n" for key, value in lines.items())


def log4j2_properties() -> str:
    """Console logging at INFO for the lines we wait on, WARN for the chatty parts."""
    return "\n".join(
        [
            "status = warn",
            "appender.console.type = Console",
            "appender.console.name = STDOUT",
            "appender.console.layout.type = PatternLayout",
            "appender.console.layout.pattern = [%d] %p %m (%c)%n",
            "rootLogger.level = INFO",
            "rootLogger.appenderRef.stdout.ref = STDOUT",
            "logger.kafka.name = kafka",
            "logger.kafka.level = WARN",
            "logger.server.name = kafka.server.KafkaRaftServer",
            "logger.server.level = INFO",
            "logger.broker.name = kafka.server.BrokerServer",
            "logger.broker.level = INFO",
            "logger.apache.name = org.apache.kafka",
            "logger.apache.level = WARN",
            "",
        ]
    )

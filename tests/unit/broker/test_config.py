"""The dev broker's generated configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from radio_engine.broker.config import MESSAGE_MAX_BYTES, server_properties, split_host_port
from radio_engine.broker.launcher import kafka_cluster_id
from radio_engine.broker.maven import pom_xml
from radio_engine.broker.topics import topic_specs
from radio_engine.settings import Settings


def parse(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def test_server_properties_is_single_node_kraft_on_loopback(tmp_path: Path) -> None:
    props = parse(server_properties("127.0.0.1", 29092, 29093, tmp_path))
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:29093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:29092"
    assert props["log.dirs"] == str(tmp_path)
    assert props["offsets.topic.replication.factor"] == "1"
    assert int(props["message.max.bytes"]) == MESSAGE_MAX_BYTES > 1024 * 1024


def test_split_host_port_rejects_garbage() -> None:
    assert split_host_port("127.0.0.1:9092,other:9093") == ("127.0.0.1", 9092)
    with pytest.raises(ValueError, match="host:port"):
        split_host_port("localhost")


def test_cluster_id_has_kafka_uuid_shape() -> None:
    cid = kafka_cluster_id()
    assert len(cid) == 22 and "=" not in cid
    assert cid != kafka_cluster_id()


def test_no_cluster_id_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    # kafka-storage format --cluster-id -abc... reads the id as an option; the demo hit it once
    import uuid

    from radio_engine.broker import launcher

    dash_first = uuid.UUID(bytes=bytes([0xFB]) + bytes(15))  # base64 "-w..."
    draws = iter([dash_first, uuid.UUID(int=1)])
    monkeypatch.setattr(launcher.uuid, "uuid4", lambda: next(draws))
    cid = launcher.kafka_cluster_id()
    assert not cid.startswith("-") and len(cid) == 22


def test_pom_pins_kafka_and_the_slf4j_binding() -> None:
    pom = pom_xml("4.1.1")
    assert "<artifactId>kafka_2.13</artifactId>" in pom and "<version>4.1.1</version>" in pom
    assert "log4j-slf4j-impl" in pom


def test_topics_listens_wide_tracks_compacted() -> None:
    specs = {s.name: s for s in topic_specs(Settings(topic_partitions=12))}
    assert specs["radio.listens.v1"].partitions == 12
    assert specs["radio.queues.v1"].partitions == 12
    assert specs["radio.tracks.v1"].configs["cleanup.policy"] == "compact"

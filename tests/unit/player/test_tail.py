"""tail: the newest-version filter, the key -> partition map, and what a queue looks like."""

from __future__ import annotations

import time

import pytest

from radio_engine import schemas
from radio_engine.client import VersionFilter, partition_for
from radio_engine.player.tail import format_queue, format_queue_block


def queue(listener: str, version: int) -> dict[str, object]:
    return schemas.validate(
        "queue",
        {
            "listener_id": listener,
            "version": version,
            "generated_at": time.time(),
            "model_version": "m1",
            "after_event": {"track_id": "1818271", "event": "play", "ts": 1397982525.0},
            "tracks": [
                {"track_id": "900", "artist_id": "228054", "score": 0.8125},
                {"track_id": "901", "score": 0.5, "explore": True},
            ],
        },
    )


def test_only_versions_above_the_highest_seen_pass_per_listener() -> None:
    versions = VersionFilter()
    arrivals = [("a", 1), ("a", 3), ("b", 1), ("a", 2), ("a", 3), ("b", 2), ("a", 4)]
    passed = [(lid, v) for lid, v in arrivals if versions.accept(queue(lid, v))]
    assert passed == [("a", 1), ("a", 3), ("b", 1), ("b", 2), ("a", 4)]
    assert versions.highest == {"a": 4, "b": 2}


# Kafka's own murmur2 test vectors (clients UtilsTest): the Java partitioner is
# toPositive(murmur2(key)) % partitions; a player must find the partition the worker wrote to.
JAVA_MURMUR2 = {
    "21": -973932308,
    "foobar": -790332482,
    "a-little-bit-long-string": -985981536,
    "a-little-bit-longer-string": -1486304829,
    "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    "abc": 479470107,
}


@pytest.mark.parametrize("key", sorted(JAVA_MURMUR2))
@pytest.mark.parametrize("partitions", [1, 4, 8, 12])
def test_partition_is_the_java_default_partitioners(key: str, partitions: int) -> None:
    assert partition_for(key, partitions) == (JAVA_MURMUR2[key] & 0x7FFFFFFF) % partitions


def test_the_one_line_form_shows_version_cause_and_tracks() -> None:
    line = format_queue(queue("40265", 7))
    assert line == "40265 v7 after play 1818271: 900 (228054), 901 *"
    assert "0.812" in format_queue(queue("40265", 7), scores=True)


def test_the_block_shows_time_model_and_each_track_with_artist_and_score() -> None:
    lines = format_queue_block(queue("40265", 7)).splitlines()
    assert lines[0].startswith("40265 v7 at ")
    assert "after play 1818271" in lines[0] and "model m1" in lines[0]
    assert lines[1:] == ["   1. 900 (228054) 0.812", "   2. 901 0.500 *"]

"""Settings: one app id's own topics, so runs never read each other's records."""

from __future__ import annotations

from pathlib import Path

from radio_engine.settings import Settings


def test_for_app_gives_every_topic_and_the_group_the_app_id() -> None:
    base = Settings()
    s = base.for_app("run-7", worker_port=6100)
    topics = (s.topic_listens, s.topic_queues, s.topic_audio, s.topic_tracks)
    assert s.app_id == "run-7" and s.worker_port == 6100
    assert all(t.startswith("run-7.") for t in (*topics, s.topic_dead_letters))
    assert len({*topics, s.topic_dead_letters}) == 5
    assert s.broker == base.broker and base.app_id == "radio-engine"  # the base is untouched


def test_the_readme_lists_every_setting_as_the_code_describes_it() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for env, kind, default, doc in Settings.describe():
        assert f"| `{env}` | {kind} | `{default}` | {doc} |" in readme, env

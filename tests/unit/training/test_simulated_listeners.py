"""SIMULATED listeners over the real clips: held-out clips stay unplayed, tastes show in the
events, the same seed gives the same events, and the files round-trip."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch

from radio_engine.cli import main
from radio_engine.model.runtime import ServingModel
from radio_engine.settings import Settings
from radio_engine.training import train
from radio_engine.training.audio_model import AUDIO_STEPS
from radio_engine.training.data import load_events
from radio_engine.training.simulated_listeners import (
    ClipTable,
    Simulation,
    cold_start_report,
    load_clip_table,
    read_holdout,
    simulate_listeners,
    write_simulation,
)

GAME_MUSIC = Settings().data_path / "game-music"


@pytest.fixture(scope="module")
def clips() -> ClipTable:
    return load_clip_table(GAME_MUSIC, GAME_MUSIC / "metadata.csv")


@pytest.fixture(scope="module")
def sim(clips: ClipTable) -> Simulation:
    return simulate_listeners(clips, listeners=60, seed=1)


def test_the_clip_table_holds_every_real_clip(clips: ClipTable) -> None:
    assert len(clips) == 157
    assert clips.mfcc_stats.shape == (157, 40)
    assert all(f.shape[1] == 40 and f.shape[0] > 1000 for f in clips.features)
    # the artist id is the composer, else the game's name (as produce-audio sends it)
    assert set(clips.artist_id[clips.artist_id == clips.game]) <= set(clips.game)


def test_held_out_clips_are_never_played_and_every_game_keeps_one(
    clips: ClipTable, sim: Simulation
) -> None:
    played = set(sim.events.track_id.tolist())
    assert sim.holdout.size >= 20
    assert not played & set(sim.holdout.tolist())
    for game in np.unique(clips.game):
        ids = set(clips.clip_id[clips.game == game].tolist())
        if len(ids) >= 2:
            assert ids - set(sim.holdout.tolist()), game


def test_same_seed_same_events_other_seed_other_events(clips: ClipTable, sim: Simulation) -> None:
    again = simulate_listeners(clips, listeners=60, seed=1)
    other = simulate_listeners(clips, listeners=60, seed=2)
    assert np.array_equal(again.events.track_id, sim.events.track_id)
    assert np.array_equal(again.events.event, sim.events.event)
    assert not np.array_equal(other.events.track_id[:50], sim.events.track_id[:50])


def test_tastes_show_in_the_listening(clips: ClipTable, sim: Simulation) -> None:
    game_of = dict(zip(clips.clip_id.tolist(), clips.game.tolist(), strict=True))
    events = sim.events
    favourite = np.array(
        [game_of[t] in sim.tastes[u] for u, t in zip(events.user_id, events.track_id, strict=True)]
    )
    share_of_clips = np.mean([np.isin(clips.game, games).mean() for games in sim.tastes.values()])
    # measured (seed 1, 60 listeners): 0.76 of plays from favourite games, which hold 0.21 of
    # the clips; skips: 0.52 of plays outside the favourites, none inside
    assert favourite.mean() > 0.6 > 2 * share_of_clips
    skipped = np.isin(events.event, ["skip", "dislike"])
    assert skipped[~favourite].mean() > 0.4 > 0.02 > skipped[favourite].mean()
    assert set(events.event.tolist()) == {"play", "skip", "complete", "like", "dislike"}


def test_the_simulation_round_trips_through_its_files(
    clips: ClipTable, sim: Simulation, tmp_path: Path
) -> None:
    write_simulation(sim, clips, tmp_path, seed=1)
    back = load_events(tmp_path / "events.csv")
    assert back.event.tolist() == sim.events.event.tolist()
    assert back.user_id[0].startswith("sim-")
    assert "SIMULATED" in (tmp_path / "SIMULATED.md").read_text()
    held = (tmp_path / "holdout.csv").read_text().splitlines()
    assert len(held) == sim.holdout.size + 1
    assert read_holdout(tmp_path).tolist() == sim.holdout.tolist()


def test_simulate_without_the_clips_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["simulate", "--audio", str(tmp_path / "nope"), "--metadata", "m.csv", "--out", "x"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "nope" in err[0]


def test_held_out_clips_reach_the_listeners_they_fit_by_their_audio(
    clips: ClipTable, tmp_path: Path
) -> None:
    """The whole path: simulate, `train --audio`, then rank clips no listener ever played."""
    sim = simulate_listeners(clips, listeners=300, seed=0)
    write_simulation(sim, clips, tmp_path / "sim", seed=0)
    args = argparse.Namespace(
        events=str(tmp_path / "sim" / "events.csv"),
        valid=None,
        audio=str(GAME_MUSIC),
        out=str(tmp_path / "model"),
        epochs=6,
        audio_steps=AUDIO_STEPS,
        max_minutes=None,
        seed=0,
        id_only=False,
        no_feedback=False,
    )
    torch.set_num_threads(1)
    assert train.run(args, Settings()) == 0
    model = ServingModel(tmp_path / "model")
    assert not set(sim.holdout.tolist()) & set(model.tracks.track_ids.tolist())
    report = cold_start_report(model, sim.events, clips, sim.holdout, sim.tastes)
    base = report["audio"]["base_rate"]
    # measured (`radio-engine simulate` + `train` + `evaluate-simulated`, 300 listeners):
    # seed 0: audio 0.68, audio+artist 0.96, shuffled 0.23, base rate 0.22;
    # seed 3: audio 0.52, audio+artist 0.61, shuffled 0.11, base rate 0.21
    assert report["audio"]["shelf_precision"] > 2 * base
    assert report["audio+artist"]["shelf_precision"] > 2.5 * base
    assert report["shuffled audio"]["shelf_precision"] < 1.5 * base

"""`radio-engine evaluate` end to end on a tiny hand-made CSV with a random model directory."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from radio_engine.cli import main
from radio_engine.model.inputs import FEEDBACK_INDEX
from radio_engine.model.runtime import ServingModel
from radio_engine.training.data import load_events
from radio_engine.training.evaluate import METHODS, evaluate
from radio_engine.training.export import export_random_model
from radio_engine.training.listener_replay import catalog_vectors, replay_queries
from radio_engine.training.pairs import EvalCatalog

pytestmark = pytest.mark.train  # export_random_model needs PyTorch
torch.set_num_threads(1)

HEADER = [
    "fold",
    "user_id",
    "session_id",
    "track_id",
    "artist_id",
    "ts",
    "iso_time",
    "pct_played_derived",
    "gap_after_prev_s_derived",
]
ARTIST = {"a": "10", "b": "20", "c": "30", "d": "30", "e": "40", "y": "40", "z": "20"}
DAY = 86_400
# (user, session, tracks, start time)
TRAIN = [
    ("u1", 1, "abc", 1_400_000_000),
    ("u1", 2, "abd", 1_400_000_000 + DAY),
    ("u2", 3, "eab", 1_400_000_000 + DAY // 2),
]
# y and z are new (artists of e and b); pairs: a->b, b->z (cold), a->c, c->y (cold)
TEST = [
    ("u1", 4, "abz", 1_400_000_000 + 3 * DAY),
    ("u2", 5, "acy", 1_400_000_000 + 3 * DAY + 600),
]


def write_csv(path: Path, sessions: list, pct: float = 1.0) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        for user, session, tracks, start in sessions:
            for i, t in enumerate(tracks):
                ts = start + 240 * i
                w.writerow([0, user, session, t, ARTIST[t], ts, "", pct, 0])
    return path


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, Path]:
    table = list("abcde")
    model = export_random_model(tmp_path / "model", table, [ARTIST[t] for t in table], seed=3)
    return {
        "model": Path(model) if model else tmp_path / "model",
        "train": write_csv(tmp_path / "train.csv", TRAIN),
        "test": write_csv(tmp_path / "test.csv", TEST),
    }


def evaluate_json(files: dict[str, Path], capsys, *extra: str) -> dict:
    argv = ["evaluate", "--model", str(files["model"]), "--train", str(files["train"])]
    argv += ["--test", str(files["test"]), "--k", "1", "--json", *extra]
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_report_is_well_formed_with_known_baseline_numbers(files, capsys):
    report = evaluate_json(files, capsys, "--id-only-model", str(files["model"]))
    assert report["k"] == 1
    assert report["pairs"] == {"all": 4, "warm": 2, "cold": 2, "radio": 1}
    assert report["candidates"] == {
        "warm": 5,
        "table": 5,
        "cold": 2,
        "all": 7,
        "table_not_in_train": 0,
    }
    assert report["chance_hr"] == pytest.approx(1 / 5)
    assert report["chance_hr_cold"] == pytest.approx(1 / 2)
    assert report["chance_hr_cold_full"] == pytest.approx(1 / 7)
    assert list(report["methods"]) == list(METHODS)
    for m in report["methods"].values():
        for key in ("hr", "mrr", "hr_warm", "hr_cold", "next_artist_hr", "coverage"):
            assert 0.0 <= m[key] <= 1.0
    markov = report["methods"]["markov"]
    # a->b: b is the only track seen after a (3 times): a hit. a->c: c ties at 0 with a, d, e
    # below b: a miss at k=1. The cold pairs are misses in the warm pass.
    assert markov["hr"] == pytest.approx(1 / 4)
    assert markov["mrr"] == pytest.approx(1 / 4)
    assert markov["hr_warm"] == pytest.approx(1 / 2)
    # cold pass: Markov scores both new tracks 0: the chance rate
    assert markov["hr_cold"] == pytest.approx(1 / 2)
    artist = report["methods"]["artist"]
    # after b, z (b's artist) comes first among the new tracks; after c neither new track is
    # by c's artist: a tie, half a hit
    assert artist["hr_cold"] == pytest.approx(3 / 4)
    gru = report["methods"]["gru"]
    assert report["methods"]["id_only_gru"] == gru | {
        "seconds": report["methods"]["id_only_gru"]["seconds"]
    }
    # a random model's manifest has no tuned blend: the worker serves the GRU alone
    assert report["blend"]["served_source"] == "gru-only"
    assert report["methods"]["served"]["hr"] == gru["hr"]
    # the same model as the "id-only" one, blended with the same (GRU-only) weights
    served = report["methods"]["served"]
    assert report["methods"]["id_only_served"] == served | {
        "seconds": report["methods"]["id_only_served"]["seconds"]
    }
    assert report["model"]["trained"] is False
    # served minus each method, with a bootstrap interval that holds the difference
    assert list(report["served_vs"]) == [m for m in METHODS if m != "served"]
    vs_markov = report["served_vs"]["markov"]["hr"]
    assert vs_markov["diff"] == pytest.approx(served["hr"] - markov["hr"])
    assert vs_markov["low"] <= vs_markov["diff"] <= vs_markov["high"]
    assert report["served_vs"]["id_only_served"]["mrr"] == {"diff": 0.0, "low": 0.0, "high": 0.0}


def test_cold_targets_are_also_ranked_in_the_full_catalog(files, capsys):
    """The full-catalog cold pass ranks the two cold targets (z after b, y after c) among all 7
    candidates: the new tracks no longer compete only with each other."""
    argv = ["evaluate", "--model", str(files["model"]), "--train", str(files["train"])]
    assert main([*argv, "--test", str(files["test"]), "--k", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    artist = report["methods"]["artist"]
    # among the 2 new tracks both targets make a top 2
    assert artist["hr_cold"] == pytest.approx(1.0)
    # among all 7: z (b's artist, never played) comes right after b (3 plays): rank 2, a hit;
    # y's artist (that of e) is not c's: y ties with z at 0 below all 5 played tracks: a miss
    assert artist["hr_cold_full"] == pytest.approx(1 / 2)
    assert artist["mrr_cold_full"] == pytest.approx((1 / 2 + 0) / 2)
    # popularity scores every new track 0, below all 5 played ones: never in a top 2
    assert report["methods"]["popularity"]["hr_cold_full"] == 0.0
    assert report["methods"]["popularity"]["hr_cold"] == pytest.approx(1.0)  # 2 of 2
    for m in report["methods"].values():
        assert 0.0 <= m["mrr_cold_full"] <= m["hr_cold_full"] <= 1.0
    vs_artist = report["served_vs_cold_full"]["artist"]["hr"]
    served = report["methods"]["served"]
    assert vs_artist["diff"] == pytest.approx(served["hr_cold_full"] - artist["hr_cold_full"])
    assert vs_artist["low"] <= vs_artist["diff"] <= vs_artist["high"]
    assert main([*argv, "--test", str(files["test"]), "--k", "2"]) == 0
    table = capsys.readouterr().out
    assert "HR c.all" in table and "over cold pairs, c.all" in table


def test_dwell_column_is_never_read(files, capsys, tmp_path):
    first = evaluate_json(files, capsys)
    files["train"] = write_csv(tmp_path / "train2.csv", TRAIN, pct=0.01)
    files["test"] = write_csv(tmp_path / "test2.csv", TEST, pct=0.01)
    second = evaluate_json(files, capsys)
    for report in (first, second):
        report.pop("seconds")
        for m in report["methods"].values():
            m.pop("seconds")
    assert first == second


def test_table_output(files, capsys):
    argv = ["evaluate", "--model", str(files["model"]), "--train", str(files["train"])]
    assert main([*argv, "--test", str(files["test"]), "--k", "2"]) == 0
    out = capsys.readouterr().out
    assert "HR@2" in out and "markov" in out and "pairs: 4 (warm 2, cold 2)" in out
    assert "served minus each method" in out


def test_replay_uses_only_earlier_events(files):
    model = ServingModel(files["model"])
    cat = EvalCatalog(
        track_ids=model.tracks.track_ids,
        artist_codes=np.full(model.tracks.track_ids.size, -1),
        artist_names=np.zeros(0, str),
        n_table=model.tracks.track_ids.size,
        n_warm=model.tracks.track_ids.size,
    )
    track_in, _ = catalog_vectors(model, cat)
    rows = np.array([0, 1, 2, 3, 4])
    users = np.array(["u1", "u1", "u2", "u1", "u2"])
    ts = np.array([10.0, 20.0, 15.0, 20.0, 99.0])
    (q,) = replay_queries(model, track_in, [rows], [users], [ts])
    # later events (and other listeners' events) change nothing before them
    (q_short,) = replay_queries(model, track_in, [rows[:2]], [users[:2]], [ts[:2]])
    assert np.allclose(q[:2], q_short)
    # two sets stepped together equal one set; equal timestamps keep the given order
    q_a, q_b = replay_queries(
        model, track_in, [rows[:3], rows[3:]], [users[:3], users[3:]], [ts[:3], ts[3:]]
    )
    assert np.allclose(np.concatenate([q_a, q_b]), q)
    (q_swapped,) = replay_queries(
        model, track_in, [rows[[0, 3, 2, 1]]], [users[[0, 3, 2, 1]]], [ts[[0, 3, 2, 1]]]
    )
    assert not np.allclose(q_swapped[1], q[3])  # event 3 now steps before event 1
    # feedback, when given, is stepped in with its event: all plays equal the default, a skip
    # changes that listener's later queries and nobody else's
    plays = np.zeros(5, np.int64)
    (q_plays,) = replay_queries(model, track_in, [rows], [users], [ts], feedback=[plays])
    assert np.allclose(q_plays, q)
    skip = plays.copy()
    skip[1] = FEEDBACK_INDEX["skip"]
    (q_skip,) = replay_queries(model, track_in, [rows], [users], [ts], feedback=[skip])
    assert np.allclose(q_skip[[0, 2, 4]], q[[0, 2, 4]])
    assert not np.allclose(q_skip[[1, 3]], q[[1, 3]])


def test_evaluation_replays_each_event_with_its_own_feedback(files, tmp_path):
    """A skip in --train is stepped into the GRU as a skip, as the worker steps it; a model
    trained as the no-feedback ablation reads it as a play, as it was trained."""
    from radio_engine.training.data import load_events
    from radio_engine.training.evaluate import _queries
    from radio_engine.training.pairs import SessionLog

    rows = list(csv.reader(files["train"].open()))
    rows[0].append("event")
    for i, row in enumerate(rows[1:]):
        row.append("skip" if i == 1 else "play")  # u1's second event (b) is a skip
    skipped = tmp_path / "skipped.csv"
    with skipped.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    model = ServingModel(files["model"])
    train, test = load_events(skipped), load_events(files["test"])
    catalog = EvalCatalog.build(model.tracks.track_ids, model.tracks.artist_ids, train, test)
    before, log = SessionLog.from_events(train, catalog), SessionLog.from_events(test, catalog)
    assert (before.kinds == FEEDBACK_INDEX["skip"]).sum() == 1

    q, _ = _queries(model, catalog, before, log, False)
    track_in, _ = catalog_vectors(model, catalog)
    sets = ([before.rows, log.rows], [before.users, log.users], [before.ts, log.ts])
    _, q_kinds = replay_queries(model, track_in, *sets, feedback=[before.kinds, log.kinds])
    _, q_plays = replay_queries(model, track_in, *sets)
    assert np.allclose(q, q_kinds)
    u1 = log.users == "u1"
    assert not np.allclose(q[u1], q_plays[u1])  # u1's state carries the skip into the test
    assert np.allclose(q[~u1], q_plays[~u1])  # u2 never skipped

    manifest = json.loads((files["model"] / "manifest.json").read_text())
    manifest["train_config"] = {**manifest.get("train_config", {}), "feedback": False}
    (files["model"] / "manifest.json").write_text(json.dumps(manifest))
    ablation = ServingModel(files["model"])
    assert ablation.manifest.train_config["feedback"] is False
    q_ablation, _ = _queries(ablation, catalog, before, log, False)
    assert np.allclose(q_ablation, q_plays)


def test_the_radio_pass_leaves_out_targets_and_candidates_the_listener_heard_recently(
    files, capsys
):
    """u1's target b (a->b) was heard in training, so a radio never queues it again: only u2's
    a->c is a radio pair; with a window of one event (a) both are, and a is never ranked."""
    report = evaluate_json(files, capsys)
    assert report["radio_window"] == 50
    assert (report["pairs"]["warm"], report["pairs"]["radio"]) == (2, 1)
    assert set(report["served_vs_radio"]) == set(report["methods"]) - {"served"}
    model = ServingModel(files["model"])
    one = evaluate(
        model, load_events(files["train"]), load_events(files["test"]), k=1, radio_window=1
    )
    assert one["pairs"]["radio"] == 2
    # the radio pass ranks fewer candidates per pair, so no method ranks worse there
    for name, m in one["methods"].items():
        assert m["mrr_radio"] >= m["mrr_warm"] - 1e-12, name

"""Training and export: PyTorch and onnxruntime agree, step-by-step equals the whole sequence,
the reset policy touches only the slots that change listener, and a tiny real training run
produces a model directory the worker can serve."""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from radio_engine.model.inputs import CONTEXT_DIM
from radio_engine.model.runtime import ServingModel
from radio_engine.settings import Settings
from radio_engine.training.batching import session_parallel, session_parallel_steps
from radio_engine.training.config import TrainConfig
from radio_engine.training.data import Events, load_events, split_last_days, write_events_csv
from radio_engine.training.encoding import Vocab, encode
from radio_engine.training.export import export_model, export_with_vocab
from radio_engine.training.loop import fit, new_model, train_epoch
from radio_engine.training.model import ListenerModel, reset_slots
from radio_engine.training.train import run
from radio_engine.training.validation import ValidationPairs, validate

EVENTS_CSV = Settings().data_path / "30music" / "events.csv"


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[ListenerModel, ServingModel]:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = ListenerModel(30, 5).eval()
    with torch.no_grad():  # make h0 non-trivial so a wrong reset would show
        model.h0.copy_(torch.randn(model.dims["hidden"]) * 0.3)
    out = export_model(
        model,
        tmp_path_factory.mktemp("m") / "m",
        track_ids=[f"t{i}" for i in range(30)],
        artist_ids=[f"a{i % 5}" for i in range(30)],
        artist_vocab=[f"a{i}" for i in range(5)],
        popularity=np.arange(30, dtype=np.float32),
        trained=False,
    )
    return model, ServingModel(out)


def test_onnx_step_matches_pytorch(exported: tuple[ListenerModel, ServingModel]) -> None:
    model, served = exported
    rng = np.random.default_rng(1)
    x = rng.normal(size=(17, served.dims.step_input)).astype(np.float32)
    h = rng.normal(size=(17, served.dims.hidden)).astype(np.float32)
    h_onnx, q_onnx = served.step(x, h)
    with torch.no_grad():
        h_torch, q_torch = model.step(torch.from_numpy(x), torch.from_numpy(h))
    assert np.abs(h_onnx - h_torch.numpy()).max() <= 1e-4
    assert np.abs(q_onnx - q_torch.numpy()).max() <= 1e-4
    assert np.allclose(served.h0, model.h0.detach().numpy())


def test_onnx_track_encoder_matches_the_exported_table(
    exported: tuple[ListenerModel, ServingModel],
) -> None:
    _, served = exported
    ids = np.arange(1, 31)
    artists = np.array([served.artist_index[a] for a in served.tracks.artist_ids])
    track_in, track_out = served.encode_tracks(
        ids, artists, np.zeros((30, 32), np.float32), np.zeros(30, np.float32)
    )
    assert np.abs(track_in - served.tracks.track_in).max() <= 1e-5
    assert np.abs(track_out - served.tracks.track_out).max() <= 1e-5


def test_stepping_event_by_event_equals_the_whole_sequence(
    exported: tuple[ListenerModel, ServingModel],
) -> None:
    model, served = exported
    rng = np.random.default_rng(2)
    track_in = rng.normal(size=(12, 1, served.dims.track_in)).astype(np.float32)
    context = rng.normal(size=(12, 1, CONTEXT_DIM)).astype(np.float32)
    with torch.no_grad():
        queries, h_final = model.run_sequence(torch.from_numpy(track_in), torch.from_numpy(context))
    h = served.h0[None, :]
    for t in range(12):
        h, q = served.step(np.concatenate([track_in[t], context[t]], axis=1), h)
        assert np.abs(q - queries[t].numpy()).max() <= 1e-4
    assert np.abs(h - h_final.numpy()).max() <= 1e-4


def test_reset_only_touches_slots_that_change_listener() -> None:
    h = torch.arange(12.0).reshape(3, 4)
    h0 = torch.full((4,), -1.0)
    out = reset_slots(h, h0, torch.tensor([False, True, False]))
    assert out[1].tolist() == [-1.0] * 4
    assert torch.equal(out[0], h[0]) and torch.equal(out[2], h[2])


def test_session_parallel_walks_each_listener_in_order_and_resets_on_change() -> None:
    users = [np.array([0, 1, 2]), np.array([3, 4]), np.array([5, 6, 7, 8])]
    steps = list(session_parallel(users, batch=2, seed=0))
    assert session_parallel_steps(users, batch=2, seed=0) == len(steps)
    seen: dict[int, list[tuple[int, int]]] = {}
    for rows, targets, reset in steps:
        for slot in range(2):
            if rows[slot] < 0:
                continue
            owner = next(i for i, u in enumerate(users) if rows[slot] in u)
            assert targets[slot] in users[owner]  # a target is always the same listener's
            if reset[slot]:
                assert rows[slot] == users[owner][0]  # resets exactly when a listener starts
            seen.setdefault(owner, []).append((rows[slot], targets[slot]))
    for i, u in enumerate(users):
        assert seen[i] == list(itertools.pairwise(u))


def test_split_keeps_whole_sessions_and_takes_the_last_day(tmp_path: Path) -> None:
    day = 86400.0
    events = Events(
        fold=np.array([0, 0, 0, 0, 0, 1, 1]),
        user_id=np.array(list("aabbbcc")),
        session_id=np.array(["s1", "s1", "s2", "s2", "s3", "s4", "s5"]),
        track_id=np.array(list("tuvwxyz")),
        artist_id=np.array(["", "", "", "", "", "", ""]),
        ts=np.array([0, 60, 3 * day - 100, 3 * day + 50, 5 * day, 0, 2 * day]),
        event=np.array(["play"] * 7),
    )
    train, valid = split_last_days(events, 1.0)
    # s2 starts before the fold's last day even though it runs into it: it stays whole in train
    assert train.session_id.tolist() == ["s1", "s1", "s2", "s2", "s4"]
    assert valid.session_id.tolist() == ["s3", "s5"]
    back = load_events(write_events_csv(events, tmp_path / "e.csv"))
    assert back.track_id.tolist() == events.track_id.tolist() and np.array_equal(back.ts, events.ts)


def test_encode_orders_each_listener_by_time_keeping_file_order_for_ties() -> None:
    events = Events(
        fold=np.zeros(4, int),
        user_id=np.array(["u", "u", "v", "u"]),
        session_id=np.array(["s"] * 4),
        track_id=np.array(["a", "b", "c", "d"]),
        artist_id=np.array([""] * 4),
        ts=np.array([10.0, 5.0, 1.0, 10.0]),
        event=np.array(["play"] * 4),
    )
    vocab = Vocab.build(events)
    data = encode(events, vocab)
    order = [events.track_id[data.order[u]].tolist() for u in data.users]
    assert order == [["b", "a", "d"], ["c"]]


def test_fit_keeps_the_best_validated_epoch_and_says_which(tmp_path: Path) -> None:
    rows = EVENTS_CSV.read_text().splitlines()
    events = load_events(write_text(tmp_path / "small.csv", rows[:3001]))
    train, valid = split_last_days(events, 1.0)
    vocab = Vocab.build(train)
    config = TrainConfig(epochs=3, seed=4, threads=1, negatives=64, batch=16)
    log: list[dict[str, Any]] = []
    pairs = ValidationPairs.build(train, valid, vocab)
    fitted = fit(train, vocab, config, progress=False, valid=pairs, log=log)
    assert fitted.epochs_run == 3 and len(log) == 3
    scores = [entry[config.choice_key] for entry in log]
    assert fitted.kept is log[scores.index(max(scores))]
    # the model handed back is the kept epoch's: validating it again gives that epoch's figure
    again = validate(fitted.model, pairs, vocab, config.k)
    assert again["gru_hr"] == pytest.approx(fitted.kept["valid_gru_hr"])
    # without validation nothing is chosen: the last epoch's model, no kept entry
    plain = fit(train, vocab, config.replace(epochs=1), progress=False)
    assert plain.epochs_run == 1 and plain.kept is None


def write_text(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_short_real_training_run_exports_a_servable_model(tmp_path: Path) -> None:
    rows = EVENTS_CSV.read_text().splitlines()
    small = tmp_path / "small.csv"
    small.write_text("\n".join(rows[:4001]) + "\n")
    args = argparse.Namespace(
        events=str(small),
        valid=None,
        audio=None,
        metadata=None,
        out=str(tmp_path / "model"),
        epochs=1,
        audio_steps=0,
        max_minutes=None,
        seed=3,
        id_only=False,
        no_feedback=False,
    )
    assert run(args, Settings()) == 0
    served = ServingModel(tmp_path / "model")
    assert served.manifest.trained and served.manifest.metrics["epochs"] == 1
    # every hyper-parameter is recorded: what the command line set, and the rest's defaults
    config = served.manifest.train_config
    assert (config["epochs"], config["seed"], config["negatives"]) == (1, 3, 1024)
    # the GRU learns the next track alone; the served blend adds the session signals
    assert config["indicators_in_loss"] is False and config["artist_init"] == "cooccurrence"
    assert served.manifest.metrics["session_weights"] is None
    assert len(served.tracks.track_ids) > 1000
    assert (tmp_path / "model" / "training.png").stat().st_size > 10_000
    assert "blend" in served.manifest.feature_spec
    assert (tmp_path / "model" / "transitions.npz").exists()


def test_tied_tables_give_each_track_one_vector_in_and_out() -> None:
    torch.manual_seed(0)
    model = ListenerModel(10, 3, tied=True).eval()
    ids, artists = torch.tensor([1, 4, 0]), torch.tensor([1, 2, 3])
    audio, has_audio = torch.randn(3, 32), torch.tensor([0.0, 1.0, 1.0])
    track_in, track_out = model.tracks(ids, artists, audio, has_audio)
    assert torch.equal(track_in, track_out)
    with pytest.raises(ValueError, match="track_in == query"):
        ListenerModel(10, 3, tied=True, track_in=32, query=64)


def test_tracks_with_known_audio_are_exported_with_it(tmp_path: Path) -> None:
    events = Events(
        fold=np.zeros(4, int),
        user_id=np.array(["u"] * 4),
        session_id=np.array(["s"] * 4),
        track_id=np.array(["clip-a", "t1", "clip-b", "t1"]),
        artist_id=np.array(["x", "y", "x", "y"]),
        ts=np.arange(4.0),
        event=np.array(["play"] * 4),
    )
    rng = np.random.default_rng(0)
    clips = {c: rng.normal(size=32).astype(np.float32) for c in ("clip-a", "clip-b")}
    vocab = Vocab.build(events, clips)
    audio, has_audio = vocab.audio_table(32)
    index = vocab.track_index
    assert has_audio.tolist() == [0.0] + [float(t in clips) for t in vocab.track_ids]
    assert np.array_equal(audio[index["clip-b"]].numpy(), clips["clip-b"])
    torch.manual_seed(0)
    model = ListenerModel(len(vocab.track_ids), len(vocab.artists)).eval()
    served = ServingModel(export_with_vocab(model, tmp_path / "m", vocab, None))
    row = served.tracks.track_ids.tolist().index("clip-a")
    with_audio = served.tracks.track_out[row]
    _, without = served.encode_tracks(
        np.array([index["clip-a"]]),
        np.array([served.artist_index["x"]]),
        np.zeros((1, 32), np.float32),
        np.zeros(1, np.float32),
    )
    _, again = served.encode_tracks(
        np.array([index["clip-a"]]),
        np.array([served.artist_index["x"]]),
        clips["clip-a"][None, :],
        np.ones(1, np.float32),
    )
    assert np.abs(with_audio - again[0]).max() <= 1e-5
    assert np.abs(with_audio - without[0]).max() > 1e-3


def test_an_id_only_model_exports_and_encodes_tracks(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = ListenerModel(6, 2, id_only=True).eval()
    out = export_model(
        model,
        tmp_path / "id-only",
        track_ids=[f"t{i}" for i in range(6)],
        artist_ids=["a0", "a1"] * 3,
        artist_vocab=["a0", "a1"],
        popularity=np.ones(6, np.float32),
        trained=False,
    )
    served = ServingModel(out)
    track_in, track_out = served.encode_tracks(
        np.array([1, 2]), np.array([1, 2]), np.ones((2, 32), np.float32), np.ones(2, np.float32)
    )
    with torch.no_grad():
        expected_in, expected_out = model.tracks(
            torch.tensor([1, 2]), torch.tensor([0, 0]), torch.zeros(2, 32), torch.zeros(2)
        )
    # artist and audio are ignored: the vectors are the id parts alone
    assert np.abs(track_in - expected_in.numpy()).max() <= 1e-5
    assert np.abs(track_out - expected_out.numpy()).max() <= 1e-5


def test_the_indicator_weights_train_only_when_the_indicators_join_the_loss() -> None:
    rows = [(u, i) for u in range(6) for i in range(12)]
    events = Events(
        fold=np.zeros(len(rows), np.int64),
        user_id=np.array([f"u{u}" for u, _ in rows]),
        session_id=np.array([f"u{u}-s" for u, _ in rows]),
        track_id=np.array([f"t{(u + i) % 9}" for u, i in rows]),
        artist_id=np.array([f"a{(u + i) % 3}" for u, i in rows]),
        ts=np.array([1000.0 + 60 * i for _, i in rows]),
        event=np.array(["play"] * len(rows)),
    )
    vocab = Vocab.build(events)
    start = torch.tensor([0.5, 0.25, 0.25])
    for in_loss in (False, True):
        config = TrainConfig(batch=4, negatives=8, bptt=2, indicators_in_loss=in_loss)
        model, opt = new_model(vocab, config, events)
        loss = train_epoch(model, encode(events, vocab), vocab, opt, config, seed=0, progress=False)
        assert np.isfinite(loss)
        assert torch.equal(model.session_weights.detach(), start) is not in_loss

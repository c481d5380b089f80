"""The audio encoder: ONNX agrees with PyTorch at any length, and contrastive training learns clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from radio_engine.audio.decode import load_audio_file
from radio_engine.audio.features import FEATURE_DIM, track_features
from radio_engine.settings import Settings
from radio_engine.training import audio_model
from radio_engine.training.audio_model import (
    AudioEncoder,
    embed_clips,
    export_audio_encoder,
    info_nce,
    onnx_max_abs_diff,
    random_crops,
    train_audio_encoder,
    untrained_audio_encoder,
)
from radio_engine.training.evaluate_audio import evaluate_embeddings

CLIPS = Settings().data_path / "game-music" / "clips"
#: two clips from each of three games, cut to 8 s to keep the test short
NAMES = [
    "wesnoth-1.16-music/battle.ogg",
    "wesnoth-1.16-music/frantic.ogg",
    "nexuiz-music/brainsukker.ogg",
    "nexuiz-music/stairs.ogg",
    "drascula-music/track2.ogg",
    "drascula-music/track5.ogg",
]


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def features() -> list[np.ndarray]:
    out = []
    for name in NAMES:
        samples, rate = load_audio_file(CLIPS / name)
        out.append(track_features(samples[: 8 * rate], rate))
    return out


def test_onnx_agrees_with_torch_at_every_length(features: list[np.ndarray], tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = AudioEncoder(dim=24)
    model.set_normalisation(np.concatenate(features))
    path = export_audio_encoder(model, tmp_path / "audio_encoder.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["features"]
    assert [o.name for o in session.get_outputs()] == ["embedding"]
    lengths = [1, 2, 5, 300, features[0].shape[0]]
    pieces = [features[0][:t] for t in lengths]
    for piece in pieces:
        (embedding,) = session.run(["embedding"], {"features": piece})
        assert embedding.shape == (24,)
        assert np.isfinite(embedding).all()
        assert np.linalg.norm(embedding) == pytest.approx(1.0, abs=1e-5)
    assert onnx_max_abs_diff(model, path, pieces + features) <= 1e-4


def test_the_untrained_encoder_is_seeded() -> None:
    x = torch.randn(50, FEATURE_DIM)
    a, b = untrained_audio_encoder(16, seed=3), untrained_audio_encoder(16, seed=3)
    torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)
    assert not torch.allclose(a(x), untrained_audio_encoder(16, seed=4)(x))
    assert a.dim == 16


def test_a_batch_embeds_as_its_rows_do(features: list[np.ndarray]) -> None:
    model = untrained_audio_encoder(8)
    batch = torch.from_numpy(np.stack([f[:100] for f in features]))
    with torch.no_grad():
        together = model(batch).numpy()
    np.testing.assert_allclose(together, embed_clips(model, [f[:100] for f in features]), atol=1e-6)


def test_crops_have_the_asked_length_and_wrap_short_clips() -> None:
    rng = np.random.default_rng(0)
    short = np.arange(12, dtype=np.float32).reshape(3, 4)
    crops = random_crops([short, short], rng, 5)
    assert crops.shape == (2, 5, 4)
    np.testing.assert_array_equal(crops[0], short[[0, 1, 2, 0, 1]])
    noisy = random_crops([short], rng, 3, noise=np.full(4, 0.5))
    assert 0.0 < np.abs(noisy[0] - short).mean() < 1.5


def test_info_nce_is_low_when_views_match_and_high_when_they_do_not() -> None:
    z = torch.nn.functional.normalize(
        torch.randn(8, 16, generator=torch.Generator().manual_seed(0))
    )
    matched = info_nce(z, z, 0.1).item()
    shuffled = info_nce(z, z.roll(1, dims=0), 0.1).item()
    assert matched < 0.5 < np.log(8) < shuffled


def test_training_is_reproducible_and_learns_to_tell_clips_apart(
    features: list[np.ndarray],
) -> None:
    kwargs = {"dim": 16, "seed": 11, "steps": 60, "crop_frames": 100, "progress": False}
    model, history = train_audio_encoder(features, **kwargs)
    again, history_again = train_audio_encoder(features, **kwargs)
    assert history["loss"] == history_again["loss"]
    for p, q in zip(model.parameters(), again.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    assert len(history["loss"]) == 60
    assert np.mean(history["loss"][-10:]) < 0.5 * np.mean(history["loss"][:5])
    # fresh crops (other positions, other noise): each crop's nearest crop is from its own clip
    rng = np.random.default_rng(99)
    views = [random_crops(features, rng, 100) for _ in range(3)]
    with torch.no_grad():
        embeddings = np.concatenate([model(torch.from_numpy(v)).numpy() for v in views])
    clip_of = [str(i) for i in range(len(features))] * 3
    assert evaluate_embeddings(embeddings, clip_of, clip_of)["same_game_p@1"] >= 0.9
    # and the gap between own-clip and other-clip similarity grew with training
    untrained = untrained_audio_encoder(16, seed=11)
    with torch.no_grad():
        before = np.concatenate([untrained(torch.from_numpy(v)).numpy() for v in views])
    assert _own_clip_margin(embeddings, clip_of) > 2 * _own_clip_margin(before, clip_of)


def _own_clip_margin(embeddings: np.ndarray, clip_of: list[str]) -> float:
    """Mean cosine to crops of the same clip minus mean cosine to crops of other clips."""
    sims = embeddings @ embeddings.T
    same = np.equal.outer(clip_of, clip_of)
    np.fill_diagonal(same, False)
    other = ~np.equal.outer(clip_of, clip_of)
    return float(sims[same].mean() - sims[other].mean())


def test_training_runs_its_steps_however_slow_the_machine(
    features: list[np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    kwargs = {"dim": 8, "seed": 5, "steps": 4, "crop_frames": 50, "progress": False}
    model, _ = train_audio_encoder(features, **kwargs)
    clock = iter(range(0, 10**6, 3600))  # every look at the clock finds an hour gone
    monkeypatch.setattr(audio_model.time, "monotonic", lambda: float(next(clock)))
    slow, history = train_audio_encoder(features, **kwargs)
    assert len(history["loss"]) == 4 and history["seconds"][-1] >= 4 * 3600
    for p, q in zip(model.parameters(), slow.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_training_needs_two_clips(features: list[np.ndarray]) -> None:
    with pytest.raises(ValueError, match="at least 2 clips"):
        train_audio_encoder(features[:1], steps=1)

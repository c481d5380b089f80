"""The audio encoder: MFCC + delta frames -> a track embedding, trained without labels.

No listening data links the clips to listeners, and the game/artist labels are what we evaluate
on, so the encoder learns by contrast: two random short crops of the same clip (with feature
noise) should embed close, crops of other clips far (InfoNCE / NT-Xent). What stays the same
across a clip's crops is its timbre and production, which is what links tracks of one game or
composer. Per-feature normalisation is baked into the module, so the ONNX export takes the raw
frames of radio_engine.audio.features.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from radio_engine.audio.features import FEATURE_DIM
from radio_engine.training.config import TrainConfig
from radio_engine.training.progress import Progress

OPSET = 17
#: contrastive steps of `train` and `evaluate-audio`: InfoNCE has fallen from 4.0 to 0.45 on the
#: 157 clips by then; 41 s (57 s CPU) on the development machine's 2 cores
AUDIO_STEPS: int = TrainConfig.audio_steps


def _pooled(x: torch.Tensor) -> torch.Tensor:
    """Mean and (population) standard deviation over time: [B, T, C] -> [B, 2C]; fine at T=1."""
    mean = x.mean(1)
    std = ((x - mean.unsqueeze(1)) ** 2).mean(1).add(1e-5).sqrt()
    return torch.cat([mean, std], dim=-1)


class AudioEncoder(nn.Module):
    """features [T, F] -> L2-normalised embedding [A].

    Normalised frames and a small per-frame MLP of them are pooled over time (mean and std) and
    an MLP projects the statistics to the embedding. Per-frame only, no convolution over time:
    on 157 clips a temporal model learns to tell crops apart by melody and generalises worse.
    """

    def __init__(self, dim: int = 32, hidden: int = 32, feature_dim: int = FEATURE_DIM) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(feature_dim))
        self.register_buffer("std", torch.ones(feature_dim))
        self.frame = nn.Sequential(nn.Linear(feature_dim, hidden), nn.GELU())
        self.project = nn.Sequential(
            nn.Linear(2 * feature_dim + 2 * hidden, 128), nn.GELU(), nn.Linear(128, dim)
        )

    @property
    def dim(self) -> int:
        """Size of the embedding."""
        return int(self.project[-1].out_features)

    def set_normalisation(self, frames: np.ndarray) -> None:
        """Fix the per-feature mean/std from training frames [N, F]."""
        self.mean.copy_(torch.as_tensor(frames.mean(axis=0), dtype=torch.float32))
        self.std.copy_(torch.as_tensor(frames.std(axis=0) + 1e-3, dtype=torch.float32))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """[T, F] -> [A], or [B, T, F] -> [B, A]."""
        single = features.dim() == 2
        x = features.unsqueeze(0) if single else features
        x = (x - self.mean) / self.std
        z = self.project(torch.cat([_pooled(x), _pooled(self.frame(x))], dim=-1))
        z = z / z.norm(dim=-1, keepdim=True).clamp_min(1e-6)
        return z[0] if single else z


def untrained_audio_encoder(dim: int = 32, seed: int = 7) -> AudioEncoder:
    """An encoder with random weights (for tests, and for a model trained with no audio)."""
    torch.manual_seed(seed)
    return AudioEncoder(dim).eval()


def random_crops(
    clips: list[np.ndarray],
    rng: np.random.Generator,
    length: int,
    noise: np.ndarray | None = None,
) -> np.ndarray:
    """One random crop of `length` frames per clip [B, length, F] (short clips wrap around).

    `noise` (per-feature standard deviations) adds Gaussian noise to every frame: augmentation.
    """
    out = np.empty((len(clips), length, clips[0].shape[1]), dtype=np.float32)
    for i, clip in enumerate(clips):
        start = int(rng.integers(0, max(1, clip.shape[0] - length + 1)))
        crop = clip[start : start + length]
        if crop.shape[0] < length:
            crop = np.pad(crop, ((0, length - crop.shape[0]), (0, 0)), mode="wrap")
        out[i] = crop
    if noise is not None:
        out += rng.standard_normal(out.shape, dtype=np.float32) * noise.astype(np.float32)
    return out


def info_nce(za: torch.Tensor, zb: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE: row i of za should pick row i of zb among all rows, and back."""
    logits = za @ zb.T / temperature
    target = torch.arange(za.shape[0])
    return (
        nn.functional.cross_entropy(logits, target) + nn.functional.cross_entropy(logits.T, target)
    ) / 2


def train_audio_encoder(
    clip_features: list[np.ndarray],
    *,
    dim: int = 32,
    seed: int = 7,
    steps: int = AUDIO_STEPS,
    crop_frames: int = 300,
    noise: float = 0.1,
    temperature: float = 0.1,
    lr: float = 2e-3,
    threads: int | None = None,
    progress: bool = True,
) -> tuple[AudioEncoder, dict[str, list[float]]]:
    """Contrastive training between random crops of the same clip; no labels are used.

    Each step takes two crops of `crop_frames` (3 s) of every clip, adds noise of `noise` x the
    feature's std, and minimises InfoNCE. Always runs exactly `steps` steps (never stops on the
    clock): the same inputs, seed and thread count give the same weights on any machine.
    Returns (module in eval mode, history: loss per step and seconds since the start).
    """
    if len(clip_features) < 2:
        raise ValueError(f"contrastive training needs at least 2 clips, got {len(clip_features)}")
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    frames = np.concatenate(clip_features)
    model = AudioEncoder(dim)
    model.set_normalisation(frames)
    feature_noise = noise * frames.std(axis=0) if noise > 0 else None
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    history: dict[str, list[float]] = {"loss": [], "seconds": []}
    started = time.monotonic()
    model.train()
    shown = Progress("audio encoder", steps, enabled=progress)
    for _ in range(steps):
        a = torch.from_numpy(random_crops(clip_features, rng, crop_frames, feature_noise))
        b = torch.from_numpy(random_crops(clip_features, rng, crop_frames, feature_noise))
        loss = info_nce(model(a), model(b), temperature)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        history["loss"].append(loss.item())
        history["seconds"].append(time.monotonic() - started)
        shown.update(loss=loss.item())
    shown.close()
    return model.eval(), history


def embed_clips(module: AudioEncoder, clip_features: list[np.ndarray]) -> np.ndarray:
    """Embeddings [N, A] of whole clips with the PyTorch module (one clip at a time, any T)."""
    module = module.eval()
    with torch.no_grad():
        return np.stack(
            [module(torch.from_numpy(np.asarray(f, np.float32))).numpy() for f in clip_features]
        )


def export_audio_encoder(model: AudioEncoder, path: Path | str) -> Path:
    """Write the encoder as ONNX: input "features" [T, F] (dynamic T), output "embedding" [A]."""
    model = model.eval()
    example = torch.randn(300, model.mean.shape[0])
    with torch.no_grad():
        torch.onnx.export(
            model,
            (example,),
            str(path),
            input_names=["features"],
            output_names=["embedding"],
            dynamic_axes={"features": {0: "frames"}},
            opset_version=OPSET,
            dynamo=False,
        )
    return Path(path)


def onnx_max_abs_diff(model: AudioEncoder, path: Path | str, features: list[np.ndarray]) -> float:
    """Largest |torch - onnxruntime| over the embeddings of `features` (export check)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ours = embed_clips(model, features)
    theirs = np.stack(
        [session.run(["embedding"], {"features": np.asarray(f, np.float32)})[0] for f in features]
    )
    return float(np.abs(ours - theirs).max())

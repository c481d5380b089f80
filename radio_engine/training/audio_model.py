"""The audio encoder: MFCC + delta frames -> a track embedding, trained without labels.

No listening data links the clips to listeners, and genre/game labels are what we evaluate on,
so the encoder learns by contrast: two random crops of the same clip should embed close, crops of
other clips far (InfoNCE). Normalisation statistics are baked into the module, so the ONNX
export takes raw features from radio_engine.audio.features.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from radio_engine.audio.features import FEATURE_DIM


class AudioEncoder(nn.Module):
    """features [T, F] -> L2-normalised embedding [A]: per-frame MLP, mean+std pooling, projection."""

    def __init__(self, dim: int = 32, hidden: int = 96, feature_dim: int = FEATURE_DIM) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(feature_dim))
        self.register_buffer("std", torch.ones(feature_dim))
        self.frame = nn.Sequential(
            nn.Linear(feature_dim, hidden), nn.GELU(), nn.Linear(hidden, hidden)
        )
        self.project = nn.Sequential(
            nn.Linear(4 * feature_dim + 2 * hidden, 128), nn.GELU(), nn.Linear(128, dim)
        )

    def set_normalisation(self, frames: np.ndarray) -> None:
        """Fix the per-feature mean/std from training frames [N, F]."""
        self.mean.copy_(torch.as_tensor(frames.mean(axis=0), dtype=torch.float32))
        self.std.copy_(torch.as_tensor(frames.std(axis=0) + 1e-3, dtype=torch.float32))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """[T, F] -> [A], or [B, T, F] -> [B, A]."""
        single = features.dim() == 2
        x = features.unsqueeze(0) if single else features
        x = (x - self.mean) / self.std
        h = self.frame(x)
        pooled = torch.cat(
            [x.mean(1), x.std(1), _abs_diff_mean(x), x.amax(1) - x.amin(1), h.mean(1), h.std(1)],
            dim=-1,
        )
        z = self.project(pooled)
        z = z / z.norm(dim=-1, keepdim=True).clamp_min(1e-6)
        return z[0] if single else z


def _abs_diff_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean absolute frame-to-frame change: how fast the timbre moves."""
    return (x[:, 1:] - x[:, :-1]).abs().mean(1)


def untrained_audio_encoder(dim: int = 32, seed: int = 7) -> AudioEncoder:
    """An encoder with random weights (for tests and when no audio is given)."""
    torch.manual_seed(seed)
    return AudioEncoder(dim).eval()


def _crops(clips: list[np.ndarray], rng: np.random.Generator, length: int) -> np.ndarray:
    out = np.empty((len(clips), length, clips[0].shape[1]), dtype=np.float32)
    for i, clip in enumerate(clips):
        start = rng.integers(0, max(1, clip.shape[0] - length))
        crop = clip[start : start + length]
        if crop.shape[0] < length:
            crop = np.pad(crop, ((0, length - crop.shape[0]), (0, 0)), mode="wrap")
        out[i] = crop
    # augmentation: a random gain on the energy coefficient and small feature noise
    out[:, :, 0] += rng.normal(0, 0.5, size=(len(clips), 1)).astype(np.float32)
    out += rng.normal(0, 0.05, size=out.shape).astype(np.float32)
    return out


def train_audio_encoder(
    clip_features: list[np.ndarray],
    *,
    dim: int = 32,
    seed: int = 7,
    max_minutes: float = 3.0,
    steps: int = 400,
    crop_frames: int = 500,
    temperature: float = 0.1,
    progress: bool = True,
) -> tuple[AudioEncoder, dict[str, list[float]]]:
    """Contrastive (InfoNCE) training between random crops of the same clip; no labels used."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = AudioEncoder(dim)
    model.set_normalisation(np.concatenate(clip_features))
    optimiser = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    history: dict[str, list[float]] = {"loss": []}
    deadline = time.monotonic() + max_minutes * 60
    model.train()
    bar = tqdm(
        range(steps),
        desc="audio encoder",
        unit="step",
        disable=not (progress and sys.stderr.isatty()),
    )
    for _ in bar:
        a = torch.from_numpy(_crops(clip_features, rng, crop_frames))
        b = torch.from_numpy(_crops(clip_features, rng, crop_frames))
        za, zb = model(a), model(b)
        logits = za @ zb.T / temperature
        target = torch.arange(len(clip_features))
        loss = (
            nn.functional.cross_entropy(logits, target)
            + nn.functional.cross_entropy(logits.T, target)
        ) / 2
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        history["loss"].append(loss.item())
        if time.monotonic() > deadline:
            break
    return model.eval(), history


def export_audio_encoder(model: AudioEncoder, path: Path) -> Path:
    """Write the encoder as ONNX: input features [T, F] (dynamic T), output embedding [A]."""
    model = model.eval()
    example = torch.randn(300, model.mean.shape[0])
    torch.onnx.export(
        model,
        (example,),
        str(path),
        input_names=["features"],
        output_names=["embedding"],
        dynamic_axes={"features": {0: "frames"}},
        opset_version=17,
        dynamo=False,
    )
    return Path(path)

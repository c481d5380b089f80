"""Phases 9 and 10, no Kafka: the GRU step beside sgemm, and the audio real-time factor."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from radio_engine.audio.decode import decode_chunk, encode_chunks
from radio_engine.audio.features import StreamingFeatures
from radio_engine.model.runtime import ServingModel

GRU_BATCHES = (1, 64, 512, 4096)
AUDIO_CLIPS = 20
CHUNK_SECONDS = 10.0  # what `radio-engine produce-audio` sends by default (FLAC chunks)


# -- 9: GRU step against sgemm ------------------------------------------------------------------


def timed(fn: Callable[[], object], budget_s: float = 0.5, most: int = 200) -> float:
    """Median seconds of one call: one warm-up call, then repeats within a time budget."""
    fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < 3 or (len(times) < most and time.perf_counter() - start < budget_s):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def gru_table(model: ServingModel) -> list[dict[str, float]]:
    """us per event of ServingModel.step at each batch size, beside sgemm of the GRU's shapes:
    [B, D] @ [D, 3H] + [B, H] @ [H, 3H] (the three gates), and with the query head added.
    """
    d, h, q = model.dims.step_input, model.dims.hidden, model.dims.query
    rng = np.random.default_rng(0)
    wx, wh = (rng.standard_normal((n, 3 * h), dtype=np.float32) for n in (d, h))
    w1, w2 = rng.standard_normal((h, q), dtype=np.float32), rng.standard_normal((q, q), np.float32)
    rows = []
    for b in GRU_BATCHES:
        x = rng.standard_normal((b, d), dtype=np.float32)
        hh = (rng.standard_normal((b, h), dtype=np.float32) * 0.1).astype(np.float32)
        step = timed(lambda x=x, hh=hh: model.step(x, hh))
        gates = timed(lambda x=x, hh=hh: (x @ wx, hh @ wh))
        head = timed(lambda x=x, hh=hh: (x @ wx, hh @ wh, (hh @ w1) @ w2))
        rows.append(
            {
                "batch": b,
                "step_us": step / b * 1e6,
                "sgemm_gates_us": gates / b * 1e6,
                "sgemm_with_head_us": head / b * 1e6,
                "step_over_gates": step / gates,
            }
        )
    return rows


# -- 10: audio ingest ---------------------------------------------------------------------------


def pick_clips(data: Path, n: int) -> list[Path]:
    """n real clips spread evenly over the sorted list (so every game is in)."""
    clips = sorted((data / "game-music" / "clips").glob("*/*.ogg"))
    if len(clips) <= n:
        return clips
    return [clips[int(i * len(clips) / n)] for i in range(n)]


def clip_cpu(model: ServingModel, path: Path) -> dict[str, float]:
    """CPU seconds of each stage for one clip, and its seconds of audio."""
    data = path.read_bytes()
    c0 = time.process_time()
    samples, rate = decode_chunk(data, "ogg")
    c1 = time.process_time()
    whole = StreamingFeatures()
    whole.push(samples, rate)
    whole.finish()
    c2 = time.process_time()
    chunks = encode_chunks(samples, rate, "flac", CHUNK_SECONDS)  # the player's work: not timed
    c3 = time.process_time()
    stream = StreamingFeatures()
    for chunk in chunks:
        stream.push(*decode_chunk(chunk, "flac"))
    frames = stream.finish()
    model.embed_audio(frames)
    c4 = time.process_time()
    return {
        "audio_s": len(samples) / rate,
        "decode_s": c1 - c0,
        "mfcc_s": c2 - c1,
        "worker_path_s": c4 - c3,
    }


def audio_rtf(model: ServingModel, clips: list[Path]) -> dict[str, Any]:
    """Seconds of audio per CPU second: decode, MFCC + deltas, both, and the worker's whole path."""
    if not clips:
        raise FileNotFoundError("no game-music clips found")
    per = [clip_cpu(model, p) for p in clips]
    sums = {k: sum(c[k] for c in per) for k in per[0]}
    audio = sums["audio_s"]
    return {
        "clips": len(clips),
        "audio_s": audio,
        "decode_cpu_s": sums["decode_s"],
        "mfcc_cpu_s": sums["mfcc_s"],
        "worker_path_cpu_s": sums["worker_path_s"],
        "decode_rtf": audio / sums["decode_s"],
        "mfcc_rtf": audio / sums["mfcc_s"],
        "rtf": audio / (sums["decode_s"] + sums["mfcc_s"]),
        "worker_path_rtf": audio / sums["worker_path_s"],
    }

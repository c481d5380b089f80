"""MFCC + deltas with python_speech_features, computed incrementally as audio chunks arrive.

`StreamingFeatures` is the only featuriser: `track_features` (training, evaluation) is the same
object fed in one push, so the worker and the trainer cannot drift apart. Frames are computed as
soon as enough samples are there; the deltas, which look two frames ahead, at `finish()`.
"""

from __future__ import annotations

from math import gcd

import numpy as np
import python_speech_features as psf
from scipy.signal import resample_poly

FEATURE_SAMPLE_RATE = 22050
WINLEN_S = 0.025
WINSTEP_S = 0.01
NUM_CEPSTRA = 20
NUM_FILTERS = 40
NFFT = 1024  # >= the 551-sample frame at 22050 Hz: psf's default 512 would truncate frames
PREEMPH = 0.97
DELTA_N = 2
FEATURE_DIM = 2 * NUM_CEPSTRA
FRAME_LEN = int(round(WINLEN_S * FEATURE_SAMPLE_RATE + 1e-9))  # psf rounds half up: 551
FRAME_STEP = int(np.floor(WINSTEP_S * FEATURE_SAMPLE_RATE + 0.5))  # 221

#: everything that defines the features, recorded in the model manifest
FEATURE_SPEC = {
    "library": "python_speech_features",
    "sample_rate": FEATURE_SAMPLE_RATE,
    "winlen_s": WINLEN_S,
    "winstep_s": WINSTEP_S,
    "frame_len": FRAME_LEN,
    "frame_step": FRAME_STEP,
    "numcep": NUM_CEPSTRA,
    "nfilt": NUM_FILTERS,
    "nfft": NFFT,
    "preemph": PREEMPH,
    "window": "hamming",
    "append_energy": True,
    "delta_n": DELTA_N,
    "layout": "[mfcc(numcep) | delta(numcep)] per frame",
    "dim": FEATURE_DIM,
}


def resample(samples: np.ndarray, rate: int) -> np.ndarray:
    """Resample mono audio to FEATURE_SAMPLE_RATE (polyphase; a no-op at that rate)."""
    if rate == FEATURE_SAMPLE_RATE:
        return samples.astype(np.float32, copy=False)
    g = gcd(int(rate), FEATURE_SAMPLE_RATE)
    return resample_poly(samples, FEATURE_SAMPLE_RATE // g, int(rate) // g).astype(np.float32)


class StreamingFeatures:
    """Featurise a track chunk by chunk: push() samples as they come, finish() for [T, FEATURE_DIM]."""

    def __init__(self) -> None:
        self._pending = np.zeros(0, dtype=np.float64)  # pre-emphasised samples not yet framed
        self._last_sample: float | None = None
        self._frames: list[np.ndarray] = []
        self.samples_seen = 0

    @property
    def seconds(self) -> float:
        """Seconds of audio pushed so far."""
        return self.samples_seen / FEATURE_SAMPLE_RATE

    def push(self, samples: np.ndarray, rate: int) -> None:
        """Add one chunk of mono samples at `rate`; computes every frame now complete."""
        x = resample(np.asarray(samples), rate).astype(np.float64)
        if x.size == 0:
            return
        self.samples_seen += x.size
        previous = x[0] if self._last_sample is None else self._last_sample
        emphasised = np.empty_like(x)
        emphasised[0] = x[0] - PREEMPH * previous if self._last_sample is not None else x[0]
        emphasised[1:] = x[1:] - PREEMPH * x[:-1]
        self._last_sample = float(x[-1])
        self._pending = np.concatenate([self._pending, emphasised])
        if self._pending.size < FRAME_LEN:
            return
        n = 1 + (self._pending.size - FRAME_LEN) // FRAME_STEP
        used = FRAME_LEN + (n - 1) * FRAME_STEP
        self._frames.append(_mfcc(self._pending[:used]))
        self._pending = self._pending[n * FRAME_STEP :]

    def finish(self) -> np.ndarray:
        """All frames as float32 [T, FEATURE_DIM]: MFCC then deltas (a trailing partial frame is dropped)."""
        if not self._frames:
            return np.zeros((0, FEATURE_DIM), dtype=np.float32)
        mfcc = np.concatenate(self._frames)
        deltas = psf.delta(mfcc, DELTA_N)
        return np.hstack([mfcc, deltas]).astype(np.float32)


def _mfcc(emphasised: np.ndarray) -> np.ndarray:
    """MFCCs of whole frames of already pre-emphasised samples (psf frames them exactly)."""
    return psf.mfcc(
        emphasised,
        samplerate=FEATURE_SAMPLE_RATE,
        winlen=WINLEN_S,
        winstep=WINSTEP_S,
        numcep=NUM_CEPSTRA,
        nfilt=NUM_FILTERS,
        nfft=NFFT,
        preemph=0.0,
        appendEnergy=True,
        winfunc=np.hamming,
    )


def track_features(samples: np.ndarray, rate: int) -> np.ndarray:
    """Features of a whole track: the streaming featuriser fed in one push."""
    stream = StreamingFeatures()
    stream.push(samples, rate)
    return stream.finish()

"""MFCC + deltas with python_speech_features, computed incrementally as audio chunks arrive.

`StreamingFeatures` is the one featuriser: `track_features` (training, evaluation) feeds it the
whole signal in one push, and pushing the same audio in chunks gives the same frames (the
resampler, the pre-emphasis sample and the framing remainder carry over between chunks), so the
worker and the trainer cannot drift apart. MFCC frames are computed as soon as their samples are
final; the deltas, which look DELTA_N frames ahead, at `finish()`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import python_speech_features as psf

from radio_engine.audio.resample import StreamingResampler
from radio_engine.schemas import BadMessage

FEATURE_SAMPLE_RATE = 22050
WINLEN_S = 0.025
WINSTEP_S = 0.01
NUM_CEPSTRA = 20
NUM_FILTERS = 40
NFFT = 1024  # >= the 551-sample frame at 22050 Hz: psf's default 512 would truncate frames
PREEMPH = 0.97
CEPLIFTER = 22
DELTA_N = 2
FEATURE_DIM = 2 * NUM_CEPSTRA
FRAME_LEN = 551  # psf: round_half_up(WINLEN_S * FEATURE_SAMPLE_RATE) = round_half_up(551.25)
FRAME_STEP = 221  # psf: round_half_up(WINSTEP_S * FEATURE_SAMPLE_RATE) = round_half_up(220.5)

#: everything that defines the features, recorded in the model manifest
FEATURE_SPEC: dict[str, Any] = {
    "library": "python_speech_features",
    "sample_rate": FEATURE_SAMPLE_RATE,
    "resample": "scipy.signal.resample_poly (kaiser 5.0), streamed",
    "mono": "mean of channels",
    "winlen_s": WINLEN_S,
    "winstep_s": WINSTEP_S,
    "frame_len": FRAME_LEN,
    "frame_step": FRAME_STEP,
    "numcep": NUM_CEPSTRA,
    "nfilt": NUM_FILTERS,
    "nfft": NFFT,
    "lowfreq": 0,
    "highfreq": FEATURE_SAMPLE_RATE / 2,
    "preemph": PREEMPH,
    "ceplifter": CEPLIFTER,
    "window": "hamming",
    "append_energy": True,
    "delta_n": DELTA_N,
    "trailing_partial_frame": "dropped",
    "layout": "[mfcc(numcep, c0 = log frame energy) | delta(numcep)] per frame",
    "dim": FEATURE_DIM,
}


class StreamingFeatures:
    """Featurise one track chunk by chunk: push() samples as they come, finish() -> [T, FEATURE_DIM]."""

    def __init__(self) -> None:
        self._resampler: StreamingResampler | None = None
        self._rate: int | None = None
        self._pending = np.zeros(0)  # pre-emphasised samples not yet framed
        self._last_sample: float | None = None  # for pre-emphasis across chunks
        self._mfcc: list[np.ndarray] = []
        self._samples_in = 0  # input samples at the input rate
        self._finished = False

    @property
    def seconds(self) -> float:
        """Seconds of audio pushed so far (at the input rate)."""
        return self._samples_in / self._rate if self._rate else 0.0

    @property
    def frames(self) -> int:
        """MFCC frames computed so far."""
        return sum(m.shape[0] for m in self._mfcc)

    def push(self, samples: np.ndarray, rate: int) -> None:
        """Add one chunk of mono samples at `rate`; computes every frame whose samples are final.

        Raises BadMessage('bad_audio') if the rate differs from the track's first chunk.
        """
        if self._finished:
            raise RuntimeError("push() after finish(): start a new StreamingFeatures per track")
        if self._resampler is None:
            self._resampler = StreamingResampler(int(rate), FEATURE_SAMPLE_RATE)
            self._rate = int(rate)
        elif int(rate) != self._rate:
            raise BadMessage("bad_audio", f"sample rate changed mid-track: {self._rate} -> {rate}")
        x = np.asarray(samples, dtype=np.float64).reshape(-1)
        self._samples_in += x.size
        self._take(self._resampler.push(x))

    def finish(self) -> np.ndarray:
        """All frames as float32 [T, FEATURE_DIM]: MFCC then deltas (a trailing partial frame is dropped)."""
        if not self._finished and self._resampler is not None:
            self._take(self._resampler.finish())
        self._finished = True
        if not self._mfcc:
            return np.zeros((0, FEATURE_DIM), dtype=np.float32)
        mfcc = np.concatenate(self._mfcc)
        return np.hstack([mfcc, deltas(mfcc, DELTA_N)]).astype(np.float32)

    def _take(self, x: np.ndarray) -> None:
        """Pre-emphasise resampled samples and compute MFCCs of every whole frame now available."""
        if x.size == 0:
            return
        emphasised = np.empty_like(x)
        emphasised[1:] = x[1:] - PREEMPH * x[:-1]
        # psf keeps the very first sample as it is; later chunks continue the filter
        first = x[0] if self._last_sample is None else x[0] - PREEMPH * self._last_sample
        emphasised[0] = first
        self._last_sample = float(x[-1])
        self._pending = np.concatenate([self._pending, emphasised])
        if self._pending.size < FRAME_LEN:
            return
        n = 1 + (self._pending.size - FRAME_LEN) // FRAME_STEP
        self._mfcc.append(_mfcc(self._pending[: FRAME_LEN + (n - 1) * FRAME_STEP]))
        self._pending = self._pending[n * FRAME_STEP :]


def _mfcc(emphasised: np.ndarray) -> np.ndarray:
    """MFCCs of whole frames of already pre-emphasised samples (the slice holds exactly n frames)."""
    return psf.mfcc(
        emphasised,
        samplerate=FEATURE_SAMPLE_RATE,
        winlen=WINLEN_S,
        winstep=WINSTEP_S,
        numcep=NUM_CEPSTRA,
        nfilt=NUM_FILTERS,
        nfft=NFFT,
        preemph=0.0,
        ceplifter=CEPLIFTER,
        appendEnergy=True,
        winfunc=np.hamming,
    )


def deltas(feat: np.ndarray, n: int = DELTA_N) -> np.ndarray:
    """psf.delta's regression deltas (edge-padded), vectorised: psf loops over frames in Python."""
    padded = np.pad(feat, ((n, n), (0, 0)), mode="edge")
    frames = feat.shape[0]
    out = np.zeros_like(feat, dtype=np.float64)
    for k in range(1, n + 1):
        out += k * (padded[n + k : n + k + frames] - padded[n - k : n - k + frames])
    return out / (2 * sum(k * k for k in range(1, n + 1)))


def track_features(samples: np.ndarray, rate: int) -> np.ndarray:
    """Features of a whole track [T, FEATURE_DIM]: the streaming featuriser fed in one push."""
    stream = StreamingFeatures()
    stream.push(samples, rate)
    return stream.finish()

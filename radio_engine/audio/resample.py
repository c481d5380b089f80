"""A streaming polyphase resampler that gives the same samples as scipy's resample_poly.

Audio arrives in chunks, so resampling each chunk on its own would add edge effects at every chunk
boundary. This resampler keeps the filter history between chunks: fed in any number of pieces it
returns the samples `scipy.signal.resample_poly` returns for the whole signal (same filter, same
delay compensation, zeros after the end), within floating-point rounding.
"""

from __future__ import annotations

from math import gcd

import numpy as np
from scipy.signal import firwin, upfirdn


class StreamingResampler:
    """Resample mono audio from `rate_in` to `rate_out` chunk by chunk; `finish()` flushes the tail."""

    def __init__(self, rate_in: int, rate_out: int) -> None:
        if rate_in <= 0 or rate_out <= 0:
            raise ValueError(f"sample rates must be positive, got {rate_in} -> {rate_out}")
        g = gcd(int(rate_in), int(rate_out))
        self.up, self.down = int(rate_out) // g, int(rate_in) // g
        self.passthrough = self.up == self.down == 1
        self.h = np.ones(1)
        self.skip = 0  # leading outputs of upfirdn that resample_poly drops
        if not self.passthrough:
            # the filter of resample_poly(window=('kaiser', 5.0)), padded to centre the output
            half_len = 10 * max(self.up, self.down)
            cutoff = 1.0 / max(self.up, self.down)
            taps = firwin(2 * half_len + 1, cutoff, window=("kaiser", 5.0))
            pre_pad = self.down - half_len % self.down
            self.h = np.concatenate([np.zeros(pre_pad), taps * self.up])
            self.skip = (half_len + pre_pad) // self.down
        self._buffer = np.zeros(0)  # inputs still needed by future outputs
        self._buffer_start = 0  # absolute index of _buffer[0]; always a multiple of `down`
        self._inputs = 0  # inputs seen
        self._next = self.skip  # absolute index (in upfirdn's output) of the next output

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Take more input; return every output sample that no later input can change."""
        x = np.asarray(samples, dtype=np.float64).reshape(-1)
        if self.passthrough:
            self._inputs += x.size
            return x
        self._buffer = np.concatenate([self._buffer, x])
        self._inputs += x.size
        # output m uses inputs n <= m * down / up only, so it is final once those are here
        ready = -(-self._inputs * self.up // self.down)
        return self._emit(ready, self._buffer)

    def finish(self) -> np.ndarray:
        """The remaining outputs, treating the signal as zeros after its end (as resample_poly)."""
        if self.passthrough:
            return np.zeros(0)
        total = self.skip + -(-self._inputs * self.up // self.down)
        tail = np.zeros(self.h.size // self.up + self.down + 1)
        return self._emit(total, np.concatenate([self._buffer, tail]))

    def _emit(self, end: int, buffer: np.ndarray) -> np.ndarray:
        """Outputs [self._next, end) computed from `buffer`, then drop inputs no longer needed."""
        if end <= self._next or buffer.size == 0:
            return np.zeros(0)
        offset = self._buffer_start * self.up // self.down  # output index of upfirdn(buffer)[0]
        y = upfirdn(self.h, buffer, self.up, self.down)
        out = y[self._next - offset : end - offset]
        self._next = end
        # the oldest input the next output needs, rounded down to a multiple of `down`
        first = max(0, (self._next * self.down - self.h.size + 1) // self.up)
        first = max(self._buffer_start, first - first % self.down)
        self._buffer = self._buffer[first - self._buffer_start :]
        self._buffer_start = first
        return out

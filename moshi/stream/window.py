"""Percentiles over a recent time window, kept incrementally.

The health endpoint reports step time and added latency over the last `window` seconds.
Recomputing percentiles from every sample on each request lets a flood of health requests
starve the model's tick loop; here each sample costs one bin increment, and a window's
percentiles cost a sum over (window seconds x bins), a few microseconds, whatever the
number of samples. Values land in fixed log-spaced bins, so a percentile is exact to
within half a bin (6 %).
"""

from __future__ import annotations

import math

import numpy as np

MAX_WINDOW_S = 600  # the longest window a report may ask for
BINS_PER_DECADE = 20  # a bin spans 12 %: a reported value is within 6 % of the true one
LOWEST_MS, HIGHEST_MS = 1e-2, 1e5  # values outside are counted in the edge bins
PERCENTILES = (50, 90, 99)

_EDGES = np.logspace(
    math.log10(LOWEST_MS),
    math.log10(HIGHEST_MS),
    int(BINS_PER_DECADE * math.log10(HIGHEST_MS / LOWEST_MS)) + 1,
)
_CENTRES = np.sqrt(_EDGES[:-1] * _EDGES[1:])  # the value a bin reports (geometric middle)


class WindowedPercentiles:
    """Millisecond samples in one-second buckets of fixed bins, for the last `MAX_WINDOW_S`."""

    def __init__(self, horizon_s: int = MAX_WINDOW_S):
        self.horizon_s = horizon_s
        self._counts = np.zeros((horizon_s, len(_CENTRES)), np.int32)  # [second, bin]
        self._second = np.full(horizon_s, -1, np.int64)  # which second each row holds

    def add(self, ms: float, now: float) -> None:
        """Count one sample `ms` at time `now` (seconds, monotonic)."""
        second = int(now)
        row = second % self.horizon_s
        if self._second[row] != second:
            self._counts[row] = 0
            self._second[row] = second
        b = int(np.searchsorted(_EDGES, ms, side="right")) - 1
        self._counts[row, min(max(b, 0), len(_CENTRES) - 1)] += 1

    def counts(self, window_s: float, now: float) -> np.ndarray:
        """Samples per bin over the last `window_s` seconds (whole seconds, rounded up)."""
        if not 0 < window_s <= self.horizon_s:
            raise ValueError(f"window must be in (0, {self.horizon_s}] seconds, got {window_s}")
        second = int(now)
        recent = self._second > second - math.ceil(window_s)
        return self._counts[recent].sum(0)

    def percentiles(self, window_s: float, now: float) -> dict[str, float]:
        """{"p50", "p90", "p99"} of the window's samples, in ms ({} when there are none)."""
        return percentiles_of(self.counts(window_s, now))


def percentiles_of(counts: np.ndarray) -> dict[str, float]:
    total = int(counts.sum())
    if total == 0:
        return {}
    cumulative = np.cumsum(counts)
    out = {}
    for q in PERCENTILES:
        b = int(np.searchsorted(cumulative, q / 100 * total))
        out[f"p{q}"] = round(float(_CENTRES[min(b, len(_CENTRES) - 1)]), 3)
    return out

"""STOI (short-time objective intelligibility, Taal et al. 2011) through `pystoi`: how
intelligible a degraded signal (a codec's reconstruction) stays against its clean original,
about 0..1. Needs the `eval` extra."""

from __future__ import annotations

import numpy as np

from ..audio import SAMPLE_RATE


def stoi(clean: np.ndarray, degraded: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """clean [T], degraded [T'] (cut to the shorter) -> STOI."""
    try:
        from pystoi import stoi as _stoi
    except ImportError as e:
        raise RuntimeError('pystoi is missing: pip install -e ".[eval]"') from e
    if clean.ndim != 1 or degraded.ndim != 1:
        raise ValueError(f"expected mono [T] signals, got {list(clean.shape)} and {list(degraded.shape)}")
    n = min(len(clean), len(degraded))
    return float(_stoi(clean[:n].astype(np.float64), degraded[:n].astype(np.float64), sample_rate))

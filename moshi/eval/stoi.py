"""STOI (short-time objective intelligibility, Taal et al. 2011) through `pystoi`: how
intelligible a degraded signal (a codec's reconstruction) stays against its clean original,
about 0..1. Needs the `eval` extra."""

from __future__ import annotations

import warnings

import numpy as np

from ..audio import SAMPLE_RATE


def stoi(clean: np.ndarray, degraded: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """clean [T], degraded [T'] (cut to the shorter) -> STOI; NaN where the clean signal has
    too little speech for it (pystoi needs 30 frames of ~13 ms left after dropping silent
    ones, and would return 1e-5 there: a mean over files must leave such a file out)."""
    try:
        from pystoi import stoi as _stoi
    except ImportError as e:
        raise RuntimeError('pystoi is missing: pip install -e ".[eval]"') from e
    if clean.ndim != 1 or degraded.ndim != 1:
        raise ValueError(f"expected mono [T] signals, got {list(clean.shape)} and {list(degraded.shape)}")
    n = min(len(clean), len(degraded))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        score = float(_stoi(clean[:n].astype(np.float64), degraded[:n].astype(np.float64), sample_rate))
    if any("Not enough STFT frames" in str(w.message) for w in caught):
        return float("nan")
    return score

"""STOI through pystoi: a clean copy scores near 1, noise lower, and speech too short for the
measure is NaN (pystoi itself would say 1e-5, which a mean over files would take as a score)."""

import numpy as np
import pytest

pytest.importorskip("pystoi", reason='needs the eval extra: pip install -e ".[eval]"')


def _tone_bursts(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * 24000)) / 24000
    return (np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32) * 0.3


def test_copy_noise_and_too_short():
    from moshi.eval.stoi import stoi

    x = _tone_bursts(2.0)
    noisy = x + np.random.default_rng(0).standard_normal(len(x)).astype(np.float32) * 0.3
    assert stoi(x, x) > 0.99
    assert stoi(x, noisy) < stoi(x, x) - 0.1
    assert np.isnan(stoi(x[:4800], x[:4800]))  # 0.2 s
    with pytest.raises(ValueError, match="mono"):
        stoi(x[None], x)

"""LM building blocks."""

import torch

from moshi.lm.layers import _norm_constants, rms_norm


def test_rms_norm_trains_after_running_in_inference_mode():
    """Its cached constants are first made during generation (inference mode); a training
    step later in the same process must still be able to save them for backward."""
    _norm_constants.cache_clear()
    x, alpha = torch.randn(2, 3, 8), torch.ones(8)
    with torch.inference_mode():
        expected = rms_norm(x, alpha, 1e-8)
    x.requires_grad_(True)
    y = rms_norm(x, alpha, 1e-8)
    y.sum().backward()
    torch.testing.assert_close(y.detach(), expected)
    assert x.grad is not None and x.grad.shape == x.shape

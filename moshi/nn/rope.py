"""Rotary position embedding, interleaved layout (pairs x[2i], x[2i+1]), in float32.

The pair (x[2i], x[2i+1]) at position p is rotated by the angle p * max_period ** (-2i / D),
i.e. multiplied, as the complex number x[2i] + j x[2i+1], by a unit complex `rotation`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def rope_rotation(positions: Tensor, dim: int, max_period: float) -> Tensor:
    """positions: [...] (any integer or float dtype) -> complex64 [..., dim / 2]."""
    freqs = torch.exp(
        torch.arange(dim // 2, device=positions.device, dtype=torch.float32)
        * (-math.log(max_period) * 2 / dim)
    )
    angles = positions.to(torch.float32)[..., None] * freqs
    return torch.polar(torch.ones_like(angles), angles)


def rotate(x: Tensor, rotation: Tensor) -> Tensor:
    """x: [..., D] rotated by `rotation` [..., D / 2] (broadcast against x), in x's dtype."""
    if x.dtype != torch.float32:
        return rotate(x.float(), rotation).to(x.dtype)
    xc = torch.view_as_complex(x.unflatten(-1, (-1, 2)))
    return torch.view_as_real(xc * rotation).flatten(-2)

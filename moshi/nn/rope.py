"""Rotary position embedding, interleaved layout (pairs x[2i], x[2i+1]), in float32."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def apply_rope(q: Tensor, k: Tensor, positions: Tensor, max_period: float) -> tuple[Tensor, Tensor]:
    """Rotate queries and keys by their absolute positions.

    q, k: [B, H, T, D] (D even); positions: [B, T] (any integer or float dtype).
    Returns q, k rotated, in their input dtype. The angle of pair i at position p is
    p * max_period ** (-2i / D), computed in float32.
    """
    d = q.shape[-1]
    freqs = torch.exp(
        torch.arange(d // 2, device=q.device, dtype=torch.float32) * (-math.log(max_period) * 2 / d)
    )
    angles = positions.to(torch.float32)[:, None, :, None] * freqs  # [B, 1, T, D/2]
    cos, sin = torch.cos(angles), torch.sin(angles)
    return _rotate(q, cos, sin), _rotate(k, cos, sin)


def _rotate(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    xf = x.float().unflatten(-1, (-1, 2))  # [B, H, T, D/2, 2]
    re, im = xf[..., 0], xf[..., 1]
    out = torch.stack((re * cos - im * sin, re * sin + im * cos), dim=-1)
    return out.flatten(-2).to(x.dtype)

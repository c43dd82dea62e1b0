"""Bfloat16 weights for the big matrix products on a CPU: `Bf16Linear`.

x [..., K] -> bf16(x) @ bf16(W).T, summed in float32 and rounded to bfloat16 (oneDNN's
definition), returned in x's dtype. Weights stream at half the bytes of float32. Where the
CPU multiplies bfloat16 natively (AVX512-BF16, AMX), the weight is kept in oneDNN's packed
layout, which at 1-2 rows ran 1.5-2x faster than F.linear on the same bfloat16 weight
(2-core AMD EPYC, torch 2.13); elsewhere it is a plain bfloat16 tensor, and slower than
float32, which is why the CLI warns there. Not exact: moshi.quantize measures agreement.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..nn.linear import apply_linear
from .topk_head import bfloat16_products_available


class Bf16Linear(nn.Module):
    """x [..., K] -> x @ weight.T [..., N], weight [N, K] held in bfloat16."""

    def __init__(self, weight: Tensor):
        super().__init__()
        w = weight.detach().to(torch.bfloat16).contiguous()
        self.out_features = w.shape[0]
        self.packed = w.device.type == "cpu" and bfloat16_products_available()
        # The packed layout is oneDNN's own (not a tensor other code can read); kept out of
        # the state dict either way: the float32 model is what is saved and loaded.
        packed = torch.ops.mkldnn._reorder_linear_weight(w, 1) if self.packed else w
        self.register_buffer("weight", packed, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        xb = x.to(torch.bfloat16)
        if not self.packed:
            return apply_linear(self.weight, xb).to(x.dtype)
        rows = xb.reshape(-1, x.shape[-1]).contiguous()  # [M, K]
        y = torch.ops.mkldnn._linear_pointwise(rows, self.weight, None, "none", [], "")
        return y.to(x.dtype).view(*x.shape[:-1], self.out_features)

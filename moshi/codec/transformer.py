"""Mimi's transformers: pre-LayerNorm, LayerScale, GELU feed-forward, RoPE, bounded context."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nn.attention import Attention, SharedStep
from ..nn.linear import linear
from .config import MimiConfig


class LayerScale(nn.Module):
    """residual + scale * x, one fused op; [..., D]."""

    def __init__(self, dim: int):
        super().__init__()
        self.scale = nn.Parameter(torch.zeros(dim))  # loaded or trained (train/codec/init.py); never garbage

    def forward(self, x: Tensor, residual: Tensor) -> Tensor:
        return torch.addcmul(residual, self.scale, x)


class CodecTransformerLayer(nn.Module):
    """x + ls1(attn(norm1(x))), then x + ls2(linear2(gelu(linear1(norm2(x))))); [B, T, D]."""

    def __init__(self, cfg: MimiConfig):
        super().__init__()
        d = cfg.dimension
        self.norm1 = nn.LayerNorm(d, eps=1e-5)
        self.self_attn = Attention(d, cfg.num_heads, cfg.context, rope_max_period=cfg.max_period)
        self.layer_scale_1 = LayerScale(d)
        self.norm2 = nn.LayerNorm(d, eps=1e-5)
        self.linear1 = nn.Linear(d, cfg.dim_feedforward, bias=False)
        self.linear2 = nn.Linear(cfg.dim_feedforward, d, bias=False)
        self.layer_scale_2 = LayerScale(d)

    def forward(self, x: Tensor, shared: SharedStep | None = None) -> Tensor:
        x = self.layer_scale_1(self.self_attn(self.norm1(x), shared), residual=x)
        hidden = F.gelu(linear(self.linear1, self.norm2(x)))
        return self.layer_scale_2(linear(self.linear2, hidden), residual=x)


class CodecTransformer(nn.Module):
    """[B, D, T] -> [B, D, T] (channels first, like the convs around it)."""

    def __init__(self, cfg: MimiConfig):
        super().__init__()
        self.layers = nn.ModuleList(CodecTransformerLayer(cfg) for _ in range(cfg.num_layers))

    def forward(self, x: Tensor) -> Tensor:
        x = x.transpose(1, 2)
        shared = SharedStep()  # positions, RoPE and mask: computed by the first layer
        for layer in self.layers:
            x = layer(x, shared)
        return x.transpose(1, 2)

"""The depformer: a small transformer that emits one frame's audio tokens, one codebook at a
time, conditioned on the temporal transformer's output for that frame.

Sub-step k (k = 0 .. dep_q - 1) reads `depformer_in[k](h)` plus the embedding of the token
emitted just before it (the frame's text token for k = 0, audio token k - 1 after), runs
through the layers using weight set k (each layer has separate attention and FFN weights
per sub-step), attends to sub-steps 0..k of this frame only, and `linears[k]` gives the
logits of codebook k. No positional embedding; the attention cache lives for one frame.
The input projections, embeddings and output linears belong to `LMModel` (their names in
Kyutai's checkpoints are top-level); this module holds the layer stack.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import LMConfig
from .layers import Gating, RMSNorm


@dataclass
class FrameCache:
    """Keys and values of the sub-steps already run in this frame, per layer."""

    keys: Tensor  # [L, N, H, dep_q, D_head]
    values: Tensor  # [L, N, H, dep_q, D_head]

    @classmethod
    def empty(cls, cfg: LMConfig, n: int, like: Tensor) -> FrameCache:
        shape = (
            cfg.depformer_num_layers,
            n,
            cfg.depformer_num_heads,
            cfg.dep_q,
            cfg.depformer_dim // cfg.depformer_num_heads,
        )
        return cls(like.new_zeros(shape), like.new_zeros(shape))


class PerStepAttention(nn.Module):
    """Attention whose projections depend on the sub-step; stored as in Kyutai's checkpoints,
    the per-step matrices stacked on dim 0: in_proj_weight [steps * 3D, D], out_proj [steps * D, D]."""

    def __init__(self, dim: int, num_heads: int, steps: int):
        super().__init__()
        self.dim, self.num_heads = dim, num_heads
        self.in_proj_weight = nn.Parameter(torch.empty(steps * 3 * dim, dim))
        self.out_proj = nn.Linear(dim, steps * dim, bias=False)

    def forward(self, x: Tensor, step: int, keys: Tensor, values: Tensor) -> Tensor:
        """x: [N, D] for sub-step `step`; keys/values: [N, H, steps, D_head], filled in place."""
        N, D = x.shape
        w_in = self.in_proj_weight[step * 3 * D : (step + 1) * 3 * D]
        q, k, v = F.linear(x, w_in).view(N, 3, self.num_heads, -1).unbind(1)  # [N, H, Dh]
        keys[:, :, step] = k
        values[:, :, step] = v
        out = F.scaled_dot_product_attention(
            q[:, :, None], keys[:, :, : step + 1], values[:, :, : step + 1]
        )  # [N, H, 1, Dh]
        return F.linear(out.reshape(N, D), self.out_proj.weight[step * D : (step + 1) * D])


class DepformerLayer(nn.Module):
    def __init__(self, cfg: LMConfig):
        super().__init__()
        d = cfg.depformer_dim
        self.norm1 = RMSNorm(d)
        self.self_attn = PerStepAttention(d, cfg.depformer_num_heads, cfg.dep_q)
        self.norm2 = RMSNorm(d)
        self.gating = nn.ModuleList(Gating(d, cfg.depformer_hidden) for _ in range(cfg.dep_q))

    def forward(self, x: Tensor, step: int, keys: Tensor, values: Tensor) -> Tensor:
        x = x + self.self_attn(self.norm1(x), step, keys, values)
        return x + self.gating[step](self.norm2(x))


class Depformer(nn.Module):
    """The stack of depformer layers; x: [N, depformer_dim] at sub-step k -> same shape."""

    def __init__(self, cfg: LMConfig):
        super().__init__()
        self.layers = nn.ModuleList(DepformerLayer(cfg) for _ in range(cfg.depformer_num_layers))

    def forward(self, x: Tensor, k: int, cache: FrameCache) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x, k, cache.keys[i], cache.values[i])
        return x

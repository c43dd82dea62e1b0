"""The depformer: a small transformer that emits one frame's audio tokens, one codebook at a
time, conditioned on the temporal transformer's output for that frame.

Sub-step k (k = 0 .. dep_q - 1) reads `depformer_in[w](h)` plus the embedding of the token
emitted just before it (the frame's text token for k = 0, audio token k - 1 after), runs
through the layers using weight set w (each layer has separate attention and FFN weights
per set), attends to sub-steps 0..k of this frame only, and `linears[k]` gives the logits
of codebook k. The weight set w is k, or `depformer_weights_per_step_schedule[k]` for
models whose codebooks share sets (the released TTS). No positional embedding; the
attention cache lives for one frame and has a slot per sub-step, whatever the sets.
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
    """Attention whose projections depend on the weight set; stored as in Kyutai's
    checkpoints, the per-set matrices stacked on dim 0: in_proj_weight [sets * 3D, D],
    out_proj [sets * D, D]."""

    def __init__(self, dim: int, num_heads: int, sets: int):
        super().__init__()
        self.dim, self.num_heads, self.sets = dim, num_heads, sets
        self.in_proj_weight = nn.Parameter(torch.empty(sets * 3 * dim, dim))
        self.out_proj = nn.Linear(dim, sets * dim, bias=False)
        # Per-set modules computing the projections instead, set by transforms (moshi.kernels.int8).
        self.in_projs: nn.ModuleList | None = None
        self.out_projs: nn.ModuleList | None = None

    def forward(self, x: Tensor, step: int, weights: int, keys: Tensor, values: Tensor) -> Tensor:
        """x: [N, D] for sub-step `step` with weight set `weights`; keys/values:
        [N, H, dep_q, D_head], filled in place."""
        N, D = x.shape
        if self.in_projs is None:
            qkv = F.linear(x, self.in_proj_weight[weights * 3 * D : (weights + 1) * 3 * D])
        else:
            qkv = self.in_projs[weights](x)
        q, k, v = qkv.view(N, 3, self.num_heads, -1).unbind(1)  # [N, H, Dh]
        keys[:, :, step] = k
        values[:, :, step] = v
        out = F.scaled_dot_product_attention(
            q[:, :, None], keys[:, :, : step + 1], values[:, :, : step + 1]
        )  # [N, H, 1, Dh]
        if self.out_projs is not None:
            return self.out_projs[weights](out.reshape(N, D))
        return F.linear(out.reshape(N, D), self.out_proj.weight[weights * D : (weights + 1) * D])


class DepformerLayer(nn.Module):
    def __init__(self, cfg: LMConfig):
        super().__init__()
        d, sets = cfg.depformer_dim, cfg.depformer_weight_sets
        self.norm1 = RMSNorm(d)
        self.self_attn = PerStepAttention(d, cfg.depformer_num_heads, sets)
        self.norm2 = RMSNorm(d)
        self.gating = nn.ModuleList(Gating(d, cfg.depformer_hidden) for _ in range(sets))

    def forward(self, x: Tensor, step: int, weights: int, keys: Tensor, values: Tensor) -> Tensor:
        x = x + self.self_attn(self.norm1(x), step, weights, keys, values)
        return x + self.gating[weights](self.norm2(x))


class Depformer(nn.Module):
    """The stack of depformer layers; x: [N, depformer_dim] at sub-step k -> same shape."""

    def __init__(self, cfg: LMConfig):
        super().__init__()
        self.config = cfg
        self.layers = nn.ModuleList(DepformerLayer(cfg) for _ in range(cfg.depformer_num_layers))

    def forward(self, x: Tensor, k: int, cache: FrameCache) -> Tensor:
        weights = self.config.depformer_weight_set(k)
        for i, layer in enumerate(self.layers):
            x = layer(x, k, weights, cache.keys[i], cache.values[i])
        return x

"""The depformer: a small transformer that emits one frame's audio tokens, one codebook at a
time, conditioned on the temporal transformer's output for that frame.

Sub-step k (k = 0 .. dep_q - 1) reads `depformer_in[w](h)` plus the embedding of the token
emitted just before it (the frame's text token for k = 0, audio token k - 1 after), runs
through the layers using weight set w (each layer has separate attention and FFN weights
per set), attends to sub-steps 0..k of this frame only, and `linears[k]` gives the logits
of codebook k. The weight set w is k, or `depformer_weights_per_step_schedule[k]` for
models whose codebooks share sets (the released TTS). No positional embedding; the
attention cache lives for one frame and has a slot per sub-step, whatever the sets.

The modules here hold the parameters, named as in Kyutai's checkpoints (the input
projections, embeddings and output linears belong to `LMModel`, where those names are
top-level). The arithmetic is `run_substep`, over a `SubStep`: the weights sub-step k
reads, looked up once (`LMModel.depformer_plan`) rather than on every call. At batch 1 a
frame makes dep_q x layers small products, and finding their weights through the module
tree and indexing syntax would cost about as much as computing them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nn.linear import HostRows, Linear, apply_linear, linear_of, linear_weight
from .config import LMConfig
from .layers import Embedding, Gating, RMSNorm, rms_norm


@dataclass
class FrameCache:
    """Keys and values of the sub-steps already run in this frame, one tensor per layer."""

    keys: list[Tensor]  # L x [N, H, dep_q, D_head]
    values: list[Tensor]  # L x [N, H, dep_q, D_head]

    @classmethod
    def empty(cls, cfg: LMConfig, n: int, like: Tensor) -> FrameCache:
        shape = (n, cfg.depformer_num_heads, cfg.dep_q, cfg.depformer_dim // cfg.depformer_num_heads)
        layers = range(cfg.depformer_num_layers)
        return cls([like.new_zeros(shape) for _ in layers], [like.new_zeros(shape) for _ in layers])


class PerStepAttention(nn.Module):
    """The attention weights of every set, stored as in Kyutai's checkpoints, stacked on
    dim 0: in_proj_weight [sets * 3D, D], out_proj [sets * D, D]."""

    def __init__(self, dim: int, num_heads: int, sets: int):
        super().__init__()
        self.dim, self.num_heads, self.sets = dim, num_heads, sets
        self.in_proj_weight = linear_weight(sets * 3 * dim, dim)
        self.out_proj = nn.Linear(dim, sets * dim, bias=False)
        # Per-set projections, children that transforms may swap (moshi.quantize, LoRA).
        D = dim
        self.in_projs = nn.ModuleList(HostRows(self, "in_proj_weight", w * 3 * D, 3 * D) for w in range(sets))
        self.out_projs = nn.ModuleList(HostRows(self, "out_proj.weight", w * D, D) for w in range(sets))

    def projections(self, weights: int) -> tuple[Linear, Linear]:
        """(qkv [3D, D], out [D, D]) of weight set `weights`."""
        return linear_of(self.in_projs[weights]), linear_of(self.out_projs[weights])


class DepformerLayer(nn.Module):
    def __init__(self, cfg: LMConfig):
        super().__init__()
        d, sets = cfg.depformer_dim, cfg.depformer_weight_sets
        self.norm1 = RMSNorm(d)
        self.self_attn = PerStepAttention(d, cfg.depformer_num_heads, sets)
        self.norm2 = RMSNorm(d)
        self.gating = nn.ModuleList(Gating(d, cfg.depformer_hidden) for _ in range(sets))


class Depformer(nn.Module):
    """The stack of depformer layers (parameters only: see `run_substep`)."""

    def __init__(self, cfg: LMConfig):
        super().__init__()
        self.config = cfg
        self.layers = nn.ModuleList(DepformerLayer(cfg) for _ in range(cfg.depformer_num_layers))


@dataclass(frozen=True)
class LayerWeights:
    """One depformer layer's weights for one sub-step."""

    norm1: Tensor  # [D] alpha
    qkv: Linear  # [3D, D], q, k and v blocks, heads contiguous in each
    out: Linear  # [D, D]
    norm2: Tensor  # [D] alpha
    ffn_in: Linear  # [2 * hidden, D], the gate first
    ffn_out: Linear  # [D, hidden]
    eps: float  # of both norms

    @classmethod
    def of(cls, layer: DepformerLayer, weights: int) -> LayerWeights:
        qkv, out = layer.self_attn.projections(weights)
        ffn = cast(Gating, layer.gating[weights])
        if layer.norm1.eps != layer.norm2.eps:
            raise ValueError("the depformer's norms must share their eps")
        return cls(
            layer.norm1.alpha.view(-1),
            qkv,
            out,
            layer.norm2.alpha.view(-1),
            linear_of(ffn.linear_in),
            linear_of(ffn.linear_out),
            layer.norm1.eps,
        )


@dataclass(frozen=True)
class SubStep:
    """Everything sub-step k reads."""

    k: int
    input: Linear  # [D, dim]: from the temporal output
    embedding: Embedding  # of the previous token
    layers: tuple[LayerWeights, ...]
    output: Linear  # [card, D]: the logits of codebook k
    num_heads: int


def run_substep(
    sub: SubStep, h: Tensor, previous_token: Tensor, cache: FrameCache, nonnegative: bool = False
) -> Tensor:
    """Logits [N, card] of codebook `sub.k`: h [N, dim] the frame's temporal output,
    previous_token [N] (`nonnegative`: the caller knows none is the zero token); the cache
    holds sub-steps < k and gets this one's keys and values. (Tensor methods rather than
    indexing syntax, for the reason in the module docstring.)"""
    x = apply_linear(sub.input, h) + sub.embedding(previous_token, nonnegative)
    N, D = x.shape
    k = sub.k
    copy = torch.is_grad_enabled()  # training: autograd keeps the cache of sub-steps < k
    for i, w in enumerate(sub.layers):
        keys, values = cache.keys[i], cache.values[i]
        if copy:  # so write this sub-step's keys and values into a copy
            keys = cache.keys[i] = keys.clone()
            values = cache.values[i] = values.clone()
        y = rms_norm(x, w.norm1, w.eps)
        q, key, value = apply_linear(w.qkv, y).view(N, 3, sub.num_heads, -1).unbind(1)  # [N, H, Dh]
        keys.select(2, k).copy_(key)
        values.select(2, k).copy_(value)
        attended = F.scaled_dot_product_attention(
            q.unsqueeze(2), keys.narrow(2, 0, k + 1), values.narrow(2, 0, k + 1)
        )  # [N, H, 1, Dh]
        x = x + apply_linear(w.out, attended.view(N, D))
        gate, up = apply_linear(w.ffn_in, rms_norm(x, w.norm2, w.eps)).chunk(2, dim=-1)
        x = x + apply_linear(w.ffn_out, F.silu(gate) * up)
    return apply_linear(sub.output, x)

"""Causal self-attention with a bounded context and a ring KV cache for streaming.

Weights are stored as Kyutai's checkpoints store them: `in_proj_weight` [3D, D] (q, k and v
blocks stacked, heads contiguous in each) and `out_proj.weight` [D, D], no biases.

Offline, a query at position p attends to keys at positions p - context < k <= p.
Streaming, keys live in a ring buffer of `context` slots: each chunk is first written
into the ring (overwriting the oldest entries), then attends to whatever the ring holds,
masked by the same rule. Memory is constant however long the stream runs; positions keep
growing (RoPE needs no re-rotation when the ring wraps).

A stack of layers passes one `SharedStep` to all its layers, so that positions, RoPE
rotations and the mask are computed once per call rather than once per layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .linear import HostRows, linear, linear_weight
from .rope import rope_rotation, rotate
from .streaming import StreamingModule, StreamState, masked_fill_


@dataclass
class KVCache(StreamState):
    keys: Tensor  # [B, H, capacity, D_head]
    values: Tensor  # [B, H, capacity, D_head]
    positions: Tensor  # [B, capacity] int64, absolute position of each slot, -1 when empty
    offset: Tensor  # [B] int64, position of the next token
    # Known on the host: slots [used, capacity) are empty in every item. The ring fills
    # slot 0 first, so until it wraps attention needs only its first `used` slots (CPU only).
    used: int = 0

    def reset(self, mask: Tensor | None) -> None:
        if mask is None:
            self.used = 0
        masked_fill_(self.positions, mask, -1)
        masked_fill_(self.offset, mask, 0)
        # Keys and values of empty slots are masked out, but zero them so stale
        # (possibly non-finite) data can never leak into a 0 * inf.
        masked_fill_(self.keys, mask, 0.0)
        masked_fill_(self.values, mask, 0.0)


@dataclass
class SharedStep:
    """What every attention layer of a stack computes identically during one forward call.

    The first layer fills the fields, the next ones reuse them. Sharing is exact as long as
    the layers' KV caches hold the same positions, which they do when they stream together
    (entered, reset and exec-masked through their common root module).
    """

    positions: Tensor | None = None  # [B, T] ([1, T] offline) absolute positions of the chunk
    rotation: Tensor | None = None  # [B, 1, T, D_head / 2] complex RoPE rotation
    slots: Tensor | None = None  # [B, T] ring slots of the chunk (streaming)
    kv_slots: Tensor | None = None  # [B, H, T, D_head] the same, expanded for the keys and values
    mask: Tensor | None = None  # [B, 1, T, keys] additive: 0 where allowed, -inf elsewhere


class Attention(StreamingModule[KVCache]):
    """Multi-head causal self-attention over at most `context` past positions.

    x: [B, T, D] -> [B, T, D]. RoPE is applied when `rope_max_period` is given.
    """

    def __init__(self, dim: int, num_heads: int, context: int, rope_max_period: float | None):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not a multiple of num_heads {num_heads}")
        self.dim, self.num_heads, self.context = dim, num_heads, context
        self.rope_max_period = rope_max_period
        self.in_proj_weight = linear_weight(3 * dim, dim)
        self.out_proj = nn.Linear(dim, dim, bias=False)
        # x @ in_proj_weight.T, a child that transforms may swap (moshi.quantize, LoRA).
        self.in_proj: nn.Module = HostRows(self, "in_proj_weight", 0, 3 * dim)

    def init_state(self, batch_size: int) -> KVCache:
        w = self.in_proj_weight
        shape = (batch_size, self.num_heads, self.context, self.dim // self.num_heads)
        return KVCache(
            keys=torch.zeros(shape, device=w.device, dtype=w.dtype),
            values=torch.zeros(shape, device=w.device, dtype=w.dtype),
            positions=torch.full((batch_size, self.context), -1, device=w.device, dtype=torch.long),
            offset=torch.zeros(batch_size, device=w.device, dtype=torch.long),
        )

    def forward(self, x: Tensor, shared: SharedStep | None = None) -> Tensor:
        """x: [B, T, D] -> [B, T, D]. `shared`: see `SharedStep` (None: nothing shared)."""
        B, T, D = x.shape
        shared = SharedStep() if shared is None else shared
        state = self.state
        if shared.positions is None:
            shared.positions = torch.arange(T, device=x.device)[None]
            if state is not None:
                shared.positions = state.offset[:, None] + shared.positions
        qkv = linear(self.in_proj, x)
        qkv = qkv.view(B, T, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)  # [3, B, H, T, Dh]
        q, k, v = qkv.unbind(0)
        if self.rope_max_period is not None:
            if shared.rotation is None:
                rotation = rope_rotation(shared.positions, qkv.shape[-1], self.rope_max_period)
                shared.rotation = rotation[:, None]
            q, k = rotate(qkv.narrow(0, 0, 2), shared.rotation).unbind(0)  # both in one op

        if state is None:
            key_positions = shared.positions
        else:
            if shared.slots is None:
                shared.slots = shared.positions.expand(B, T) % self.context
            k, v, key_positions = self._write(state, k, v, shared)
        if shared.mask is None:
            shared.mask = self._mask(shared.positions, key_positions, x.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=shared.mask)  # [B, H, T, Dh]
        return linear(self.out_proj, out.transpose(1, 2).reshape(B, T, D))

    def _mask(self, positions: Tensor, key_positions: Tensor, dtype: torch.dtype) -> Tensor:
        """positions [B, T], key_positions [B, K] (-1: empty slot) -> additive [B, 1, T, K]."""
        delta = positions[:, :, None] - key_positions[:, None, :]  # [B, T, K] query - key
        allowed = (key_positions[:, None, :] >= 0) & (delta >= 0) & (delta < self.context)
        zero = torch.zeros((), device=positions.device, dtype=dtype)
        return torch.where(allowed, zero, float("-inf"))[:, None]

    def _write(
        self, state: KVCache, k: Tensor, v: Tensor, shared: SharedStep
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Write the chunk's keys/values [B, H, T, Dh] at its positions into the ring slots
        (both [B, T], in `shared`); returns the ring's used slots (keys, values, key
        positions): on the CPU those used so far, elsewhere all of them."""
        B, H, T, Dh = k.shape
        if self.context < T:
            raise ValueError(f"a streaming chunk of {T} steps exceeds the context ({self.context})")
        assert shared.positions is not None and shared.slots is not None
        positions, slots = shared.positions.expand(B, T), shared.slots
        if shared.kv_slots is None:
            shared.kv_slots = slots.view(B, 1, T, 1).expand(B, H, T, Dh)
        kv_slots = shared.kv_slots
        if self.exec_mask is not None:
            k = self.where_executing(k, state.keys.gather(2, kv_slots))
            v = self.where_executing(v, state.values.gather(2, kv_slots))
            positions = self.where_executing(positions, state.positions.gather(1, slots))
        state.keys.scatter_(2, kv_slots, k)
        state.values.scatter_(2, kv_slots, v)
        state.positions.scatter_(1, slots, positions)
        state.offset.add_(T if self.exec_mask is None else self.exec_mask.long() * T)
        state.used = min(self.context, state.used + T)
        if state.used == self.context or k.device.type != "cpu":
            # (Elsewhere CUDA graphs replay steps without running this code: `used` would
            # fall behind. The CPU is also where reading less of the ring pays.)
            return state.keys, state.values, state.positions
        n = state.used
        return state.keys.narrow(2, 0, n), state.values.narrow(2, 0, n), state.positions.narrow(1, 0, n)

"""Causal self-attention with a bounded context and a ring KV cache for streaming.

Weights are stored as Kyutai's checkpoints store them: `in_proj_weight` [3D, D] (q, k and v
blocks stacked, heads contiguous in each) and `out_proj.weight` [D, D], no biases.

Offline, a query at position p attends to keys at positions p - context < k <= p.
Streaming, keys live in a ring buffer of `context` slots: each chunk is first written
into the ring (overwriting the oldest entries), then attends to whatever the ring holds,
masked by the same rule. Memory is constant however long the stream runs; positions keep
growing (RoPE needs no re-rotation when the ring wraps).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .rope import apply_rope
from .streaming import StreamingModule, StreamState, masked_fill_


@dataclass
class KVCache(StreamState):
    keys: Tensor  # [B, H, capacity, D_head]
    values: Tensor  # [B, H, capacity, D_head]
    positions: Tensor  # [B, capacity] int64, absolute position of each slot, -1 when empty
    offset: Tensor  # [B] int64, position of the next token

    def reset(self, mask: Tensor | None) -> None:
        masked_fill_(self.positions, mask, -1)
        masked_fill_(self.offset, mask, 0)
        # Keys and values of empty slots are masked out, but zero them so stale
        # (possibly non-finite) data can never leak into a 0 * inf.
        masked_fill_(self.keys, mask, 0.0)
        masked_fill_(self.values, mask, 0.0)


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
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.out_proj = nn.Linear(dim, dim, bias=False)

    def init_state(self, batch_size: int) -> KVCache:
        w = self.in_proj_weight
        shape = (batch_size, self.num_heads, self.context, self.dim // self.num_heads)
        return KVCache(
            keys=torch.zeros(shape, device=w.device, dtype=w.dtype),
            values=torch.zeros(shape, device=w.device, dtype=w.dtype),
            positions=torch.full((batch_size, self.context), -1, device=w.device, dtype=torch.long),
            offset=torch.zeros(batch_size, device=w.device, dtype=torch.long),
        )

    def forward(self, x: Tensor) -> Tensor:
        B, T, D = x.shape
        q, k, v = F.linear(x, self.in_proj_weight).view(B, T, 3, self.num_heads, -1).unbind(2)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # [B, H, T, Dh]
        state = self.state
        if state is None:
            positions = torch.arange(T, device=x.device).expand(B, T)
        else:
            positions = state.offset[:, None] + torch.arange(T, device=x.device)  # [B, T]
        if self.rope_max_period is not None:
            q, k = apply_rope(q, k, positions, self.rope_max_period)

        if state is None:
            delta = positions[0, :, None] - positions[0, None, :]  # [T, T] query - key
            mask = (delta >= 0) & (delta < self.context)
        else:
            k, v, key_positions = self._write(state, k, v, positions)
            delta = positions[:, :, None] - key_positions[:, None, :]  # [B, T, capacity]
            mask = ((key_positions[:, None, :] >= 0) & (delta >= 0) & (delta < self.context))[:, None]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out_proj(out.transpose(1, 2).reshape(B, T, D))

    def _write(
        self, state: KVCache, k: Tensor, v: Tensor, positions: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Write the chunk's keys/values into the ring; returns the whole ring."""
        B, H, T, Dh = k.shape
        if self.context < T:
            raise ValueError(f"a streaming chunk of {T} steps exceeds the context ({self.context})")
        slots = positions % self.context  # [B, T]
        kv_slots = slots[:, None, :, None].expand(B, H, T, Dh)
        if self.exec_mask is not None:
            k = self.where_executing(k, state.keys.gather(2, kv_slots))
            v = self.where_executing(v, state.values.gather(2, kv_slots))
            positions = self.where_executing(positions, state.positions.gather(1, slots))
        state.keys.scatter_(2, kv_slots, k)
        state.values.scatter_(2, kv_slots, v)
        state.positions.scatter_(1, slots, positions)
        state.offset.add_(T if self.exec_mask is None else self.exec_mask.long() * T)
        return state.keys, state.values, state.positions

"""Cross-attention from the token stream to a fixed source (the TTS voice conditioning).

Queries come from the stream, keys and values from the source: no positions (RoPE), no
causal mask, every query sees the whole source. Weights are stored as Kyutai stores them:
`in_proj_weight` [3D, D] (q, k, v blocks stacked) and `out_proj.weight` [D, D].

The source does not change during a conversation, so while streaming its keys and values
are computed once (`set_source`) and kept in the module's state; offline, `forward` takes
the source itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nn.linear import linear_weight
from ..nn.streaming import StreamingModule, StreamState


@dataclass
class CrossSource(StreamState):
    """The source's keys and values, per batch item. They are an input of the conversation
    rather than its progress: `reset` keeps them (`set_source` replaces them)."""

    keys: Tensor  # [B, H, S, D_head]
    values: Tensor  # [B, H, S, D_head]

    def reset(self, mask: Tensor | None) -> None:
        pass


class CrossAttention(StreamingModule[CrossSource]):
    """x [B, T, D] attends to a source [B, S, D] -> [B, T, D]."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not a multiple of num_heads {num_heads}")
        self.dim, self.num_heads = dim, num_heads
        self.in_proj_weight = linear_weight(3 * dim, dim)
        self.out_proj = nn.Linear(dim, dim, bias=False)

    def init_state(self, batch_size: int) -> CrossSource:
        w = self.in_proj_weight
        empty = torch.zeros(
            batch_size, self.num_heads, 0, self.dim // self.num_heads, dtype=w.dtype, device=w.device
        )
        return CrossSource(keys=empty, values=empty.clone())

    def project_source(self, source: Tensor) -> tuple[Tensor, Tensor]:
        """source [B, S, D] -> keys, values [B, H, S, D_head]."""
        B, S, D = source.shape
        w = self.in_proj_weight
        kv = F.linear(source.to(w.dtype), w[D:]).view(B, S, 2, self.num_heads, -1)
        k, v = kv.permute(2, 0, 3, 1, 4).unbind(0)
        return k, v

    def set_source(self, source: Tensor, rows: Tensor | None = None) -> None:
        """Streaming: the source [N, S, D] of the batch rows `rows` [N] (all rows when None).
        S may change only when all rows are set at once."""
        if self.state is None:
            raise RuntimeError("set_source() needs streaming mode")
        k, v = self.project_source(source)
        st = self.state
        if rows is None:
            if k.shape[0] != st.keys.shape[0]:
                raise ValueError(f"expected a source for {st.keys.shape[0]} rows, got {k.shape[0]}")
            if k.shape == st.keys.shape:  # in place: CUDA graphs keep reading the same memory
                st.keys.copy_(k)
                st.values.copy_(v)
            else:
                st.keys, st.values = k.contiguous(), v.contiguous()
            return
        if k.shape[2] != st.keys.shape[2]:
            raise ValueError(
                f"this batch's cross-attention source has length {st.keys.shape[2]}, got {k.shape[2]} "
                "(set every item at once to change it)"
            )
        st.keys[rows] = k
        st.values[rows] = v

    @property
    def source_length(self) -> int:
        """S of the streaming source (0 while none is set)."""
        return 0 if self.state is None else self.state.keys.shape[2]

    def forward(self, x: Tensor, source: Tensor | None = None) -> Tensor:
        """x [B, T, D]; source [B, S, D] offline, None while streaming (the cached one)."""
        B, T, D = x.shape
        if self.state is not None:
            k, v = self.state.keys, self.state.values
            if k.shape[2] == 0:
                raise RuntimeError("no cross-attention source: set the conditions first")
        elif source is None:
            raise ValueError("this model has cross-attention: it needs a source (its conditions)")
        else:
            k, v = self.project_source(source)
        q = F.linear(x, self.in_proj_weight[:D]).view(B, T, self.num_heads, -1).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v)  # [B, H, T, D_head]
        return self.out_proj(out.transpose(1, 2).reshape(B, T, D))

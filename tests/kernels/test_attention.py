"""Attention with per-call sharing (SharedStep, complex RoPE) equals the plain per-layer
computation: real-valued RoPE, a boolean mask, SDPA, offline and streaming."""

import math

import pytest
import torch
import torch.nn.functional as F

from moshi.nn.attention import Attention, SharedStep
from moshi.nn.rope import rope_rotation, rotate
from moshi.nn.streaming import reset_streaming, set_exec_mask, streaming


def plain_rope(x, positions, max_period):
    """x [B, H, T, D] rotated pair by pair with cos/sin, in float32."""
    d = x.shape[-1]
    freqs = torch.exp(torch.arange(d // 2, dtype=torch.float32) * (-math.log(max_period) * 2 / d))
    angles = positions.float()[:, None, :, None] * freqs
    cos, sin = torch.cos(angles), torch.sin(angles)
    re, im = x[..., 0::2], x[..., 1::2]
    return torch.stack((re * cos - im * sin, re * sin + im * cos), dim=-1).flatten(-2)


def plain_attention(attn: Attention, x):
    """The textbook computation, writing into `attn.state` like `Attention` does."""
    B, T, D = x.shape
    q, k, v = F.linear(x, attn.in_proj_weight).view(B, T, 3, attn.num_heads, -1).unbind(2)
    q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    state = attn.state
    offset = 0 if state is None else state.offset[:, None]
    positions = offset + torch.arange(T).expand(B, T)
    if attn.rope_max_period is not None:
        q, k = plain_rope(q, positions, attn.rope_max_period), plain_rope(k, positions, attn.rope_max_period)
    if state is None:
        key_positions = positions
    else:
        slots = positions % attn.context
        idx = slots[:, None, :, None].expand_as(k)
        run = torch.ones(B, dtype=torch.bool) if attn.exec_mask is None else attn.exec_mask
        new_pos = torch.where(run[:, None], positions, state.positions.gather(1, slots))
        state.keys.scatter_(2, idx, torch.where(run[:, None, None, None], k, state.keys.gather(2, idx)))
        state.values.scatter_(2, idx, torch.where(run[:, None, None, None], v, state.values.gather(2, idx)))
        state.positions.scatter_(1, slots, new_pos)
        state.offset.add_(run.long() * T)
        k, v, key_positions = state.keys, state.values, state.positions
    delta = positions[:, :, None] - key_positions[:, None, :]
    mask = (key_positions[:, None, :] >= 0) & (delta >= 0) & (delta < attn.context)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None])
    return attn.out_proj(out.transpose(1, 2).reshape(B, T, D))


class Stack(torch.nn.Module):
    """A few attention layers, with or without a SharedStep."""

    def __init__(self, layers: int, context: int, rope: float | None, share: bool):
        super().__init__()
        self.layers = torch.nn.ModuleList(Attention(16, 2, context, rope) for _ in range(layers))
        self.share = share
        for p in self.parameters():
            torch.nn.init.normal_(p, std=0.3)

    def forward(self, x, plain: bool = False):
        shared = SharedStep() if self.share else None
        for layer in self.layers:
            x = x + (plain_attention(layer, x) if plain else layer(x, shared))
        return x


CLOSE = dict(rtol=1e-5, atol=1e-5)


def test_rope_matches_the_cos_sin_formula():
    q, k = torch.randn(2, 3, 5, 8), torch.randn(2, 3, 5, 8)
    positions = torch.tensor([[0, 1, 2, 3, 4], [100, 101, 102, 103, 104]])
    rotation = rope_rotation(positions, 8, 10_000.0)[:, None]  # [B, 1, T, D/2]
    torch.testing.assert_close(rotate(q, rotation), plain_rope(q, positions, 10_000.0), **CLOSE)
    torch.testing.assert_close(rotate(k, rotation), plain_rope(k, positions, 10_000.0), **CLOSE)


@pytest.mark.parametrize("share", [True, False])
@pytest.mark.parametrize("rope", [10_000.0, None])
@pytest.mark.parametrize("T,context", [(1, 4), (7, 3), (20, 50)])
def test_offline_equals_plain(share, rope, T, context):
    stack = Stack(3, context, rope, share)
    x = torch.randn(2, T, 16)
    with torch.no_grad():
        torch.testing.assert_close(stack(x), stack(x, plain=True), **CLOSE)


def _run_stream(stack, x, chunks, plain):
    out, i = [], 0
    with streaming(stack, x.shape[0]):
        for c in chunks:
            out.append(stack(x[:, i : i + c], plain=plain))
            i += c
    return torch.cat(out, 1)


@pytest.mark.parametrize("share", [True, False])
@pytest.mark.parametrize("rope", [10_000.0, None])
@pytest.mark.parametrize("chunks", [[1] * 12, [2] * 6, [3, 1, 4, 1, 3], [5, 5, 2]])
@pytest.mark.parametrize("context", [5, 6, 16])
def test_streaming_equals_plain_through_ring_wraps(share, rope, chunks, context):
    stack = Stack(3, context, rope, share)
    x = torch.randn(2, sum(chunks), 16)
    with torch.no_grad():
        fast = _run_stream(stack, x, chunks, plain=False)
        plain = _run_stream(stack, x, chunks, plain=True)
        torch.testing.assert_close(fast, plain, **CLOSE)
        if context >= sum(chunks):  # the ring never wraps: streaming is offline, chunk by chunk
            torch.testing.assert_close(fast, stack(x), **CLOSE)


@pytest.mark.parametrize("share", [True, False])
@pytest.mark.parametrize("context", [4, 16])  # the ring wraps, or is never full
@pytest.mark.parametrize("whole_reset_at", [None, 3])
def test_reset_and_paused_items_equal_plain(share, context, whole_reset_at):
    """(Until its ring wraps, attention reads only the slots used so far: resets and pauses
    must keep that count right.)"""
    stack = Stack(2, context, 10_000.0, share)
    x = torch.randn(3, 10, 16)
    outs = {}
    with torch.no_grad():
        for plain in (False, True):
            out = []
            with streaming(stack, 3):
                for i in range(5):
                    if i == whole_reset_at:
                        reset_streaming(stack, 3)
                    if i == 2:
                        reset_streaming(stack, 3, torch.tensor([False, True, False]))
                    set_exec_mask(stack, 3, torch.tensor([True, True, i % 2 == 0]))
                    out.append(stack(x[:, 2 * i : 2 * i + 2], plain=plain))
            outs[plain] = torch.cat(out, 1)
    # Item 2's outputs are meaningless on its paused calls (odd i); compare its other steps.
    running = torch.tensor([i % 2 == 0 for i in range(5) for _ in range(2)])
    torch.testing.assert_close(outs[False][:2], outs[True][:2], **CLOSE)
    torch.testing.assert_close(outs[False][2, running], outs[True][2, running], **CLOSE)

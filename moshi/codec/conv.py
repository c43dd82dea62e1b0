"""Causal streaming convolutions: the same output chunk by chunk as on the whole signal.

`CausalConv1d` pads on the left only, by `(kernel - 1) * dilation + 1 - stride` samples:
zeros (or copies of the first sample for `pad_mode="replicate"`) at the start of a
stream, the end of the previous chunk afterwards. No right padding: inputs are whole
multiples of the stride.

`CausalConvTranspose1d` computes the full transposed conv, then keeps its last
`kernel - stride` samples (bias removed) to be overlap-added to the next chunk's start;
offline they are simply trimmed.

On CPU, convs with big weights run as one matrix product (moshi.kernels.conv's modules),
which equals PyTorch's convolution up to float rounding and is faster there. Transforms
(moshi.quantize) may swap `conv` / `convtr` for another module of the same shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..kernels import conv as fast
from ..nn.streaming import StreamingModule, StreamState, masked_fill_


@dataclass
class ConvState(StreamState):
    previous: Tensor  # [B, C_in, left_context] end of the input seen so far
    fresh: Tensor  # [B] bool, True until the stream's first chunk (read by replicate padding)

    def reset(self, mask: Tensor | None) -> None:
        masked_fill_(self.previous, mask, 0.0)
        masked_fill_(self.fresh, mask, True)


class CausalConv1d(StreamingModule[ConvState]):
    """x: [B, C_in, T] -> [B, C_out, T / stride]; T must be a multiple of the stride."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
        bias: bool = True,
        pad_mode: str = "constant",
    ):
        super().__init__()
        if pad_mode not in ("constant", "replicate"):
            raise ValueError(f"pad_mode must be 'constant' or 'replicate', got {pad_mode!r}")
        self.conv = fast.Conv1d(
            in_channels, out_channels, kernel_size, stride, dilation=dilation, groups=groups, bias=bias
        )
        self.stride = stride
        self.pad_mode = pad_mode
        self.left_context = (kernel_size - 1) * dilation + 1 - stride

    def init_state(self, batch_size: int) -> ConvState:
        w = self.conv.weight
        return ConvState(
            previous=w.new_zeros(batch_size, self.conv.in_channels, self.left_context),
            fresh=torch.ones(batch_size, dtype=torch.bool, device=w.device),
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] % self.stride:
            raise ValueError(f"input length {x.shape[-1]} is not a multiple of the stride {self.stride}")
        return self.conv(self.pad(x))

    def pad(self, x: Tensor) -> Tensor:
        """The input with its left context prepended: [B, C_in, left_context + T]."""
        n = self.left_context
        if n == 0:
            return x
        state = self.state
        if state is None:
            if self.pad_mode == "replicate":
                return torch.cat([x[..., :1].expand(-1, -1, n), x], dim=-1)
            return F.pad(x, (n, 0))
        previous = state.previous
        if self.pad_mode == "replicate":
            previous = torch.where(state.fresh[:, None, None], x[..., :1].expand_as(previous), previous)
            state.fresh = self.where_executing(torch.zeros_like(state.fresh), state.fresh)
        x = torch.cat([previous, x], dim=-1)
        state.previous = self.where_executing(x[..., -n:], state.previous)
        return x


@dataclass
class ConvTrState(StreamState):
    partial: Tensor  # [B, C_out, kernel - stride] overlap to add to the next chunk, no bias

    def reset(self, mask: Tensor | None) -> None:
        masked_fill_(self.partial, mask, 0.0)


class CausalConvTranspose1d(StreamingModule[ConvTrState]):
    """x: [B, C_in, T] -> [B, C_out, T * stride]."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        bias: bool = True,
    ):
        super().__init__()
        if kernel_size < stride:
            raise ValueError(f"kernel_size {kernel_size} < stride {stride}")
        self.convtr = fast.ConvTranspose1d(
            in_channels, out_channels, kernel_size, stride, groups=groups, bias=bias
        )
        self.stride = stride
        self.overlap = kernel_size - stride

    def init_state(self, batch_size: int) -> ConvTrState:
        w = self.convtr.weight
        return ConvTrState(partial=w.new_zeros(batch_size, self.convtr.out_channels, self.overlap))

    def forward(self, x: Tensor) -> Tensor:
        return self.overlap_add(self.convtr(x), x.shape[-1] * self.stride)

    def overlap_add(self, y: Tensor, length: int) -> Tensor:
        """From the full transposed-conv output y [B, C_out, (T - 1) * stride + kernel],
        the `length` = T * stride samples of this chunk (carrying the overlap when streaming)."""
        state = self.state
        if state is None or self.overlap == 0:
            return y[..., :length]
        y[..., : self.overlap] += state.partial  # y is ours: a fresh output
        tail = y[..., length:]
        if self.convtr.bias is not None:
            tail = tail - self.convtr.bias[:, None]
        state.partial = self.where_executing(tail, state.partial)
        return y[..., :length]

"""1-d convolutions as one matrix product, for the CPU shapes where PyTorch's native
convolution is slow: big weights (Mimi's strided SEANet convs and its 1024-channel convs,
1M parameters and more), and mid-size ones in a streaming call (a few steps: the small
codec's). Each function equals its `torch.nn.functional` namesake with groups 1 and no
padding, up to float rounding; `Conv1d` and `ConvTranspose1d` are the torch modules that
take them where `prefers_matmul` (or, for a few output channels, `has_taps_shape`) says so.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# cols [M, K] -> cols @ W [M, N], for a weight W the caller knows (e.g. an int8 copy of it).
MatMul = Callable[[Tensor], Tensor]

# From this many weights on, a matrix product beats the native CPU convolution at batch 1,
# streaming (a few steps per call) as well as offline (thousands). Below it, the native
# kernel wins on long inputs: the column copy costs more than the product saves.
MATMUL_MIN_WEIGHTS = 1 << 20


# In a streaming call, with at most STREAMING_MAX_STEPS steps out (a transposed conv: in), a
# product beats the native kernel from this many weights on, kernels wider than 1 (on 2-core
# EPYC and Xeon machines, torch 2.13, the small codec's 128k-524k weights at 1-24 steps: 2-3x;
# 1x1 convs and longer inputs stay native). bench/codec.py --preset mimi-small times it.
STREAMING_MATMUL_MIN_WEIGHTS = 1 << 17
STREAMING_MAX_STEPS = 32

# Up to this many output channels, a plain unstrided conv wider than 1 runs as one product
# per tap (`conv1d_taps`): Mimi's last conv (1 channel) ~10x faster than the native kernel,
# the small codec's 8-channel residual convs at 24 kHz ~2x.
TAPS_MAX_CHANNELS = 8

# Up to this many input steps (a streaming call: one or two), a depthwise transposed conv
# (Mimi's upsampling) runs as a broadcast product: PyTorch's native kernel costs a fixed
# ~0.1-0.3 ms a call there. On longer inputs the native kernel wins.
DEPTHWISE_MAX_STEPS = 4


def has_matmul_shape(conv: nn.Conv1d | nn.ConvTranspose1d) -> bool:
    """The rule: a plain (groups 1) conv with a big weight. On shapes only, so that results
    never depend on timing or machine load."""
    return conv.groups == 1 and conv.weight.numel() >= MATMUL_MIN_WEIGHTS


def prefers_matmul(conv: nn.Conv1d | nn.ConvTranspose1d, x: Tensor) -> bool:
    """Whether `conv1d` / `conv_transpose1d` below should replace `conv` on `x` [B, C_in, T]:
    a big weight, or a mid-size one in a streaming call (STREAMING_MAX_STEPS)."""
    if x.device.type != "cpu" or conv.groups != 1:
        return False
    if has_matmul_shape(conv):
        return True
    (k,), (stride,), (dilation,) = conv.kernel_size, conv.stride, conv.dilation
    steps = (
        x.shape[-1]
        if isinstance(conv, nn.ConvTranspose1d)
        else (x.shape[-1] - (k - 1) * dilation - 1) // stride + 1
    )
    return k > 1 and conv.weight.numel() >= STREAMING_MATMUL_MIN_WEIGHTS and steps <= STREAMING_MAX_STEPS


def has_taps_shape(conv: nn.Conv1d) -> bool:
    """A plain, unstrided conv wider than 1 to a few output channels (Mimi's last, back to the
    waveform; the small codec's first residual convs), where the native CPU kernel runs at a
    few GFLOP/s: `conv1d_taps` is 2-10x faster."""
    k, out = conv.kernel_size[0], conv.out_channels
    return conv.groups == 1 and conv.stride[0] == 1 and out <= TAPS_MAX_CHANNELS and (k > 1 or out == 1)


def prefers_broadcast(conv: nn.ConvTranspose1d, x: Tensor) -> bool:
    """Whether `depthwise_conv_transpose1d` should replace `conv` on `x` (a few steps)."""
    depthwise = conv.groups == conv.in_channels == conv.out_channels
    return x.device.type == "cpu" and depthwise and x.shape[-1] <= DEPTHWISE_MAX_STEPS


def conv1d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: int = 1,
    dilation: int = 1,
    matmul: MatMul | None = None,
) -> Tensor:
    """`F.conv1d(x, weight, bias, stride, 0, dilation)` as unfold + matmul.

    x: [B, C_in, T]; weight: [C_out, C_in, K] -> [B, C_out, T_out] (a transposed view), with
    T_out = (T - (K - 1) * dilation - 1) // stride + 1. `matmul`, when given, computes
    cols @ weight.view(C_out, C_in * K).T in place of the float32 product.
    """
    B, C_in, _ = x.shape
    C_out, _, K = weight.shape
    cols = x.unfold(-1, (K - 1) * dilation + 1, stride)[..., ::dilation]  # [B, C_in, T_out, K]
    cols = cols.transpose(1, 2).reshape(-1, C_in * K)  # [B * T_out, C_in * K], a copy
    if matmul is None:
        y = F.linear(cols, weight.view(C_out, C_in * K), bias)  # [B * T_out, C_out]
    else:
        y = matmul(cols) if bias is None else matmul(cols) + bias
    return y.view(B, -1, C_out).transpose(1, 2)


def conv1d_taps(x: Tensor, weight: Tensor, bias: Tensor | None, dilation: int = 1) -> Tensor:
    """`F.conv1d(x, weight, bias, 1, 0, dilation)` as one product per kernel tap, summed shifted.

    x: [B, C_in, T]; weight: [C_out, C_in, K] -> [B, C_out, T - (K - 1) * dilation]. For a few
    output channels: the product reads x once, in place (no column copy), and is wide.
    """
    C_out, C_in, K = weight.shape
    T = x.shape[-1] - (K - 1) * dilation
    z = torch.matmul(weight.permute(2, 0, 1).reshape(K * C_out, C_in), x)  # [B, K * C_out, T_in]
    z = z.unflatten(1, (K, C_out))  # [B, K, C_out, T_in]
    y = z[:, 0, :, :T].clone() if bias is None else z[:, 0, :, :T] + bias[:, None]
    for k in range(1, K):
        y += z[:, k, :, k * dilation : k * dilation + T]
    return y


def conv_transpose1d(
    x: Tensor, weight: Tensor, bias: Tensor | None, stride: int = 1, matmul: MatMul | None = None
) -> Tensor:
    """`F.conv_transpose1d(x, weight, bias, stride)` as matmul + overlap-add.

    x: [B, C_in, T]; weight: [C_in, C_out, K] -> [B, C_out, (T - 1) * stride + K].
    Input step t contributes K output samples from t * stride on: cut into `blocks` blocks of
    `stride` samples (the last one zero-padded), its block j lands on output block t + j.
    `matmul`, when given, computes x_t @ weight.view(C_in, C_out * K) in place of float32.
    """
    B, C_in, T = x.shape
    _, C_out, K = weight.shape
    rows = x.transpose(1, 2).reshape(B * T, C_in)
    y = rows @ weight.view(C_in, C_out * K) if matmul is None else matmul(rows)  # [B * T, C_out * K]
    return _overlap_add(y.view(B, T, C_out, K), bias, stride)


def depthwise_conv_transpose1d(x: Tensor, weight: Tensor, bias: Tensor | None, stride: int = 1) -> Tensor:
    """`F.conv_transpose1d(x, weight, bias, stride, groups=C)` as a broadcast product +
    overlap-add: x [B, C, T]; weight [C, 1, K] -> [B, C, (T - 1) * stride + K]."""
    y = x.transpose(1, 2)[..., None] * weight[:, 0]  # [B, T, C, K]
    return _overlap_add(y, bias, stride)


def _overlap_add(y: Tensor, bias: Tensor | None, stride: int) -> Tensor:
    """Step t's K output samples y [B, T, C_out, K], placed from t * stride on and summed:
    [B, C_out, (T - 1) * stride + K]."""
    B, T, C_out, K = y.shape
    blocks = -(-K // stride)
    y = F.pad(y, (0, blocks * stride - K))
    y = y.view(B, T, C_out, blocks, stride).permute(0, 2, 3, 1, 4)  # [B, C_out, blocks, T, stride]
    out = F.pad(y[:, :, 0], (0, 0, 0, blocks - 1))  # [B, C_out, T + blocks - 1, stride]
    for j in range(1, blocks):
        out[:, :, j : j + T] += y[:, :, j]
    out = out.flatten(2)[..., : (T - 1) * stride + K]
    return out if bias is None else out + bias[:, None]


class Conv1d(nn.Conv1d):
    """nn.Conv1d (no padding) through `conv1d` where `prefers_matmul`, `conv1d_taps` where
    `has_taps_shape` (on CPU): x [B, C_in, T] -> [B, C_out, T_out]."""

    def forward(self, x: Tensor) -> Tensor:
        if prefers_matmul(self, x):
            return conv1d(x, self.weight, self.bias, self.stride[0], self.dilation[0])
        if x.device.type == "cpu" and has_taps_shape(self):
            return conv1d_taps(x, self.weight, self.bias, self.dilation[0])
        return super().forward(x)


class ConvTranspose1d(nn.ConvTranspose1d):
    """nn.ConvTranspose1d (no padding, the full output) through `conv_transpose1d` where
    `prefers_matmul`, `depthwise_conv_transpose1d` where `prefers_broadcast`: x [B, C_in, T]
    -> [B, C_out, (T - 1) * stride + K]."""

    def forward(self, x: Tensor, output_size: list[int] | None = None) -> Tensor:
        if output_size is None and prefers_matmul(self, x):
            return conv_transpose1d(x, self.weight, self.bias, self.stride[0])
        if output_size is None and prefers_broadcast(self, x):
            return depthwise_conv_transpose1d(x, self.weight, self.bias, self.stride[0])
        return super().forward(x, output_size)

"""1-d convolutions as one matrix product, for the CPU shapes where PyTorch's native
convolution is slow: big weights (Mimi's strided SEANet convs and its 1024-channel convs,
1M parameters and more). Each function equals its `torch.nn.functional` namesake with
groups 1 and no padding, up to float rounding; `Conv1d` and `ConvTranspose1d` are the
torch modules that take them where `prefers_matmul` says so.
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor, nn

# cols [M, K] -> cols @ W [M, N], for a weight W the caller knows (e.g. an int8 copy of it).
MatMul = Callable[[Tensor], Tensor]

# From this many weights on, a matrix product beats the native CPU convolution at batch 1,
# streaming (a few steps per call) as well as offline (thousands). Below it, the native
# kernel wins on long inputs: the column copy costs more than the product saves.
MATMUL_MIN_WEIGHTS = 1 << 20


def has_matmul_shape(conv: nn.Conv1d | nn.ConvTranspose1d) -> bool:
    """The rule: a plain (groups 1) conv with a big weight. On shapes only, so that results
    never depend on timing or machine load."""
    return conv.groups == 1 and conv.weight.numel() >= MATMUL_MIN_WEIGHTS


def prefers_matmul(conv: nn.Conv1d | nn.ConvTranspose1d, x: Tensor) -> bool:
    """Whether `conv1d` / `conv_transpose1d` below should replace `conv` on `x`."""
    return x.device.type == "cpu" and has_matmul_shape(conv)


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
    blocks = -(-K // stride)
    rows = x.transpose(1, 2).reshape(B * T, C_in)
    y = rows @ weight.view(C_in, C_out * K) if matmul is None else matmul(rows)  # [B * T, C_out * K]
    y = F.pad(y.view(B, T, C_out, K), (0, blocks * stride - K))
    y = y.view(B, T, C_out, blocks, stride).permute(0, 2, 3, 1, 4)  # [B, C_out, blocks, T, stride]
    out = F.pad(y[:, :, 0], (0, 0, 0, blocks - 1))  # [B, C_out, T + blocks - 1, stride]
    for j in range(1, blocks):
        out[:, :, j : j + T] += y[:, :, j]
    out = out.flatten(2)[..., : (T - 1) * stride + K]
    return out if bias is None else out + bias[:, None]


class Conv1d(nn.Conv1d):
    """nn.Conv1d (no padding) through `conv1d` where `prefers_matmul`: x [B, C_in, T] ->
    [B, C_out, T_out]."""

    def forward(self, x: Tensor) -> Tensor:
        if prefers_matmul(self, x):
            return conv1d(x, self.weight, self.bias, self.stride[0], self.dilation[0])
        return super().forward(x)


class ConvTranspose1d(nn.ConvTranspose1d):
    """nn.ConvTranspose1d (no padding, the full output) through `conv_transpose1d` where
    `prefers_matmul`: x [B, C_in, T] -> [B, C_out, (T - 1) * stride + K]."""

    def forward(self, x: Tensor, output_size: list[int] | None = None) -> Tensor:
        if output_size is None and prefers_matmul(self, x):
            return conv_transpose1d(x, self.weight, self.bias, self.stride[0])
        return super().forward(x, output_size)

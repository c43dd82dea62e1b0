"""Int8 weights for the big matrix products: `Int8Linear`, one scale per output channel, and
the convolutions that take the matrix-product path on it (`Int8Conv1d`, `Int8ConvTranspose1d`).

Calls of a few steps (streaming) run torch's weight-only int8 CPU kernel on activations
rounded to bfloat16: weights stream from memory at a quarter of the bytes, and memory is
what batch-1 streaming waits on. Longer calls (offline) multiply by the dequantized weight
in float32, where the int8 kernel is slower. Not exact: tests/kernels/test_int8.py states
the tolerances. `moshi.quantize` puts it into Mimi and the LM.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import conv as fast

# Up to this many rows (batch x steps) per call, the int8 kernel beats float32 at 2 threads.
INT8_KERNEL_MAX_ROWS = 16
# torch's int8 kernel gives wrong results, or crashes, unless the input width is a multiple
# of this (seen with torch 2.13 on x86-64: widths 8, 24, 88... fail).
INT8_KERNEL_WIDTH_MULTIPLE = 16


class Int8Linear(nn.Module):
    """x [..., K] -> x @ weight.T [..., N], with weight [N, K] stored as int8 * scales [N]."""

    weight: Tensor  # [N, K] int8
    scales: Tensor  # [N] bfloat16

    def __init__(self, weight: Tensor):
        super().__init__()
        w = weight.detach().float().contiguous()
        scales = w.abs().amax(dim=1).clamp(min=1e-12) / 127  # [N]
        self.register_buffer("weight", torch.round(w / scales[:, None]).to(torch.int8))
        self.register_buffer("scales", scales.to(torch.bfloat16))

    def forward(self, x: Tensor) -> Tensor:
        rows = x.reshape(-1, x.shape[-1])  # [M, K]
        if (
            x.device.type == "cpu"
            and rows.shape[0] <= INT8_KERNEL_MAX_ROWS
            and rows.shape[1] % INT8_KERNEL_WIDTH_MULTIPLE == 0
        ):
            rows = rows.to(torch.bfloat16).contiguous()
            y = torch.ops.aten._weight_int8pack_mm(rows, self.weight, self.scales)
        else:
            y = F.linear(rows, self.weight.to(x.dtype) * self.scales[:, None].to(x.dtype))
        return y.to(x.dtype).view(*x.shape[:-1], -1)


class Int8Conv1d(fast.Conv1d):
    """`base` (its float weight and bias kept, shared) as one matrix product on an int8
    copy of its weight [C_out, C_in * K] (or another `linear`'s, e.g. bfloat16). Groups 1 only."""

    def __init__(self, base: nn.Conv1d, linear: type[nn.Module] = Int8Linear):
        if base.groups != 1:
            raise ValueError(f"Int8Conv1d needs groups 1, got {base.groups}")
        super().__init__(
            base.in_channels, base.out_channels, base.kernel_size[0], base.stride[0],
            dilation=base.dilation[0], bias=base.bias is not None, device="meta",
        )  # fmt: skip
        self.weight, self.bias = base.weight, base.bias
        self.matmul = linear(base.weight.view(base.out_channels, -1))

    def forward(self, x: Tensor) -> Tensor:
        return fast.conv1d(x, self.weight, self.bias, self.stride[0], self.dilation[0], self.matmul)


class Int8ConvTranspose1d(fast.ConvTranspose1d):
    """`base` (its float weight and bias kept, shared) as one matrix product on an int8
    copy of its weight, transposed to [C_out * K, C_in] (or another `linear`'s). Groups 1 only."""

    def __init__(self, base: nn.ConvTranspose1d, linear: type[nn.Module] = Int8Linear):
        if base.groups != 1:
            raise ValueError(f"Int8ConvTranspose1d needs groups 1, got {base.groups}")
        super().__init__(
            base.in_channels, base.out_channels, base.kernel_size[0], base.stride[0],
            bias=base.bias is not None, device="meta",
        )  # fmt: skip
        self.weight, self.bias = base.weight, base.bias
        self.matmul = linear(base.weight.view(base.in_channels, -1).T)

    def forward(self, x: Tensor, output_size: list[int] | None = None) -> Tensor:
        assert output_size is None, "the full transposed conv only"
        return fast.conv_transpose1d(x, self.weight, self.bias, self.stride[0], self.matmul)

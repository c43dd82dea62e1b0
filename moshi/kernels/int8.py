"""Opt-in and approximate: int8 weights, for faster CPU streaming.

    from moshi.kernels import int8
    int8.apply(mimi)      # Mimi, in place
    int8.apply_lm(lm)     # the LM, in place

Every matrix product on a big weight gets an int8 copy of it, one scale per output channel:
the linear layers of both transformers (attention projections, feed-forward) and the
SEANet / resampling convolutions that take the matmul path (moshi.kernels.conv). Calls of
a few steps (streaming) run torch's weight-only int8 CPU kernel on activations rounded to
bfloat16: weights stream from memory at a quarter of the bytes, and memory is what
batch-1 streaming waits on. Longer calls (offline) multiply by the dequantized weight in
float32, where the int8 kernel is slower. Not exact: tests/kernels/test_int8.py states the
tolerances. The float32 weights stay (the streaming states take their device and dtype).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..codec.conv import CausalConv1d, CausalConvTranspose1d
from ..lm.depformer import PerStepAttention
from ..nn.attention import Attention
from . import conv as fast

if TYPE_CHECKING:
    from ..codec.model import Mimi
    from ..lm.model import LMModel

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


def quantize_linears(root: nn.Module) -> None:
    """Give every bias-free nn.Linear under `root`, and every attention input projection,
    int8 weights (in place). The depformer's attention (weights per codebook step, stacked)
    gets one int8 projection per weight set."""
    for module in list(root.modules()):
        if isinstance(module, Attention):
            module.in_proj = Int8Linear(module.in_proj_weight)
        if isinstance(module, PerStepAttention):
            module.in_projs = nn.ModuleList(Int8Linear(w) for w in module.in_proj_weight.chunk(module.sets))
            module.out_projs = nn.ModuleList(Int8Linear(w) for w in module.out_proj.weight.chunk(module.sets))
            continue  # its stacked out_proj is sliced per step, not called
        for name, child in module.named_children():
            if type(child) is nn.Linear and child.bias is None:
                setattr(module, name, Int8Linear(child.weight))


def quantize_convs(root: nn.Module) -> None:
    """Give the causal convs under `root` that take the matmul path int8 weights (in place)."""
    for module in root.modules():
        if isinstance(module, CausalConv1d) and fast.has_matmul_shape(module.conv):
            w = module.conv.weight  # [C_out, C_in, K]
            module.matmul = Int8Linear(w.view(w.shape[0], -1))
        elif isinstance(module, CausalConvTranspose1d) and fast.has_matmul_shape(module.convtr):
            w = module.convtr.weight  # [C_in, C_out, K]
            module.matmul = Int8Linear(w.view(w.shape[0], -1).T)


def apply_lm(lm: LMModel) -> LMModel:
    """The LM with int8 weights in every linear layer (in place); returns it. Embeddings
    (row lookups, not matrix products) stay as they are."""
    quantize_linears(lm)
    return lm


def apply(mimi: Mimi) -> Mimi:
    """Mimi with int8 weights in its transformers and big convs (in place); returns it."""
    quantize_linears(mimi.encoder_transformer)
    quantize_linears(mimi.decoder_transformer)
    quantize_convs(mimi)
    return mimi

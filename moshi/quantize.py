"""Opt-in and approximate: int8 weights, for faster CPU streaming (a model transform).

    from moshi import quantize
    quantize.apply(mimi)      # Mimi, in place
    quantize.apply_lm(lm)     # the LM, in place

Every matrix product on a big weight gets an int8 copy of it (`moshi.kernels.int8.Int8Linear`,
one scale per output channel): the linear layers of both transformers (attention
projections, feed-forward) and the SEANet / resampling convolutions that take the matmul
path (moshi.kernels.conv). Not exact: tests/kernels/test_int8.py states the tolerances.
The float32 weights stay (the streaming states take their device and dtype).
"""

from __future__ import annotations

from torch import nn

from .codec import Mimi
from .codec.conv import CausalConv1d, CausalConvTranspose1d
from .kernels import conv as fast
from .kernels.int8 import Int8Linear
from .lm import LMModel
from .lm.depformer import PerStepAttention
from .nn.attention import Attention


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

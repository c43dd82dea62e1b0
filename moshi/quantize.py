"""Opt-in and approximate: int8 weights, for faster CPU streaming (a model transform).

    from moshi import quantize
    quantize.apply(mimi)      # Mimi, in place
    quantize.apply_lm(lm)     # the LM, in place

Every matrix product on a big weight gets an int8 copy of it (`moshi.kernels.int8`, one
scale per output channel), by swapping the module that computes it: the linear layers of
both transformers (attention projections, feed-forward) and the SEANet / resampling
convolutions that take the matmul path (moshi.kernels.conv). Not exact:
tests/kernels/test_int8.py states the tolerances. The float32 weights stay (the streaming
states take their device and dtype).
"""

from __future__ import annotations

from torch import Tensor, nn

from .codec import Mimi
from .kernels import conv as fast
from .kernels.int8 import Int8Conv1d, Int8ConvTranspose1d, Int8Linear
from .lm import LMModel
from .lm.depformer import PerStepAttention
from .nn.linear import HostRows, linear_of


def quantize_linears(root: nn.Module) -> None:
    """Swap every bias-free nn.Linear under `root`, and every attention projection (the
    depformer's: one per weight set), for an int8 one (in place)."""
    for module in list(root.modules()):
        for name, child in list(module.named_children()):
            plain = type(child) is nn.Linear and child.bias is None
            # PerStepAttention's stacked out_proj is sliced per set (its `out_projs`), not called.
            if type(child) is HostRows or (plain and not isinstance(module, PerStepAttention)):
                weight = linear_of(child)
                assert isinstance(weight, Tensor)
                setattr(module, name, Int8Linear(weight))


def quantize_convs(root: nn.Module) -> None:
    """Swap the convs under `root` that take the matmul path for int8 ones (in place)."""
    for module in list(root.modules()):
        for name, child in list(module.named_children()):
            if type(child) is fast.Conv1d and fast.has_matmul_shape(child):
                setattr(module, name, Int8Conv1d(child))
            elif type(child) is fast.ConvTranspose1d and fast.has_matmul_shape(child):
                setattr(module, name, Int8ConvTranspose1d(child))


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

"""Opt-in and approximate: int8 or bfloat16 weights, for faster CPU streaming (a model transform).

    from moshi import quantize
    quantize.apply(mimi)                  # Mimi, in place (int8)
    quantize.apply_lm(lm, "bfloat16")     # the LM, in place (bfloat16)

Every matrix product on a big weight gets an int8 copy of it (`moshi.kernels.int8`, one
scale per output channel) or a bfloat16 one (`moshi.kernels.bf16`), by swapping the module
that computes it: the linear layers of both transformers (attention projections,
feed-forward) and the SEANet / resampling convolutions that take the matmul path
(moshi.kernels.conv). Everything else (norms, attention, the KV cache, Mimi's codebooks)
stays float32. The float32 weights of the convolutions and of the attention input
projections stay too (the streaming states take their device and dtype); those of the
other linear layers are dropped with the modules they belong to.

Not exact: `agreement` measures how often the transformed model's greedy tokens (or
Mimi's codes) equal the float32 model's; tests/kernels/test_int8.py and
tests/test_quantize.py hold them to stated thresholds.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from .codec import Mimi
from .kernels import conv as fast
from .kernels.bf16 import Bf16Linear
from .kernels.int8 import Int8Conv1d, Int8ConvTranspose1d, Int8Linear
from .lm import LMModel
from .lm.depformer import PerStepAttention
from .nn.linear import HostRows, linear_of

LINEARS: dict[str, type[nn.Module]] = {"int8": Int8Linear, "bfloat16": Bf16Linear}


def _linear_class(dtype: str) -> type[nn.Module]:
    if dtype not in LINEARS:
        raise ValueError(f"dtype must be one of {sorted(LINEARS)}, got {dtype!r}")
    return LINEARS[dtype]


def quantize_linears(root: nn.Module, dtype: str = "int8") -> None:
    """Swap every bias-free nn.Linear under `root`, and every attention projection (the
    depformer's: one per weight set), for an int8 (or bfloat16) one (in place)."""
    make = _linear_class(dtype)
    for module in list(root.modules()):
        for name, child in list(module.named_children()):
            plain = type(child) is nn.Linear and child.bias is None
            # PerStepAttention's stacked out_proj is sliced per set (its `out_projs`), not called.
            if type(child) is HostRows or (plain and not isinstance(module, PerStepAttention)):
                weight = linear_of(child)
                assert isinstance(weight, Tensor)
                setattr(module, name, make(weight))


def quantize_convs(root: nn.Module, dtype: str = "int8") -> None:
    """Swap the convs under `root` that take the matmul path for int8 (or bfloat16) ones (in place)."""
    make = _linear_class(dtype)
    for module in list(root.modules()):
        for name, child in list(module.named_children()):
            if type(child) is fast.Conv1d and fast.has_matmul_shape(child):
                setattr(module, name, Int8Conv1d(child, make))
            elif type(child) is fast.ConvTranspose1d and fast.has_matmul_shape(child):
                setattr(module, name, Int8ConvTranspose1d(child, make))


def apply_lm(lm: LMModel, dtype: str = "int8") -> LMModel:
    """The LM with int8 (or bfloat16) weights in every linear layer (in place); returns it.
    Embeddings (row lookups, not matrix products) stay as they are."""
    if lm.dtype != torch.float32:
        raise ValueError(f"quantize.apply_lm needs a float32 LM, got {lm.dtype}")
    quantize_linears(lm, dtype)
    return lm


def apply(mimi: Mimi, dtype: str = "int8") -> Mimi:
    """Mimi with int8 (or bfloat16) weights in its transformers and big convs (in place); returns it."""
    quantize_linears(mimi.encoder_transformer, dtype)
    quantize_linears(mimi.decoder_transformer, dtype)
    quantize_convs(mimi, dtype)
    return mimi


@torch.no_grad()
def agreement(model: LMModel | Mimi, inputs: Tensor, dtype: str) -> float:
    """How often `model` with `dtype` weights agrees with `model` (unchanged, float32):

    - an LM: inputs = codes [B, 1 + n_q, T]; the fraction of teacher-forced greedy tokens
      (argmax of every text and audio logit the model defines) that are the same;
    - Mimi: inputs = pcm [B, 1, T] (whole frames); the fraction of codes that are the same,
      encoding one frame per call (streaming).
    """
    approx = copy.deepcopy(model)
    if isinstance(model, Mimi):
        assert isinstance(approx, Mimi)
        apply(approx, dtype)
        return (_stream_codes(approx, inputs) == _stream_codes(model, inputs)).float().mean().item()
    assert isinstance(approx, LMModel)
    apply_lm(approx, dtype)
    a, b = model(inputs), approx(inputs)
    same = [(b.text_logits.argmax(-1) == a.text_logits.argmax(-1))[a.text_mask]]
    if a.logits.shape[1]:
        same.append((b.logits.argmax(-1) == a.logits.argmax(-1))[a.mask])
    return torch.cat(same).float().mean().item()


def _stream_codes(mimi: Mimi, pcm: Tensor) -> Tensor:
    """pcm [B, 1, T], T whole frames -> codes [B, K, T / frame_size], one frame per call."""
    if pcm.dim() != 3 or pcm.shape[-1] % mimi.frame_size:
        raise ValueError(f"expected pcm [B, 1, k * {mimi.frame_size}], got {list(pcm.shape)}")
    with mimi.streaming(pcm.shape[0]):
        return torch.cat([mimi.encode(f) for f in pcm.split(mimi.frame_size, dim=-1)], -1)

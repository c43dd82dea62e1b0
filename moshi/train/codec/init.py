"""A Mimi to train: from scratch (an initialisation that trains on small budgets) or from
weights.

From scratch: convolution and linear weights drawn from N(0, 1 / fan_in), biases zero, the
decoder's last conv scaled by 0.1, LayerScale at 0.01, codebooks unseeded (the first
training batch seeds them). PyTorch's default (uniform, a third of that variance) let the
decoder learn to ignore its input in a 4.7 M-parameter codec (shared/docs/training-notes.md §5).
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from ...checkpoint import read_state_dict
from ...codec import MIMI_NAME, Mimi, MimiConfig, load_mimi
from ...codec.conv import CausalConv1d
from ...codec.transformer import LayerScale
from ...hub import DEFAULT_REPO, resolve_file
from .widen import widen_decoder

LAST_LAYER_SCALE = 0.1
LAYER_SCALE_INIT = 0.01
DECODER_FIRST_CONV = "decoder.model.0.conv.conv.weight"  # its name in Kyutai's checkpoints


@torch.no_grad()
def init_from_scratch(mimi: Mimi) -> Mimi:
    for module in mimi.modules():
        if isinstance(module, (nn.Conv1d, nn.ConvTranspose1d, nn.Linear)):
            w = module.weight
            fan_in = w.shape[1] * math.prod(w.shape[2:])
            if isinstance(module, nn.ConvTranspose1d):  # weight [C_in, C_out / groups, K]
                fan_in = max(w.shape[0] // module.groups * w.shape[2] // module.stride[0], 1)
            nn.init.normal_(w, std=1 / math.sqrt(fan_in))
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, LayerScale):
            module.scale.fill_(LAYER_SCALE_INIT)
    for name, p in mimi.named_parameters():
        if p.dim() == 2 and "in_proj_weight" in name:  # attention's fused q, k, v
            nn.init.normal_(p, std=1 / math.sqrt(p.shape[1]))
    last = mimi.decoder.model[-1]
    assert isinstance(last, CausalConv1d)
    last.conv.weight.mul_(LAST_LAYER_SCALE)
    return mimi


def build_mimi(
    cfg: MimiConfig, weights: str | None, num_codebooks: int, device: torch.device | str = "cpu"
) -> Mimi:
    """The Mimi to train, in float32 on `device`, in training mode. With `decoder_n_filters`
    set, weights whose decoder is narrower are widened to it, computing the same (widen.py)."""
    if weights is not None:
        path = resolve_file(weights, DEFAULT_REPO, MIMI_NAME)
        width = cfg.decoder_filters if cfg.decoder_n_filters is None else _decoder_filters(path, cfg)
        source = cfg if width == cfg.decoder_filters else replace(cfg, decoder_n_filters=width)
        mimi = load_mimi(path, source, num_codebooks=num_codebooks, device=device)
        if source is not cfg:
            mimi = widen_decoder(mimi, cfg.decoder_filters)
    else:
        mimi = init_from_scratch(Mimi(cfg, num_codebooks=num_codebooks)).to(device)
    return mimi.train()


def _decoder_filters(weights: Path, cfg: MimiConfig) -> int:
    """The decoder n_filters of a local weights file, any format load_mimi reads: its first
    conv's outputs / 2^len(ratios) (the config's when the file has no such tensor: load_mimi
    then names what is wrong)."""
    first = read_state_dict(weights).get(DECODER_FIRST_CONV)
    return cfg.decoder_filters if first is None else first.shape[0] // 2 ** len(cfg.ratios)

"""Widen a trained Mimi's SEANet decoder without changing what it computes (Net2WiderNet,
Chen et al. 2016), so that a larger decoder starts from a trained one's output.

Each layer's channels grow from C to C' >= C: channel j < C stays, the others copy channels
drawn at random (a draw that depends only on C and C', so a layer's outputs and the next
layer's inputs agree). A conv's output rows are copied with their channels, and each input
channel's weights are split among its copies in random shares that sum to one, so the sum
over copies is the narrow conv's. The ELUs act per channel and the residual blocks add like
to like, so the wide decoder's output equals the narrow one's (up to float rounding). The
uneven shares make the copies' gradients differ, so training pulls them apart. The encoder,
quantizer and transformers are copied as they are: the codes of any audio are unchanged.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor, nn

from ...codec import Mimi


def _copies(narrow: int, wide: int, seed: int) -> Tensor:
    """[wide] the narrow channel each wide channel copies: 0..narrow-1, then random draws."""
    generator = torch.Generator().manual_seed(seed * 100_003 + narrow * 1_009 + wide)
    extra = torch.randint(0, narrow, (wide - narrow,), generator=generator)
    return torch.cat([torch.arange(narrow), extra])


def _shares(copies: Tensor, generator: torch.Generator) -> Tensor:
    """[wide] random positive shares, those of the copies of one channel summing to 1."""
    raw = torch.rand(len(copies), generator=generator, dtype=torch.float64) + 0.5
    total = torch.zeros(int(copies.max()) + 1, dtype=torch.float64).index_add_(0, copies, raw)
    return (raw / total[copies]).float()


def _convs(mimi: Mimi) -> list[nn.Conv1d | nn.ConvTranspose1d]:
    """The decoder's convolutions, in order."""
    return [m for m in mimi.decoder.modules() if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d))]


@torch.no_grad()
def widen_decoder(mimi: Mimi, decoder_n_filters: int, seed: int = 0) -> Mimi:
    """A copy of `mimi` whose decoder has `decoder_n_filters` (at least its own), computing the
    same pcm from the same codes; in `mimi`'s mode, on its device."""
    narrow = mimi.config.decoder_filters
    if decoder_n_filters < narrow:
        raise ValueError(
            f"decoder_n_filters must be at least the decoder's {narrow}, got {decoder_n_filters}"
        )
    device = next(mimi.parameters()).device
    wide = Mimi(replace(mimi.config, decoder_n_filters=decoder_n_filters), mimi.total_codebooks)
    wide.set_num_codebooks(mimi.num_codebooks)
    wide = wide.to(device).train(mimi.training)
    rest = {n: t for n, t in mimi.state_dict().items() if not n.startswith("decoder.")}
    missing, unexpected = wide.load_state_dict(rest, strict=False)
    assert not unexpected and all(n.startswith("decoder.") for n in missing), (missing, unexpected)
    generator = torch.Generator().manual_seed(seed)
    for old, new in zip(_convs(mimi), _convs(wide), strict=True):
        # Conv1d weights are [out, in, K], ConvTranspose1d's [in, out, K].
        out_dim, in_dim = (1, 0) if isinstance(old, nn.ConvTranspose1d) else (0, 1)
        w = old.weight
        copies = _copies(w.shape[in_dim], new.weight.shape[in_dim], seed).to(device)
        shape = [1, 1, 1]
        shape[in_dim] = -1
        w = w.index_select(in_dim, copies) * _shares(copies.cpu(), generator).to(w).view(shape)
        copies = _copies(w.shape[out_dim], new.weight.shape[out_dim], seed).to(device)
        w = w.index_select(out_dim, copies)
        if w.shape != new.weight.shape:
            raise AssertionError(f"widened {list(w.shape)}, expected {list(new.weight.shape)}")
        new.weight.copy_(w)
        if old.bias is not None and new.bias is not None:
            new.bias.copy_(old.bias.index_select(0, copies))
    return wide

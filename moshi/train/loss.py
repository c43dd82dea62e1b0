"""The multistream LM's training loss (moshi-finetune's): weighted cross-entropies.

Text: cross-entropy on the text stream, padding (`text_padding_id`) and end-of-padding
(`text_end_padding_id`) targets weighted by `text_padding_weight`. Audio: cross-entropy on
each of the model's own codebooks (the first `dep_q` audio streams), the first (semantic)
one weighted by `first_codebook_weight_multiplier`. Only where the model's validity masks
say a prediction exists (delays leave the edges undefined) and the target is defined
(>= 0: -1 marks "nothing here"). The user's streams are inputs only.

Each loss is a weighted mean, sum(w * ce) / sum(w); the total is text_loss_weight * text +
audio (ours: moshi-finetune's is text + audio, text_loss_weight 1; the logged `loss` stays
text + audio, comparable across weights). A global
batch split over microbatches or processes is normalized by the weights of the whole
batch (`LossWeights.total`), so the split changes nothing but rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..lm.config import LMConfig
from ..lm.model import LMOutput


@dataclass(frozen=True)
class LossOptions:
    text_padding_weight: float = 0.5
    first_codebook_weight_multiplier: float = 100.0
    text_loss_weight: float = 1.0  # ours: the text loss' share of the total against the audio's


@dataclass
class LossWeights:
    """Per-target weights of one batch: text [B, T], audio [B, dep_q, T] (0: no loss)."""

    text: Tensor
    audio: Tensor

    def sums(self) -> Tensor:
        """[5]: text, audio, semantic, acoustic weight sums and the count of weighted targets."""
        a = self.audio
        n = (self.text > 0).sum() + (a > 0).sum()
        return torch.stack([self.text.sum(), a.sum(), a[:, :1].sum(), a[:, 1:].sum(), n.to(a.dtype)])


def loss_weights(codes: Tensor, cfg: LMConfig, options: LossOptions) -> LossWeights:
    """codes [B, 1 + n_q, T] (-1: undefined) -> the weights of every target. Depends only on
    the codes and the model's delays (its validity masks), so it is known before the forward."""
    T = codes.shape[-1]
    if codes.dim() != 3 or codes.shape[1] != cfg.num_streams:
        raise ValueError(f"codes must have shape [B, {cfg.num_streams}, T], got {list(codes.shape)}")
    text = codes[:, 0]
    w_text = (text >= 0).float()
    padding = (text == cfg.text_padding_id) | (text == cfg.text_end_padding_id)
    w_text = torch.where(padding, w_text * options.text_padding_weight, w_text)
    audio = codes[:, 1 : 1 + cfg.dep_q]
    valid = audio >= 0
    for k, d in enumerate(cfg.delays[1 : 1 + cfg.dep_q]):  # as LMModel.forward's mask
        if d:
            valid[:, k, T - d :] = False
    w_audio = valid.float()
    if cfg.dep_q:
        w_audio[:, 0] *= options.first_codebook_weight_multiplier
    return LossWeights(w_text, w_audio)


@dataclass
class LossParts:
    """Weighted sums of cross-entropies (not yet divided), each a scalar."""

    text: Tensor
    semantic: Tensor
    acoustic: Tensor


def loss_parts(out: LMOutput, codes: Tensor, weights: LossWeights) -> LossParts:
    """Weighted sums of the cross-entropies of `out` (from `LMModel.forward(codes)`)."""
    dep_q = out.logits.shape[1]
    if out.mask.shape != weights.audio.shape:
        raise ValueError(
            f"the model's masks {list(out.mask.shape)} do not match the loss weights "
            f"{list(weights.audio.shape)}"
        )
    w_audio = weights.audio.masked_fill(~out.mask, 0.0)
    text = _weighted_ce(out.text_logits[:, 0], codes[:, 0], weights.text)
    if dep_q == 0:
        zero = text.new_zeros(())
        return LossParts(text, zero, zero)
    audio = codes[:, 1 : 1 + dep_q]
    semantic = _weighted_ce(out.logits[:, :1], audio[:, :1], w_audio[:, :1])
    acoustic = _weighted_ce(out.logits[:, 1:], audio[:, 1:], w_audio[:, 1:])
    return LossParts(text, semantic, acoustic)


def _weighted_ce(logits: Tensor, targets: Tensor, weights: Tensor) -> Tensor:
    """sum(weights * CE): logits [..., V], targets and weights [...] (targets < 0 weigh 0)."""
    ce = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1).clamp(min=0), reduction="none"
    )
    return (ce * weights.reshape(-1)).sum()


def total_loss(
    parts: LossParts, text_weight: Tensor | float, audio_weight: Tensor | float, text_loss_weight: float = 1.0
) -> Tensor:
    """text_loss_weight * text / sum(text weights) + audio / sum(audio weights), the sums over
    the global batch (an empty stream adds nothing)."""
    text = text_loss_weight * parts.text / _positive(text_weight)
    return text + (parts.semantic + parts.acoustic) / _positive(audio_weight)


def _positive(w: Tensor | float) -> Tensor | float:
    return w.clamp(min=1e-12) if isinstance(w, Tensor) else max(w, 1e-12)

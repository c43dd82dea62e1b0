"""The multistream LM's training loss (moshi-finetune's): weighted cross-entropies.

Text: cross-entropy on the text stream, padding (`text_padding_id`) and end-of-padding
(`text_end_padding_id`) targets weighted by `text_padding_weight`. Audio: cross-entropy on
each of the model's own codebooks (the first `dep_q` audio streams), the first (semantic)
one weighted by `first_codebook_weight_multiplier`. Only where the model's validity masks
say a prediction exists (delays leave the edges undefined) and the target is defined
(>= 0: -1 marks "nothing here"). The user's streams are inputs only.

Each loss is a weighted mean, sum(w * ce) / sum(w); the total is text_loss_weight * text +
audio (ours: moshi-finetune's is text + audio, text_loss_weight 1; the logged `loss` stays
text + audio, comparable across weights).

Replies (ours): where the text stream marks turns (`turn_ids`: a dialogue model that writes
down the user's words too, text_stream.py), Moshi's words, from its turn marker to the
user's, are its replies. Their tokens, padding and markers aside, are a handful among the
frames, and they are what a question is answered with: `reply_weight` multiplies their weight
in the training total's text term, and the reply loss and accuracy (argmax, teacher-forced)
are reported on their own, with the share of replies whose every token the argmax predicts:
the replies greedy text would write given the question's words. The logged text loss keeps
every weight at 1.

A global batch split over microbatches or processes is normalized by the weights of the
whole batch (`LossWeights.sums`), so the split changes nothing but rounding.
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
    reply_weight: float = 1.0  # ours: a reply token's weight in the total's text term, x the others'
    turn_ids: tuple[int, int] | None = None  # ours: (Moshi's, the user's) turn markers, if the text has them


@dataclass
class LossWeights:
    """Per-target weights of one batch: text [B, T], audio [B, dep_q, T] (0: no loss), and
    reply [B, T] int64 (k > 0 on the tokens of a row's k-th reply, see the module's docstring)."""

    text: Tensor
    audio: Tensor
    reply: Tensor

    def sums(self) -> Tensor:
        """[7]: text, audio, semantic, acoustic weight sums, the count of weighted targets,
        that of reply tokens and that of replies."""
        a = self.audio
        n = (self.text > 0).sum() + (a > 0).sum()
        replies = (per_reply(self.reply, torch.zeros_like(self.text)) >= 0).sum()
        counts = [n, (self.reply > 0).sum(), replies]
        return torch.stack(
            [self.text.sum(), a.sum(), a[:, :1].sum(), a[:, 1:].sum(), *(c.to(a.dtype) for c in counts)]
        )


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
    reply = torch.zeros_like(text)
    if options.turn_ids is not None:
        reply = reply_tokens(text, *options.turn_ids) * ((text >= 0) & ~padding)
    audio = codes[:, 1 : 1 + cfg.dep_q]
    valid = audio >= 0
    for k, d in enumerate(cfg.delays[1 : 1 + cfg.dep_q]):  # as LMModel.forward's mask
        if d:
            valid[:, k, T - d :] = False
    w_audio = valid.float()
    if cfg.dep_q:
        w_audio[:, 0] *= options.first_codebook_weight_multiplier
    return LossWeights(w_text, w_audio, reply)


def reply_tokens(text: Tensor, moshi_id: int, user_id: int) -> Tensor:
    """text [B, T] -> int64 [B, T]: k on the frames after the row's k-th turn marker of Moshi
    (`moshi_id`) and before the user's next (`user_id`), 0 elsewhere (the markers, the user's
    turns, and before a crop's first marker, where whose turn it is is unknown)."""
    marker = (text == moshi_id).long() - (text == user_id).long()  # 1, -1 or 0
    t = torch.arange(text.shape[-1], device=text.device).expand_as(text)
    last = torch.where(marker != 0, t, -1).cummax(dim=-1).values  # the latest marker's frame
    side = marker.gather(-1, last.clamp(min=0)).masked_fill(last < 0, 0)
    return (text == moshi_id).long().cumsum(-1) * ((side == 1) & (marker == 0))


def per_reply(reply: Tensor, values: Tensor) -> Tensor:
    """reply [B, T] (LossWeights.reply), values [B, T] -> the sum of `values` over each reply
    of each row, flat; -1 for the ids no token carries."""
    B, T = reply.shape
    key = (torch.arange(B, device=reply.device)[:, None] * (T + 1) + reply)[reply > 0]
    total = torch.zeros(B * (T + 1), device=reply.device, dtype=values.dtype)
    total.index_add_(0, key, values[reply > 0])
    present = torch.zeros(B * (T + 1), device=reply.device, dtype=torch.bool)
    present[key] = True
    return total.masked_fill(~present, -1)


@dataclass
class LossParts:
    """Weighted sums of cross-entropies (not yet divided), each a scalar; `reply`: the reply
    tokens' cross-entropies summed, `reply_correct`: how many of them the argmax predicts,
    `replies_correct`: how many replies it predicts every token of."""

    text: Tensor
    semantic: Tensor
    acoustic: Tensor
    reply: Tensor
    reply_correct: Tensor
    replies_correct: Tensor

    def stacked(self) -> Tensor:
        """[6]: the fields in order (detached, to be summed)."""
        fields = [
            self.text,
            self.semantic,
            self.acoustic,
            self.reply,
            self.reply_correct,
            self.replies_correct,
        ]
        return torch.stack(fields).detach()


def loss_parts(out: LMOutput, codes: Tensor, weights: LossWeights) -> LossParts:
    """Weighted sums of the cross-entropies of `out` (from `LMModel.forward(codes)`)."""
    dep_q = out.logits.shape[1]
    if out.mask.shape != weights.audio.shape:
        raise ValueError(
            f"the model's masks {list(out.mask.shape)} do not match the loss weights "
            f"{list(weights.audio.shape)}"
        )
    w_audio = weights.audio.masked_fill(~out.mask, 0.0)
    text_logits, text_targets = out.text_logits[:, 0], codes[:, 0]
    ce_text = _ce(text_logits, text_targets)
    text = (ce_text * weights.text.reshape(-1)).sum()
    reply = (weights.reply > 0).reshape(-1).float()
    misses = (text_logits.argmax(-1) != text_targets).float()  # [B, T]
    reply_ce, reply_correct = (ce_text * reply).sum(), ((1 - misses.reshape(-1)) * reply).sum()
    replies_correct = (per_reply(weights.reply, misses) == 0).sum().float()
    text_parts = (reply_ce, reply_correct, replies_correct)
    if dep_q == 0:
        zero = text.new_zeros(())
        return LossParts(text, zero, zero, *text_parts)
    audio = codes[:, 1 : 1 + dep_q]
    semantic = (_ce(out.logits[:, :1], audio[:, :1]) * w_audio[:, :1].reshape(-1)).sum()
    acoustic = (_ce(out.logits[:, 1:], audio[:, 1:]) * w_audio[:, 1:].reshape(-1)).sum()
    return LossParts(text, semantic, acoustic, *text_parts)


def _ce(logits: Tensor, targets: Tensor) -> Tensor:
    """logits [..., V], targets [...] -> CE of each target, flat (a target < 0: any number,
    its weight is 0)."""
    flat = logits.reshape(-1, logits.shape[-1]).float()
    return F.cross_entropy(flat, targets.reshape(-1).clamp(min=0), reduction="none")


def total_loss(parts: LossParts, sums: Tensor, options: LossOptions) -> Tensor:
    """The training objective: text_loss_weight * text + audio, each the weighted mean over
    the global batch (`sums`: LossWeights.sums() summed over it), the reply tokens' weight in
    the text term multiplied by `reply_weight` (an empty stream adds nothing)."""
    extra = options.reply_weight - 1.0
    text = (parts.text + extra * parts.reply) / _positive(sums[0] + extra * sums[5])
    return options.text_loss_weight * text + (parts.semantic + parts.acoustic) / _positive(sums[1])


def _positive(w: Tensor) -> Tensor:
    return w.clamp(min=1e-12)

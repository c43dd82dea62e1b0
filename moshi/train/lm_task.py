"""One LM training step, and the state a resume needs: the `Task` that run.py drives.

A step reads `num_microbatches` global batches (batches.py), computes each target's loss
weight from the codes alone (loss.py), sums those weights over the whole step (all
microbatches, all processes) and divides each microbatch's weighted cross-entropies by
them: the gradient is that of the weighted mean over the global batch, however it is
split. Then gradient clipping (`max_norm`), AdamW and the one-cycle schedule. On a GPU the
forward runs under bfloat16 autocast; on a CPU in float32.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_state_dict,
)

from ..lm.config import LMConfig
from ..lm.layers import ZERO_TOKEN
from ..lm.model import LMModel
from .batches import Batches, CodesDataset
from .distributed import Dist, wrap_model
from .loss import LossOptions, LossWeights, loss_parts, loss_weights, total_loss
from .recompute import recompute_layers
from .release import Release


@dataclass(frozen=True)
class LMTrainOptions:
    max_steps: int
    lr: float = 1e-4
    weight_decay: float = 0.1
    pct_start: float = 0.05
    max_norm: float = 1.0
    batch_size: int = 1
    num_microbatches: int = 1
    seed: int = 0
    shuffle: bool = True
    loss: LossOptions = field(default_factory=LossOptions)
    gradient_checkpointing: bool = False
    fsdp: bool = False
    eval_batches: int = 8
    input_dropout: float = 0.0  # see `drop_inputs`
    own_audio: float = 0.0  # see `own_samples`
    own_audio_temp: float = 0.3

    def check(self, config: LMConfig) -> None:
        """Refuse options that would silently do nothing on this model's streams: `own_audio`
        needs audio the model generates (dep_q > 0), `input_dropout` audio it reads but never
        predicts (n_q > dep_q), a `reply_weight` other than 1 the turn markers of a dialogue
        model that writes down the user's words (`loss.turn_ids`)."""
        if self.loss.turn_ids is None and self.loss.reply_weight != 1.0:
            raise ValueError(
                f"config.reply_weight {self.loss.reply_weight} needs a dialogue model whose text marks the "
                "turns (dialogue_config.user_text_delay_seconds in its config)"
            )
        if self.own_audio and not config.dep_q:
            raise ValueError(f"config.own_audio {self.own_audio} needs a model that makes audio, got dep_q 0")
        if self.input_dropout and config.n_q == config.dep_q:
            raise ValueError(
                f"config.input_dropout {self.input_dropout} needs audio the model reads but never "
                f"predicts, got n_q {config.n_q} = dep_q {config.dep_q}"
            )


class LMTrainer:
    """`model`: an LMModel whose trainable parameters require grad (the rest frozen), on the
    process's device; `release`: how checkpoints write the model for inference."""

    def __init__(
        self,
        model: LMModel,
        train: CodesDataset,
        options: LMTrainOptions,
        d: Dist,
        release: Release | None = None,
        eval_data: CodesDataset | None = None,
    ):
        options.check(model.config)
        self.lm, self.options, self.d, self.release = model, options, d, release
        self.sharded = options.fsdp
        if options.gradient_checkpointing:
            recompute_layers(model.transformer.layers)
        # Conditions absent (their learnt padding) leave parts of the conditioners unused.
        units = list(model.transformer.layers)
        self.model = wrap_model(model, d, options.fsdp, units, some_unused=model.has_conditions)
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:
            raise ValueError("nothing to train: every parameter is frozen")
        self.optimizer = torch.optim.AdamW(
            params, lr=options.lr, betas=(0.9, 0.95), eps=1e-8, weight_decay=options.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.OneCycleLR(
            self.optimizer, max_lr=options.lr, total_steps=options.max_steps, pct_start=options.pct_start
        )
        args = (options.batch_size, d.rank, d.world_size, options.seed)
        self.batches = Batches(train, *args, shuffle=options.shuffle)
        self.eval_data = eval_data
        cuda = d.device.type == "cuda"
        self.autocast = torch.autocast("cuda", torch.bfloat16) if cuda else contextlib.nullcontext()

    # -- one step ------------------------------------------------------------------------------
    def train_step(self) -> dict[str, float]:
        o, cfg = self.options, self.lm.config
        self.model.train()
        micro = [self.batches.next().to(self.d.device) for _ in range(o.num_microbatches)]
        weights = [loss_weights(c, cfg, o.loss) for c in micro]
        sums = self.d.all_reduce(torch.stack([w.sums() for w in weights]).sum(0))  # [7], whole step
        parts = torch.zeros(6, device=self.d.device)
        for i, (codes, w) in enumerate(zip(micro, weights, strict=True)):
            last = i == len(micro) - 1
            with self._sync(last):
                p = self._forward(codes, w)
                loss = total_loss(p, sums, o.loss)
                loss = loss * self.d.world_size  # replicas' grads are averaged
                loss.backward()
            parts += p.stacked()
        grad_norm = torch.nn.utils.clip_grad_norm_(
            [p for p in self.model.parameters() if p.requires_grad], o.max_norm
        )
        lr = float(self.scheduler.get_last_lr()[0])
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        frames = torch.tensor([float(sum(c.shape[0] * c.shape[-1] for c in micro))], device=self.d.device)
        reduced = self.d.all_reduce(torch.cat([parts, frames]))
        metrics = _losses(reduced[:6], sums)
        metrics.update(
            lr=lr,
            grad_norm=float(_full(grad_norm)),
            frames=float(reduced[6]),
            tokens=float(reduced[6]) * cfg.num_streams,  # read: 1 + n_q per frame
            targets=float(sums[4]),  # with a loss weight
        )
        return metrics

    def _sync(self, last: bool) -> contextlib.AbstractContextManager[Any]:
        """DDP: average the gradients once per step, after the last microbatch."""
        no_sync = getattr(self.model, "no_sync", None)
        return contextlib.nullcontext() if last or no_sync is None else no_sync()

    def _forward(self, codes: Tensor, weights: LossWeights) -> Any:
        conditions = None
        if self.lm.has_conditions:  # conditions absent: their learnt padding
            conditions = self.lm.prepare_conditions([{}] * codes.shape[0])
        o, inputs, history = self.options, codes, None
        if self.model.training and o.input_dropout:
            inputs = drop_inputs(codes, self.lm.config.dep_q, o.input_dropout)
        if self.model.training and o.own_audio:
            with torch.no_grad(), self.autocast:
                first = self.model(inputs, conditions)
            history = own_samples(inputs, first.logits, first.mask, o.own_audio, o.own_audio_temp)
        with self.autocast:
            out = self.model(inputs, conditions, history=history)
        return loss_parts(out, codes, weights)

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Losses over `eval_batches` batches of the eval set (or the train set's first)."""
        o, cfg = self.options, self.lm.config
        data = self.eval_data if self.eval_data is not None else self.batches.dataset
        args = (o.batch_size, self.d.rank, self.d.world_size, o.seed)
        batches = Batches(data, *args, shuffle=False, set_epoch=self.eval_data is not None)
        n = min(o.eval_batches, max(1, len(data) // (o.batch_size * self.d.world_size)))
        self.model.eval()
        parts, sums = torch.zeros(6, device=self.d.device), torch.zeros(7, device=self.d.device)
        for _ in range(n):
            codes = batches.next().to(self.d.device)
            w = loss_weights(codes, cfg, o.loss)
            p = self._forward(codes, w)
            parts += p.stacked()
            sums += w.sums()
        return _losses(self.d.all_reduce(parts), self.d.all_reduce(sums))

    # -- state -----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        model, optim = get_state_dict(
            self.model, self.optimizer, options=StateDictOptions(ignore_frozen_params=True)
        )
        return {
            "model": model,
            "optimizer": optim,
            "scheduler": self.scheduler.state_dict(),
            "batches": self.batches.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        set_state_dict(
            self.model,
            self.optimizer,
            model_state_dict=state["model"],
            optim_state_dict=state["optimizer"],
            options=StateDictOptions(strict=False),
        )
        self.scheduler.load_state_dict(state["scheduler"])
        self.batches.load_state_dict(state["batches"])

    def save_release(self, folder: Path) -> None:
        if self.release is None:
            return
        full = get_model_state_dict(
            self.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
        )
        if self.d.is_main:
            self.release.write(folder, self.lm, full)  # type: ignore[arg-type]


def _losses(parts: Tensor, sums: Tensor) -> dict[str, float]:
    """Weighted means from the summed cross-entropies [6] and weight sums [7] (loss.py); the
    replies' figures only where there were replies."""
    text, sem, ac, reply, correct, replies_correct = (float(x) for x in parts)
    w_text, w_audio, w_sem, w_ac = (max(float(x), 1e-12) for x in sums[:4])
    out = {
        "loss": text / w_text + (sem + ac) / w_audio,
        "text_loss": text / w_text,
        "semantic_loss": sem / w_sem,
        "acoustic_loss": ac / w_ac,
    }
    n_tokens, n_replies = float(sums[5]), float(sums[6])
    if n_tokens > 0:
        out.update(
            reply_loss=reply / n_tokens,
            reply_accuracy=correct / n_tokens,
            reply_tokens=n_tokens,
            replies_exact=replies_correct / n_replies,
            replies=n_replies,
        )
    return out


def drop_inputs(codes: Tensor, dep_q: int, p: float) -> Tensor:
    """codes [B, 1 + n_q, T] -> a copy where each token of the audio streams the model reads
    but never predicts (after the text and the dep_q generated codebooks: all of them for
    speech-to-text, the user's in a dialogue) is the zero token with probability p: a
    regulariser, so that a small model trained on few voices cannot lean on one token."""
    out = codes.clone()
    read = out[:, 1 + dep_q :]
    read[torch.rand(read.shape, device=codes.device) < p] = ZERO_TOKEN
    return out


def own_samples(codes: Tensor, logits: Tensor, mask: Tensor, p: float, temp: float) -> Tensor:
    """codes [B, 1 + n_q, T]; logits [B, dep_q, T, card] and mask [B, dep_q, T] of a forward
    on them -> a copy of codes where each defined token of the streams the model generates
    (the dep_q after the text) is, with probability p, one drawn from the model's own
    prediction of it at temperature `temp` (0: the argmax). Read as the temporal
    transformer's history, these are the audio a free-running model hears itself say,
    approximated one step at a time: trained on its true audio alone, a dialogue model's
    text leans on audio it never makes (recipes/small/README.md, stop 32)."""
    B, K, T = codes.shape
    dep_q, card = logits.shape[1], logits.shape[-1]
    if logits.shape[:3] != (B, dep_q, T) or mask.shape != logits.shape[:3] or dep_q + 1 > K:
        raise ValueError(
            f"logits [B, dep_q, T, card] and mask [B, dep_q, T] must match codes {list(codes.shape)}, "
            f"got {list(logits.shape)} and {list(mask.shape)}"
        )
    if temp > 0:
        probs = torch.softmax(logits.float().reshape(-1, card) / temp, dim=-1)
        drawn = torch.multinomial(probs, 1).view(B, dep_q, T)
    else:
        drawn = logits.argmax(-1)
    out = codes.clone()
    own = out[:, 1 : 1 + dep_q]
    pick = (torch.rand(own.shape, device=codes.device) < p) & mask & (own >= 0)
    own[pick] = drawn[pick].to(own.dtype)
    return out


def _full(t: Tensor) -> Tensor:
    """A DTensor's full value (FSDP's gradient norm), a tensor as it is."""
    return t.full_tensor() if hasattr(t, "full_tensor") else t


def freeze_untrained(model: nn.Module) -> None:
    """Heads the loss never reaches (speech-to-text's voice-activity heads) stay frozen."""
    for name, p in model.named_parameters():
        if name.startswith("extra_heads."):
            p.requires_grad_(False)

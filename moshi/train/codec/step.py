"""One training step of Mimi and its multi-scale STFT discriminator.

The generator (Mimi, plus the distillation projection) minimises
    mel * multi-scale log-mel L1 + waveform * L1 + envelope * (1 - band-envelope correlation)
    + commitment * commitment
    + adversarial * hinge + feature_matching * relative L1 + distill * cosine,
the discriminator its hinge loss on real audio against the reconstructions (first, each
step, once `adversarial_start` steps have passed). Each has its own AdamW and cosine
schedule (a function of the step), gradients clipped to `max_norm`. `wrap` puts a module
under DDP (or leaves it).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...codec import Mimi
from ...codec.quantizer import Quantized, VQTraining
from .config import CodecTrainConfig
from .discriminator import MultiScaleSTFTDiscriminator
from .distill import SemanticDistiller
from .losses import EnvelopeLoss, MultiScaleMelLoss, discriminator_hinge, feature_matching, generator_hinge


class CodecGenerator(nn.Module):
    """What the generator's optimizer trains: Mimi and the distillation projection (or, with
    `decoder_only`, Mimi's decoder alone, fed the codes of its frozen encoder and quantizer).
    forward: pcm [B, 1, T] -> (reconstruction [B, 1, T], quantizer output, distill loss or None)."""

    def __init__(
        self,
        mimi: Mimi,
        num_codebooks: int,
        vq: VQTraining,
        distiller: SemanticDistiller | None,
        decoder_only: bool = False,
    ):
        super().__init__()
        if decoder_only and distiller is not None:
            raise ValueError("decoder_only trains no encoder: it takes no distillation teacher")
        self.mimi, self.distiller = mimi, distiller
        self.num_codebooks, self.vq, self.decoder_only = num_codebooks, vq, decoder_only
        if decoder_only:
            for frozen in mimi.encoding.values():
                frozen.requires_grad_(False)

    def forward(self, pcm: Tensor) -> tuple[Tensor, Quantized, Tensor | None]:
        if self.decoder_only:
            with torch.no_grad():  # the inference path: no EMA, dropout or unquantized items
                codes = self.mimi.quantizer.encode(self.mimi.encode_to_latent(pcm), self.num_codebooks)
                latent = self.mimi.decode_latent(codes)
            zero = pcm.new_zeros(())
            return self.mimi.synthesize(latent), Quantized(latent, codes, zero, latent), None
        out, q = self.mimi(pcm, self.num_codebooks, self.vq)
        return out, q, None if self.distiller is None else self.distiller(q.semantic, pcm)


def cosine_schedule(lr: float, final_lr: float, warmup: int, total: int) -> Callable[[int], float]:
    """The factor of `lr` at each step: linear warm-up, then cosine down to final_lr at `total`."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min((step - warmup) / max(total - warmup, 1), 1.0)
        return (final_lr + (lr - final_lr) * 0.5 * (1 + math.cos(math.pi * progress))) / lr

    return factor


class CodecTrainer:
    def __init__(
        self,
        generator: CodecGenerator,
        cfg: CodecTrainConfig,
        wrap: Callable[[nn.Module], nn.Module] = lambda m: m,
    ):
        self.cfg, self.generator = cfg, generator
        device = next(generator.parameters()).device
        self.model = wrap(generator)
        self.mel = MultiScaleMelLoss(generator.mimi.sample_rate).to(device)
        self.envelope = EnvelopeLoss(generator.mimi.sample_rate).to(device)
        o = cfg.optim
        self.lr_factor = cosine_schedule(o.lr, o.final_lr, o.warmup_steps, cfg.max_steps)
        self.opt = torch.optim.AdamW(
            generator.parameters(), o.lr, betas=(o.beta1, o.beta2), weight_decay=o.weight_decay
        )
        self.disc: MultiScaleSTFTDiscriminator | None = None
        if cfg.loss.uses_discriminator:
            self.disc = MultiScaleSTFTDiscriminator(cfg.discriminator).to(device)
            self.disc_model = wrap(self.disc)
            self.opt_d = torch.optim.AdamW(
                self.disc.parameters(), o.discriminator_lr or o.lr, betas=(o.beta1, o.beta2)
            )

    def step(self, pcm: Tensor, step: int) -> dict[str, float]:
        """One step on pcm [B, 1, T] (T whole codec frames): the losses and the learning rate."""
        self.model.train()
        w, o = self.cfg.loss, self.cfg.optim
        self._set_lr(self.opt, o.lr * self.lr_factor(step))
        out, q, distill = self.model(pcm)
        losses = {"mel": self.mel(out, pcm), "waveform": F.l1_loss(out, pcm), "commitment": q.commitment}
        if w.envelope > 0:
            losses["envelope"] = self.envelope(out, pcm)
        if distill is not None:
            losses["distill"] = distill
        logged: dict[str, float] = {}
        if self.disc is not None and step >= w.adversarial_start:
            self._set_lr(self.opt_d, (o.discriminator_lr or o.lr) * self.lr_factor(step))
            logged["discriminator"] = self._discriminator_step(pcm, out.detach())
            losses.update(self._adversarial_losses(pcm, out))
        weights = {
            "mel": w.mel,
            "waveform": w.waveform,
            "envelope": w.envelope,
            "commitment": w.commitment,
            "distill": w.distill,
            "adversarial": w.adversarial,
            "feature_matching": w.feature_matching,
        }
        total = torch.stack([weights[k] * v for k, v in losses.items()]).sum()
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        grad_norm = nn.utils.clip_grad_norm_(self.generator.parameters(), self.cfg.max_norm)
        self.opt.step()
        lr = self.opt.param_groups[0]["lr"]
        logged.update({k: float(v.detach()) for k, v in losses.items()})
        return {"loss": float(total.detach()), **logged, "grad_norm": float(grad_norm), "lr": lr}

    @staticmethod
    def _set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
        for group in opt.param_groups:
            group["lr"] = lr

    def _discriminator_step(self, pcm: Tensor, fake: Tensor) -> float:
        assert self.disc is not None
        self.disc.requires_grad_(True)
        B = pcm.shape[0]
        results = self.disc_model(torch.cat([pcm, fake]))
        logits = [r[0] for r in results]
        loss = discriminator_hinge([x[:B] for x in logits], [x[B:] for x in logits])
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.disc.parameters(), self.cfg.max_norm)
        self.opt_d.step()
        return float(loss.detach())

    def _adversarial_losses(self, pcm: Tensor, out: Tensor) -> dict[str, Tensor]:
        assert self.disc is not None
        self.disc.requires_grad_(False)  # the generator's gradients only (no DDP hooks either)
        with torch.no_grad():
            real = [features for _, features in self.disc(pcm)]
        fake = self.disc(out)
        return {
            "adversarial": generator_hinge([logits for logits, _ in fake]),
            "feature_matching": feature_matching(real, [features for _, features in fake]),
        }

    def state_dict(self) -> dict:
        """Everything an exact resume needs but the RNG and the step: weights, optimizers."""
        state = {"generator": self.generator.state_dict(), "opt": self.opt.state_dict()}
        if self.disc is not None:
            state |= {"disc": self.disc.state_dict(), "opt_d": self.opt_d.state_dict()}
        return state

    def load_state_dict(self, state: dict) -> None:
        self.generator.load_state_dict(state["generator"])
        self.opt.load_state_dict(state["opt"])
        if self.disc is not None:
            self.disc.load_state_dict(state["disc"])
            self.opt_d.load_state_dict(state["opt_d"])

"""Moshi's multistream LM: the weights and the math, no sampling, no session state.

At each 80 ms step the input is 1 + n_q tokens (text, then n_q audio streams), embedded
and summed. The temporal transformer (causal over steps, bounded context) turns the sum
into h; `text_linear` gives the next text token's logits; the depformer then gives the
frame's dep_q audio tokens one codebook at a time. Streams are delayed relative to each
other (acoustic codebooks one step after the semantic one); `forward` shows the
alignment on whole sequences, `Generator` (generator.py) runs it step by step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import torch
from torch import Tensor, nn

from ..nn.attention import SharedStep
from ..nn.linear import linear_of
from .conditioners import ConditionProvider, Conditions, ConditionValues, fuse
from .config import LMConfig
from .cross_attention import CrossAttention
from .depformer import Depformer, DepformerLayer, FrameCache, LayerWeights, SubStep, run_substep
from .layers import Embedding, RMSNorm, TransformerLayer


@dataclass
class LMOutput:
    """Training-style outputs, aligned with the (undelayed) input codes."""

    text_logits: Tensor  # [B, 1, T, text_out_card]
    logits: Tensor  # [B, dep_q, T, card]
    text_mask: Tensor  # [B, 1, T] bool, where text_logits are valid
    mask: Tensor  # [B, dep_q, T] bool, where logits are valid (0 elsewhere)


class TemporalTransformer(nn.Module):
    def __init__(self, cfg: LMConfig):
        super().__init__()
        self.layers = nn.ModuleList(
            TransformerLayer(
                cfg.dim, cfg.num_heads, cfg.hidden, cfg.context, cfg.max_period, cfg.cross_attention
            )
            for _ in range(cfg.num_layers)
        )

    def forward(self, x: Tensor, cross_source: Tensor | None = None) -> Tensor:
        shared = SharedStep()  # positions, RoPE and mask: computed by the first layer
        for layer in self.layers:
            x = layer(x, cross_source, shared)
        return x


class LMModel(nn.Module):
    """Parameter names follow Kyutai's `model.safetensors`."""

    def __init__(self, config: LMConfig):
        super().__init__()
        cfg = self.config = config
        self.emb = nn.ModuleList(Embedding(cfg.card + 1, cfg.dim) for _ in range(cfg.n_q))
        self.text_emb = Embedding(cfg.text_card + 1, cfg.dim, demux=cfg.demux_second_text_stream)
        self.transformer = TemporalTransformer(cfg)
        self.out_norm = RMSNorm(cfg.dim)
        self.text_linear = nn.Linear(cfg.dim, cfg.text_out_card, bias=False)
        if cfg.dep_q:
            d, rank = cfg.depformer_dim, cfg.depformer_low_rank_embeddings
            self.depformer_in = nn.ModuleList(  # one per weight set
                nn.Linear(cfg.dim, d, bias=False) for _ in range(cfg.depformer_weight_sets)
            )
            self.depformer_text_emb = Embedding(cfg.text_card + 1, d, rank, cfg.demux_second_text_stream)
            self.depformer_emb = nn.ModuleList(Embedding(cfg.card + 1, d, rank) for _ in range(cfg.dep_q - 1))
            self.depformer = Depformer(cfg)
            self.linears = nn.ModuleList(nn.Linear(d, cfg.card, bias=False) for _ in range(cfg.dep_q))
        if cfg.extra_heads_num_heads:
            self.extra_heads = nn.ModuleList(
                nn.Linear(cfg.dim, cfg.extra_heads_dim, bias=False) for _ in range(cfg.extra_heads_num_heads)
            )
        self.condition_provider: ConditionProvider | None = None
        if cfg.conditioners:
            self.condition_provider = ConditionProvider(cfg.conditioners, cfg.dim)

    @property
    def dtype(self) -> torch.dtype:
        """The activations' dtype (the embeddings', whatever transforms did to the linears)."""
        return self.text_emb.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.text_emb.weight.device

    def initial_tokens(self) -> Tensor:
        """[1 + n_q]: the token each stream starts from (text_card, then card)."""
        cfg = self.config
        return torch.tensor([cfg.text_card] + [cfg.card] * cfg.n_q, device=self.device)

    # -- conditions --------------------------------------------------------------------------
    @property
    def has_conditions(self) -> bool:
        return self.condition_provider is not None

    def prepare_conditions(self, values: Sequence[ConditionValues]) -> Conditions:
        """One mapping (conditioner name -> value) per batch item -> `Conditions` (float32):
        `sum` [B, 1, dim] and the cross-attention source [B, S, dim] (None when unused).
        Conditions missing from an item are absent (their learnt padding)."""
        if self.condition_provider is None or self.config.fuser is None:
            if any(values):
                raise ValueError("this model takes no conditions")
            return Conditions(None, None)
        outputs = self.condition_provider(values)
        return fuse(outputs, self.config.fuser)

    def cross_attentions(self) -> list[CrossAttention]:
        return [m for m in self.transformer.modules() if isinstance(m, CrossAttention)]

    def set_cross_source(self, source: Tensor, rows: Tensor | None = None) -> None:
        """Streaming: compute and keep the keys/values of the cross-attention source
        [N, S, dim] for the batch rows `rows` [N] (all when None)."""
        for attn in self.cross_attentions():
            attn.set_source(source, rows)

    # -- one step's pieces -------------------------------------------------------------------
    def embed(self, tokens: Tensor) -> Tensor:
        """tokens [B, 1 + n_q, T] (text first) -> summed embeddings [B, T, dim]."""
        # On a CPU the check is cheap, and saves masking 1 + n_q lookups (no device sync).
        plain = tokens.device.type == "cpu" and bool((tokens >= 0).all())
        text, *audio = tokens.unbind(1)
        pairs = zip(self.emb, audio, strict=True)
        emb, stream = next(pairs)
        x = emb(stream, plain)
        for emb, stream in pairs:
            x = x + emb(stream, plain)
        return x + self.text_emb(text, plain)

    def temporal(
        self, tokens: Tensor, sum_condition: Tensor | None = None, cross_source: Tensor | None = None
    ) -> Tensor:
        """tokens [B, 1 + n_q, T] -> h [B, T, dim] (after out_norm). Streams when the
        transformer is in streaming mode (see nn/streaming.py). sum_condition [B, 1, dim] is
        added to every step's input; cross_source [B, S, dim] feeds the cross-attention
        layers offline (while streaming they use the source given to `set_cross_source`)."""
        x = self.embed(tokens)
        if sum_condition is not None:
            x = x + sum_condition.to(x.dtype)
        return self.out_norm(self.transformer(x, cross_source))

    def depformer_substep(self, k: int) -> SubStep:
        """The weights sub-step (codebook) k of the depformer reads."""
        cfg = self.config
        w = cfg.depformer_weight_set(k)
        return SubStep(
            k=k,
            input=linear_of(self.depformer_in[w]),
            embedding=cast(Embedding, self.depformer_text_emb if k == 0 else self.depformer_emb[k - 1]),
            layers=tuple(LayerWeights.of(cast(DepformerLayer, layer), w) for layer in self.depformer.layers),
            output=linear_of(self.linears[k]),
            num_heads=cfg.depformer_num_heads,
        )

    def depformer_plan(self) -> list[SubStep]:
        """Every sub-step's weights, to look up once per streaming session (made again after
        anything replaces parameters or modules)."""
        return [self.depformer_substep(k) for k in range(self.config.dep_q)]

    def depformer_step(
        self,
        k: int,
        h: Tensor,
        previous_token: Tensor,
        cache: FrameCache,
        plan: Sequence[SubStep] | None = None,
        nonnegative: bool = False,
    ) -> Tensor:
        """Logits [N, card] of audio codebook k. h [N, dim]: the frame's temporal output;
        previous_token [N]: the frame's text token for k = 0, its audio token k - 1 after
        (`nonnegative`: the caller knows none is the zero token). `plan`: from
        `depformer_plan` (None: looked up now)."""
        sub = self.depformer_substep(k) if plan is None else plan[k]
        return run_substep(sub, h, previous_token, cache, nonnegative)

    def extra_heads_probs(self, h: Tensor) -> list[Tensor]:
        """Softmaxed extra heads (speech-to-text voice activity): h [..., dim] ->
        a list of [..., extra_heads_dim]."""
        return [torch.softmax(head(h).float(), dim=-1) for head in self.extra_heads]

    # -- whole sequences (teacher forcing) ---------------------------------------------------
    def forward(
        self, codes: Tensor, conditions: Conditions | None = None, history: Tensor | None = None
    ) -> LMOutput:
        """codes [B, 1 + n_q, T], not delayed (text, then audio streams) -> LMOutput.
        `conditions`: from `prepare_conditions`, for models that have conditioners.
        `history` [B, 1 + n_q, T]: what the temporal transformer reads of the past steps in
        place of `codes` (training on the model's own samples, train/lm_task.py).

        The streams are delayed, an initial-token step is prepended, and the model predicts
        step t from steps < t; the depformer reads the (delayed) targets of step t
        before each codebook. Logits are then undelayed to line up with `codes`.
        """
        cfg = self.config
        B, K, T = codes.shape
        if cfg.num_streams != K:
            raise ValueError(f"codes must have shape [B, {cfg.num_streams}, T], got {list(codes.shape)}")
        if history is not None and history.shape != codes.shape:
            raise ValueError(
                f"history must have the codes' shape {list(codes.shape)}, got {list(history.shape)}"
            )
        initial = self.initial_tokens()[None, :, None].expand(B, K, 1)
        delayed = delay_streams(codes, cfg.delays, initial)
        read = delayed if history is None else delay_streams(history, cfg.delays, initial)
        c = Conditions(None, None) if conditions is None else conditions
        h = self.temporal(torch.cat([initial, read[..., :-1]], dim=-1), c.sum, c.cross)  # [B, T, dim]
        text_logits = self.text_linear(h)[:, None]  # [B, 1, T, text_out_card]
        text_mask = torch.ones(B, 1, T, dtype=torch.bool, device=codes.device)
        if not cfg.dep_q:
            empty = h.new_zeros(B, 0, T, cfg.card)
            return LMOutput(text_logits, empty, text_mask, torch.zeros(B, 0, T, dtype=torch.bool))
        targets = delayed[:, : 1 + cfg.dep_q].transpose(1, 2).reshape(B * T, 1 + cfg.dep_q)
        flat_h = h.reshape(B * T, -1)
        cache, plan = FrameCache.empty(cfg, B * T, flat_h), self.depformer_plan()
        logits = torch.stack(
            [self.depformer_step(k, flat_h, targets[:, k], cache, plan) for k in range(cfg.dep_q)], dim=1
        )
        logits = logits.view(B, T, cfg.dep_q, cfg.card).transpose(1, 2)  # [B, dep_q, T, card]
        logits, mask = undelay_logits(logits, cfg.delays[1 : 1 + cfg.dep_q])
        return LMOutput(text_logits, logits, text_mask, mask)


def delay_streams(codes: Tensor, delays: tuple[int, ...], fill: Tensor) -> Tensor:
    """Shift stream k right by delays[k] steps: codes [B, K, T], fill [B, K, 1] -> [B, K, T]."""
    out = codes.clone()
    for k, d in enumerate(delays):
        if d:
            out[:, k, d:] = codes[:, k, :-d]
            out[:, k, :d] = fill[:, k]
    return out


def undelay_logits(logits: Tensor, delays: tuple[int, ...]) -> tuple[Tensor, Tensor]:
    """logits [B, K, T, V] of delayed streams -> (aligned logits with 0 where invalid,
    validity mask [B, K, T])."""
    B, K, T, _ = logits.shape
    out = torch.zeros_like(logits)
    mask = torch.zeros(B, K, T, dtype=torch.bool, device=logits.device)
    for k, d in enumerate(delays):
        out[:, k, : T - d] = logits[:, k, d:]
        mask[:, k, : T - d] = True
    return out, mask

"""The generation session: delays, the first-frame rule, sampling, batch slots.

`LMModel` holds weights; a `Generator` holds one streaming session over them: a small
cache of tokens per stream (to apply and undo the delays), per-item step counters,
sampling options and random generators. Each `step` takes the user's audio tokens for one
80 ms frame and returns Moshi's text token and audio tokens for one frame.

How the delays play out (Moshi: text and semantic streams delay 0, acoustic delay 1):
step t feeds the model the tokens it generated at step t - 1 plus the user's tokens, each
stream read `delay` steps late; wherever a stream has not started yet (t <= delay) the
model sees that stream's initial token instead. In particular the first step sees only
initial tokens, and returns nothing: its acoustic tokens belong to the frame of step 1.
From step 1 on, `step` returns the frame of step t - 1: the text and semantic tokens
sampled at step t - 1 with the acoustic tokens sampled at step t.

Text-to-speech uses a few more options. `conditions` (per item: a voice, a CFG level...)
feed the model's conditioners. `guidance` runs classifier-free guidance (moshi/lm/guidance.py:
each item takes a second, null batch row). `on_text` may replace the sampled text token of
each item before the depformer reads it (the TTS word feeder). `audio_delay_steps = d`
makes audio token k the zero token while step < d + delays[k] (audio lags text), and skips
the depformer while step < d.

The pieces: `SamplingOptions` (sampling.py) and `Guidance` are frozen values checked once;
a session (session.py) holds the delay ring (delays.py), the one execute mask, and each
item's options and random generators.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from ..kernels.cuda_graph import CUDAGraphed
from ..kernels.topk_head import TopKHead, weight_key
from ..nn import streaming as st
from ..nn.linear import linear
from .conditioners import ConditionValues
from .guidance import Guidance
from .layers import ZERO_TOKEN
from .model import LMModel
from .sampling import SamplingOptions, sample
from .session import Session

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .sampling import SamplingKeywords

NO_TOKEN = -1  # in `step` outputs: this item has no frame this step
TextHook = Callable[[Tensor], Tensor]  # sampled text tokens [B] -> the tokens to use [B]


class Generator:
    """Streaming generation over an `LMModel`.

        gen = Generator(model, temp=0.8, temp_text=0.7, top_k=250, top_k_text=25, seed=42)
        with gen.streaming(batch_size=2):
            for t in range(T):
                out = gen.step(user_codes[:, :, t : t + 1])  # [B, n_q - dep_q, 1]
                if out is not None:
                    text, audio = out[:, 0], out[:, 1:]       # [B, 1], [B, dep_q, 1]

    `options` (a `SamplingOptions`), or its fields as keywords (`seed` seeds text and
    audio), are every item's sampling options; temperature 0 is greedy. `set_options`
    changes one item's (a server slot). `reset_streaming(mask)` restarts items,
    `set_exec_mask(mask)` pauses them. For the conditioning, guidance and text-to-speech
    options, see the module docstring.
    """

    def __init__(
        self,
        model: LMModel,
        options: SamplingOptions | None = None,
        *,
        guidance: Guidance | None = None,
        audio_delay_steps: int = 0,
        on_text: TextHook | None = None,
        cuda_graphs: bool = True,
        **sampling: Unpack[SamplingKeywords],
    ):
        if not isinstance(audio_delay_steps, int) or audio_delay_steps < 0:
            raise ValueError(f"audio_delay_steps must be an integer >= 0, got {audio_delay_steps!r}")
        if options is not None and sampling:
            raise ValueError(f"give options or sampling keywords, not both (got {sorted(sampling)})")
        self.model = model
        self.options = options or SamplingOptions().replace(**sampling)
        self.guidance = guidance or Guidance()
        self.audio_delay_steps = audio_delay_steps
        self.on_text = on_text  # may be changed between sessions
        self._session: Session | None = None
        # On CUDA, the transformer pass and each depformer sub-step replay as CUDA graphs.
        self.cuda_graphs = cuda_graphs and model.device.type == "cuda"
        self._temporal = CUDAGraphed(self._temporal_step, self.cuda_graphs)
        self._text_logits = CUDAGraphed(self._text_logits_step, self.cuda_graphs)
        self._text_head: TopKHead | None = None  # see `_text_head_for`
        self._text_head_key: tuple | None = None
        self._depformer = [
            CUDAGraphed(functools.partial(self._depformer_step, k), self.cuda_graphs)
            for k in range(model.config.dep_q)
        ]

    # -- session lifetime ----------------------------------------------------------------------
    @contextmanager
    def streaming(
        self, batch_size: int, conditions: Sequence[ConditionValues] | None = None
    ) -> Iterator[None]:
        """A session of `batch_size` conversations. `conditions`: one mapping (conditioner
        name -> value) per item, for models with conditioners (None: all absent)."""
        if self.guidance.rows_per_item == 2 and not self.model.has_conditions:
            raise ValueError("classifier-free guidance (coef != 1) needs a model with conditioners")
        with st.streaming(self.model, batch_size * self.guidance.rows_per_item):
            self._session = Session.start(
                self.model, batch_size, self.options, self.guidance, self.cuda_graphs
            )
            try:
                if self.model.has_conditions:
                    self.set_conditions([{}] * batch_size if conditions is None else conditions)
                elif conditions is not None and any(conditions):
                    raise ValueError("this model takes no conditions")
                self._reset_graphs()
                yield
            finally:
                self._session = None

    @property
    def batch_size(self) -> int:
        return self._require().batch_size

    @torch.no_grad()
    def set_conditions(
        self, conditions: Sequence[ConditionValues], items: Sequence[int] | None = None
    ) -> None:
        """The conditions of the given items (all when None), one mapping each (name ->
        value; missing names are absent). Takes effect at the next step; kept across
        `reset_streaming`."""
        s = self._require()
        items = list(range(s.batch_size)) if items is None else list(items)
        if len(conditions) != len(items):
            raise ValueError(f"got {len(conditions)} conditions for {len(items)} items")
        rows = self.guidance.rows(items, s.batch_size)
        prepared = self.model.prepare_conditions(self.guidance.conditions(conditions))
        if prepared.sum is not None:
            total = prepared.sum.to(self.model.dtype)
            if s.cond_sum is None:
                s.cond_sum = total.new_zeros(s.executing.rows, *total.shape[1:])
            s.cond_sum[rows] = total
        if prepared.cross is not None:
            before = [a.source_length for a in self.model.cross_attentions()]
            full = len(rows) == s.executing.rows
            index = None if full and rows == sorted(rows) else torch.tensor(rows, device=self.model.device)
            self.model.set_cross_source(prepared.cross, index)
            if before != [a.source_length for a in self.model.cross_attentions()]:
                self._reset_graphs()  # the source moved: capture again

    def reset_streaming(self, mask: Tensor | None = None) -> None:
        """Restart all items, or those where `mask` [B] is True, as fresh conversations
        (their sampling options and conditions stay; their random generators are re-seeded)."""
        s = self._require()
        st.reset_streaming(self.model, s.executing.rows, s.executing.row_mask(mask))
        items = range(s.batch_size) if mask is None else [b for b, m in enumerate(mask.tolist()) if m]
        s.ring.reset(items)
        for b in items:
            s.seed(b)

    def set_exec_mask(self, mask: Tensor | None) -> None:
        """Items where `mask` [B] is False skip the next steps: no state changes, output -1."""
        self._require().executing.set(mask)

    def set_options(self, options: SamplingOptions, item: int | None = None) -> None:
        """Sampling options for one item (or all), taking effect at the next step; the
        item's random generators are re-seeded from the options' seeds."""
        s = self._require()
        for b in range(s.batch_size) if item is None else [item]:
            s.options[b] = options
            s.seed(b)

    def _reset_graphs(self) -> None:
        self._temporal.reset()
        self._text_logits.reset()
        for fn in self._depformer:
            fn.reset()

    def _require(self) -> Session:
        if self._session is None:
            raise RuntimeError("this needs a streaming session: use `with generator.streaming(batch_size):`")
        return self._session

    # -- one step ------------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, user_codes: Tensor) -> Tensor | None:
        """user_codes [B, n_q - dep_q, 1] (the user's audio tokens for this frame) ->
        [B, 1 + dep_q, 1]: text token then Moshi's audio tokens, delays undone; None while
        no item has a frame yet (the first step). Items still filling, or paused, get -1."""
        tokens, _ = self._run_step(user_codes, want_heads=False)
        return tokens

    @torch.no_grad()
    def step_with_extra_heads(self, user_codes: Tensor) -> tuple[Tensor | None, list[Tensor]]:
        """Like `step`, plus the softmaxed extra heads (speech-to-text voice activity) of this
        step's transformer output: a list of [B, 1, extra_heads_dim]."""
        return self._run_step(user_codes, want_heads=True)

    def _run_step(self, user_codes: Tensor, want_heads: bool) -> tuple[Tensor | None, list[Tensor]]:
        """On a CPU the step runs in inference mode: its thousand or so small operations skip
        autograd's bookkeeping (version counters, view tracking), about 5% of a step. What it
        returns is copied out, so that callers get ordinary tensors."""
        if self.model.device.type != "cpu":
            return self._step(user_codes, want_heads)
        with torch.inference_mode():
            tokens, heads = self._step(user_codes, want_heads)
        return (None if tokens is None else tokens.clone()), [h.clone() for h in heads]

    def _step(self, user_codes: Tensor, want_heads: bool) -> tuple[Tensor | None, list[Tensor]]:
        s = self._require()
        model, config = self.model, self.model.config
        self._check_user_codes(user_codes, s.batch_size)
        ring, mask, executing = s.ring, s.executing.tensor, s.executing.items

        # 1. The user's tokens enter the ring; read this step's input.
        ring.write_ahead(1 + config.dep_q, user_codes, mask)
        inputs = ring.read()  # [B, 1 + n_q, 1]

        # 2. Temporal transformer, text token, then the depformer's audio tokens.
        h = self._temporal(self.guidance.model_inputs(inputs))  # [R, dim]
        text = self._text_tokens(s, h)
        if self.on_text is not None:
            text = self.on_text(text)
            if text.shape != (s.batch_size,):
                raise ValueError(
                    f"on_text must return the [B={s.batch_size}] text tokens, got {list(text.shape)}"
                )
        generated = [text, *self._audio_tokens(s, h, text)]
        heads = (
            [p[:, None] for p in model.extra_heads_probs(h[: s.batch_size])]
            if want_heads and config.extra_heads_num_heads
            else []
        )

        # 3. Advance, keep what was sampled, and return the newest complete frame.
        ring.advance(mask, executing)
        ring.write_sampled(torch.stack(generated, dim=1)[..., None], mask)  # [B, 1 + dep_q, 1]
        return ring.frame(1 + config.dep_q, executing, NO_TOKEN), heads

    def _audio_tokens(self, s: Session, h: Tensor, text: Tensor) -> list[Tensor]:
        """The dep_q audio tokens of this step, each [B]: h [R, dim], text [B]. Tokens of
        codebooks whose audio has not started (`audio_delay_steps`) are the zero token,
        chosen greedily so that they draw no random numbers."""
        config = self.model.config
        B, d, steps = s.batch_size, self.audio_delay_steps, s.ring.steps
        forced: list[list[bool]] | None = None
        if d and min(steps) < d + max(config.delays[1 : 1 + config.dep_q], default=0):
            if all(n < d for n, e in zip(steps, s.executing.items, strict=True) if e):
                return [text.new_full((B,), ZERO_TOKEN) for _ in range(config.dep_q)]
            forced = [[n < d + config.delays[1 + k] for k in range(config.dep_q)] for n in steps]
        temps, top_ks = [o.temp for o in s.options], [o.top_k for o in s.options]
        tokens: list[Tensor] = []
        previous = text
        for k in range(config.dep_q):
            rows = previous if self.guidance.rows_per_item == 1 else previous.repeat(2)
            logits = self.guidance.combine(self._depformer[k](h, rows))
            temps_k = (
                temps if forced is None else [0.0 if f[k] else t for f, t in zip(forced, temps, strict=True)]
            )
            previous = sample(logits, temps_k, top_ks, s.audio_rngs)
            tokens.append(previous)
        if forced is not None:
            mask = torch.tensor(forced, device=text.device)  # [B, dep_q]
            tokens = [torch.where(mask[:, k], ZERO_TOKEN, t) for k, t in enumerate(tokens)]
        return tokens

    def _text_tokens(self, s: Session, h: Tensor) -> Tensor:
        """The sampled text token of each item [B]; h [R, dim]. Where a `TopKHead` applies
        (CPU, float32) only the logits of a few candidate rows are computed: the same
        tokens, half the bytes read (moshi/kernels/topk_head.py)."""
        B, V = s.batch_size, self.model.config.text_card
        temps, top_ks = [o.temp_text for o in s.options], [o.top_k_text for o in s.options]
        if self.guidance.text_from_conditioned:  # the text logits are those of rows [:B]
            k = max(1 if t <= 0 else (k if 0 < k <= V else V) for t, k in zip(temps, top_ks, strict=True))
            head = self._text_head_for() if 4 * k < V else None
            if head is not None:
                logits, rows = head.candidates(h[:B], k)
                return rows[sample(logits, temps, top_ks, s.text_rngs)]
        logits = self._text_logits(h)  # [R, text_card]
        return sample(self.guidance.text_logits(logits, B), temps, top_ks, s.text_rngs)

    def _text_head_for(self) -> TopKHead | None:
        """The text head's TopKHead, made again when the weight changed; None where there
        is none (not a float32 CPU nn.Linear, a small vocabulary...)."""
        layer = self.model.text_linear
        if type(layer) is not nn.Linear:
            return None
        key = weight_key(layer.weight)
        if key != self._text_head_key:  # (a None head is remembered too)
            self._text_head, self._text_head_key = TopKHead.build(layer.weight), key
        return self._text_head

    def _temporal_step(self, inputs: Tensor) -> Tensor:
        """inputs [R, 1 + n_q, 1] -> h [R, dim]."""
        cond_sum = self._require().cond_sum
        return self.model.temporal(inputs, cond_sum)[:, 0]

    def _text_logits_step(self, h: Tensor) -> Tensor:
        """h [R, dim] -> text logits [R, text_card]."""
        return linear(self.model.text_linear, h)

    def _depformer_step(self, k: int, h: Tensor, previous_token: Tensor) -> Tensor:
        """Logits [R, card] of codebook k (the frame cache holds sub-steps < k)."""
        # Sampled audio tokens are never the zero token; a text token may be (TTS).
        s = self._require()
        return self.model.depformer_step(k, h, previous_token, s.frame, s.plan, nonnegative=k > 0)

    def _check_user_codes(self, codes: Tensor, batch_size: int) -> None:
        config = self.model.config
        expected = (batch_size, config.num_user_streams, 1)
        if not isinstance(codes, Tensor) or codes.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"user codes must be an int64 tensor of shape {list(expected)}")
        if tuple(codes.shape) != expected:
            raise ValueError(
                f"user codes must have shape [B={batch_size}, {config.num_user_streams}, 1], "
                f"got {list(codes.shape)}"
            )
        if codes.numel():
            low, high = (int(v) for v in torch.aminmax(codes))
            if low < 0 or high >= config.card:
                raise ValueError(f"user codes must be in [0, {config.card}), got values in [{low}, {high}]")

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
feed the model's conditioners. `cfg_coef != 1` runs classifier-free guidance: each item
takes two batch rows, the second (null) with every condition dropped, and the logits of
every audio codebook are null + (cond - null) * cfg_coef. The text logits are guided the
same way, except with `cfg_no_text` (what Kyutai's TTS does): then the null rows' text
input is zeroed and the text comes from the conditioned rows alone. `on_text` may
replace the sampled text token of each item before the depformer reads it (the TTS word
feeder). `audio_delay_steps = d` makes audio token k the zero token while
step < d + delays[k] (audio lags text), and skips the depformer while step < d.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..kernels.cuda_graph import CUDAGraphed
from ..kernels.topk_head import TopKHead, weight_key
from ..nn import streaming as st
from ..nn.linear import linear
from .conditioners import ConditionValues, drop_all
from .depformer import FrameCache, SubStep
from .layers import UNGENERATED_TOKEN, ZERO_TOKEN
from .model import LMModel
from .sampling import SamplingOptions, make_generator, sample

NO_TOKEN = -1  # in `step` outputs: this item has no frame this step
TextHook = Callable[[Tensor], Tensor]  # sampled text tokens [B] -> the tokens to use [B]


@dataclass
class _Session:
    batch_size: int
    cache: Tensor  # [B, 1 + n_q, max_delay + 2] tokens, written `delay` columns ahead
    offset: Tensor  # [B] int64 steps done per item (on the model's device)
    steps: list[int]  # the same, as Python ints (decides `None` without a device sync)
    executing: list[bool]  # the exec mask, as Python bools
    options: list[SamplingOptions]
    text_rngs: list[torch.Generator]
    audio_rngs: list[torch.Generator]
    frame: FrameCache  # the depformer's attention cache, reused every step
    plan: list[SubStep]  # the depformer's weights per sub-step
    exec_mask: Tensor  # [R] bool, the mask CUDA graphs read (R = B rows, 2B with CFG)
    cond_sum: Tensor | None  # [R, 1, dim] summed conditions, added to every step's input


class Generator:
    """Streaming generation over an `LMModel`.

        gen = Generator(model, temp=0.8, temp_text=0.7, top_k=250, top_k_text=25, seed=42)
        with gen.streaming(batch_size=2):
            for t in range(T):
                out = gen.step(user_codes[:, :, t : t + 1])  # [B, n_q - dep_q, 1]
                if out is not None:
                    text, audio = out[:, 0], out[:, 1:]       # [B, 1], [B, dep_q, 1]

    Temperature 0 is greedy. `seed` seeds every item (text and audio); `set_options`
    changes one item's settings (a server slot). `reset_streaming(mask)` restarts items,
    `set_exec_mask(mask)` pauses them. For the conditioning, guidance and text-to-speech
    options, see the module docstring.
    """

    def __init__(
        self,
        model: LMModel,
        temp: float = 0.8,
        temp_text: float = 0.7,
        top_k: int = 250,
        top_k_text: int = 25,
        seed: int | None = None,
        cuda_graphs: bool = True,
        cfg_coef: float = 1.0,
        cfg_no_text: bool = False,
        audio_delay_steps: int = 0,
        on_text: TextHook | None = None,
    ):
        if not isinstance(cfg_coef, (int, float)) or not 0.0 <= cfg_coef <= 100.0:
            raise ValueError(f"cfg_coef must be a number in [0, 100], got {cfg_coef!r}")
        if not isinstance(audio_delay_steps, int) or audio_delay_steps < 0:
            raise ValueError(f"audio_delay_steps must be an integer >= 0, got {audio_delay_steps!r}")
        self.model = model
        self.options = SamplingOptions(temp, top_k, temp_text, top_k_text, seed, seed)
        self.cfg_coef, self.cfg_no_text = float(cfg_coef), cfg_no_text
        self.audio_delay_steps = audio_delay_steps
        self.on_text = on_text  # may be changed between sessions
        self._branches = 1 if self.cfg_coef == 1.0 else 2  # batch rows per item
        cfg = model.config
        self._delays = torch.tensor(cfg.delays, device=model.device)
        self._session: _Session | None = None
        # On CUDA, the transformer pass and each depformer sub-step replay as CUDA graphs.
        self.cuda_graphs = cuda_graphs and model.device.type == "cuda"
        self._temporal = CUDAGraphed(self._temporal_step, self.cuda_graphs)
        self._text_logits = CUDAGraphed(self._text_logits_step, self.cuda_graphs)
        self._text_head: TopKHead | None = None  # see `_text_head_for`
        self._text_head_key: tuple | None = None
        self._depformer = [
            CUDAGraphed(functools.partial(self._depformer_step, k), self.cuda_graphs)
            for k in range(cfg.dep_q)
        ]

    # -- session lifetime ----------------------------------------------------------------------
    @contextmanager
    def streaming(
        self, batch_size: int, conditions: Sequence[ConditionValues] | None = None
    ) -> Iterator[None]:
        """A session of `batch_size` conversations. `conditions`: one mapping (conditioner
        name -> value) per item, for models with conditioners (None: all absent)."""
        cfg, device = self.model.config, self.model.device
        rows = batch_size * self._branches
        if self._branches == 2 and not self.model.has_conditions:
            raise ValueError("classifier-free guidance (cfg_coef != 1) needs a model with conditioners")
        with st.streaming(self.model, rows):
            self._session = _Session(
                batch_size=batch_size,
                cache=torch.full(
                    (batch_size, cfg.num_streams, cfg.max_delay + 2), UNGENERATED_TOKEN, device=device
                ),
                offset=torch.zeros(batch_size, dtype=torch.long, device=device),
                steps=[0] * batch_size,
                executing=[True] * batch_size,
                options=[self.options] * batch_size,
                text_rngs=[make_generator(self.options.text_seed, device) for _ in range(batch_size)],
                audio_rngs=[make_generator(self.options.audio_seed, device) for _ in range(batch_size)],
                frame=FrameCache.empty(cfg, rows, torch.empty(0, dtype=self.model.dtype, device=device)),
                plan=self.model.depformer_plan(),
                exec_mask=torch.ones(rows, dtype=torch.bool, device=device),
                cond_sum=None,
            )
            try:
                if self.model.has_conditions:
                    self.set_conditions([{}] * batch_size if conditions is None else conditions)
                elif conditions is not None and any(conditions):
                    raise ValueError("this model takes no conditions")
                if self.cuda_graphs:  # graphs read the mask from a fixed address
                    st.set_exec_mask(self.model, rows, self._session.exec_mask)
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
        values = list(conditions)
        rows = items
        if self._branches == 2:  # the guidance branch: every condition dropped
            values += [drop_all(v) for v in conditions]
            rows = items + [b + s.batch_size for b in items]
        prepared = self.model.prepare_conditions(values)
        if prepared.sum is not None:
            total = prepared.sum.to(self.model.dtype)
            if s.cond_sum is None:
                s.cond_sum = total.new_zeros(s.batch_size * self._branches, *total.shape[1:])
            s.cond_sum[rows] = total
        if prepared.cross is not None:
            before = [a.source_length for a in self.model.cross_attentions()]
            full = len(rows) == s.batch_size * self._branches
            index = None if full and rows == sorted(rows) else torch.tensor(rows, device=s.cache.device)
            self.model.set_cross_source(prepared.cross, index)
            if before != [a.source_length for a in self.model.cross_attentions()]:
                self._reset_graphs()  # the source moved: capture again

    def reset_streaming(self, mask: Tensor | None = None) -> None:
        """Restart all items, or those where `mask` [B] is True, as fresh conversations
        (their sampling options and conditions stay; their random generators are re-seeded)."""
        s = self._require()
        st.reset_streaming(self.model, s.batch_size * self._branches, self._rows(mask))
        items = range(s.batch_size) if mask is None else [b for b, m in enumerate(mask.tolist()) if m]
        for b in items:
            s.cache[b] = UNGENERATED_TOKEN
            s.offset[b] = 0
            s.steps[b] = 0
            self._seed_item(s, b)

    def set_exec_mask(self, mask: Tensor | None) -> None:
        """Items where `mask` [B] is False skip the next steps: no state changes, output -1."""
        s = self._require()
        rows, row_mask = s.batch_size * self._branches, self._rows(mask)
        if self.cuda_graphs:
            st.set_exec_mask(self.model, rows, s.exec_mask)  # checks, keeps the address
            s.exec_mask.fill_(True) if row_mask is None else s.exec_mask.copy_(row_mask)
        else:
            st.set_exec_mask(self.model, rows, row_mask)
        s.executing = [True] * s.batch_size if mask is None else [bool(m) for m in mask.tolist()]

    def set_options(self, options: SamplingOptions, item: int | None = None) -> None:
        """Sampling options for one item (or all), taking effect at the next step; the
        item's random generators are re-seeded from the options' seeds."""
        s = self._require()
        for b in range(s.batch_size) if item is None else [item]:
            s.options[b] = options
            self._seed_item(s, b)

    def _seed_item(self, s: _Session, b: int) -> None:
        o = s.options[b]
        s.text_rngs[b] = make_generator(o.text_seed, s.cache.device)
        s.audio_rngs[b] = make_generator(o.audio_seed, s.cache.device)

    def _reset_graphs(self) -> None:
        self._temporal.reset()
        self._text_logits.reset()
        for fn in self._depformer:
            fn.reset()

    def _rows(self, mask: Tensor | None) -> Tensor | None:
        """An item mask [B] as a batch-row mask [R] (each item's rows)."""
        if mask is None or self._branches == 1:
            return mask
        if mask.shape != (self._require().batch_size,):
            raise ValueError(f"mask must have shape [B={self._require().batch_size}], got {list(mask.shape)}")
        return mask.repeat(self._branches)

    def _require(self) -> _Session:
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
        model, cfg = self.model, self.model.config
        self._check_user_codes(user_codes, s.batch_size)
        B, C = s.batch_size, s.cache.shape[-1]
        exec_mask = None if all(s.executing) else torch.tensor(s.executing, device=s.cache.device)

        # 1. The user's tokens enter the cache `delay` columns ahead of the read position.
        user = s.cache[:, 1 + cfg.dep_q :]  # a view: scatter writes into the cache
        cols = ((s.offset[:, None] + self._delays[None, 1 + cfg.dep_q :]) % C)[..., None]
        new = user_codes.to(s.cache.dtype)
        if exec_mask is not None:
            new = torch.where(exec_mask[:, None, None], new, user.gather(2, cols))
        user.scatter_(2, cols, new)

        # 2. Read this step's input; streams that have not started yet see their initial token.
        read = (s.offset % C)[:, None, None].expand(B, cfg.num_streams, 1)
        inputs = s.cache.gather(2, read)  # [B, 1 + n_q, 1]
        not_started = (s.offset[:, None] <= self._delays[None, :])[..., None]
        inputs = torch.where(not_started, model.initial_tokens()[None, :, None], inputs)

        # 3. Temporal transformer, text token, then the depformer's audio tokens.
        h = self._temporal(self._model_inputs(inputs))  # [R, dim]
        text = self._text_tokens(s, h)
        if self.on_text is not None:
            text = self.on_text(text)
            if text.shape != (B,):
                raise ValueError(f"on_text must return the [B={B}] text tokens, got {list(text.shape)}")
        generated = [text, *self._audio_tokens(s, h, text)]
        heads = (
            [p[:, None] for p in model.extra_heads_probs(h[:B])]
            if want_heads and cfg.extra_heads_num_heads
            else []
        )

        # 4. Advance, and write what was generated at the new position (already delayed).
        advance = 1 if exec_mask is None else exec_mask.long()
        s.offset.add_(advance)
        for b in range(B):
            s.steps[b] += s.executing[b]
        out_cols = (s.offset % C)[:, None, None].expand(B, 1 + cfg.dep_q, 1)
        new = torch.stack(generated, dim=1)[..., None]  # [B, 1 + dep_q, 1]
        model_streams = s.cache[:, : 1 + cfg.dep_q]
        if exec_mask is not None:
            new = torch.where(exec_mask[:, None, None], new, model_streams.gather(2, out_cols))
        model_streams.scatter_(2, out_cols, new)

        # 5. Undo the delays: the frame of step (offset - 1 - max_delay) is now complete.
        if all(n <= cfg.max_delay for n in s.steps):
            return None, heads
        cols = ((s.offset[:, None] - cfg.max_delay + self._delays[None, : 1 + cfg.dep_q]) % C)[..., None]
        frame_tokens = model_streams.gather(2, cols)  # [B, 1 + dep_q, 1]
        ready = torch.tensor(
            [n > cfg.max_delay and e for n, e in zip(s.steps, s.executing, strict=True)],
            device=s.cache.device,
        )
        return torch.where(ready[:, None, None], frame_tokens, NO_TOKEN), heads

    def _model_inputs(self, inputs: Tensor) -> Tensor:
        """inputs [B, 1 + n_q, 1] -> the model's batch rows [R, 1 + n_q, 1]: with guidance,
        the items again for the null branch (text zeroed with `cfg_no_text`)."""
        if self._branches == 1:
            return inputs
        null = inputs.clone()
        if self.cfg_no_text:
            null[:, 0] = ZERO_TOKEN
        return torch.cat([inputs, null])

    def _guide(self, logits: Tensor) -> Tensor:
        """logits [R, V] -> [B, V]: null + (cond - null) * cfg_coef with guidance."""
        if self._branches == 1:
            return logits
        cond, null = logits.chunk(2)
        return null + (cond - null) * self.cfg_coef

    def _audio_tokens(self, s: _Session, h: Tensor, text: Tensor) -> list[Tensor]:
        """The dep_q audio tokens of this step, each [B]: h [R, dim], text [B]. Tokens of
        codebooks whose audio has not started (`audio_delay_steps`) are the zero token,
        chosen greedily so that they draw no random numbers."""
        cfg = self.model.config
        B, d = s.batch_size, self.audio_delay_steps
        forced: list[list[bool]] | None = None
        if d and min(s.steps) < d + max(cfg.delays[1 : 1 + cfg.dep_q], default=0):
            if all(n < d for n, e in zip(s.steps, s.executing, strict=True) if e):
                return [text.new_full((B,), ZERO_TOKEN) for _ in range(cfg.dep_q)]
            forced = [[n < d + cfg.delays[1 + k] for k in range(cfg.dep_q)] for n in s.steps]
        temps, top_ks = [o.temp for o in s.options], [o.top_k for o in s.options]
        tokens: list[Tensor] = []
        previous = text
        for k in range(cfg.dep_q):
            logits = self._guide(
                self._depformer[k](h, previous if self._branches == 1 else previous.repeat(2))
            )
            temps_k = (
                temps if forced is None else [0.0 if f[k] else t for f, t in zip(forced, temps, strict=True)]
            )
            previous = sample(logits, temps_k, top_ks, s.audio_rngs)
            tokens.append(previous)
        if forced is not None:
            mask = torch.tensor(forced, device=text.device)  # [B, dep_q]
            tokens = [torch.where(mask[:, k], ZERO_TOKEN, t) for k, t in enumerate(tokens)]
        return tokens

    def _text_tokens(self, s: _Session, h: Tensor) -> Tensor:
        """The sampled text token of each item [B]; h [R, dim]. Where a `TopKHead` applies
        (CPU, float32) only the logits of a few candidate rows are computed: the same
        tokens, half the bytes read (moshi/kernels/topk_head.py)."""
        B, V = s.batch_size, self.model.config.text_card
        temps, top_ks = [o.temp_text for o in s.options], [o.top_k_text for o in s.options]
        if self._branches == 1 or self.cfg_no_text:  # the text logits are those of rows [:B]
            k = max(1 if t <= 0 else (k if 0 < k <= V else V) for t, k in zip(temps, top_ks, strict=True))
            head = self._text_head_for() if 4 * k < V else None
            if head is not None:
                logits, rows = head.candidates(h[:B], k)
                return rows[sample(logits, temps, top_ks, s.text_rngs)]
        logits = self._text_logits(h)  # [R, text_card]
        return sample(logits[:B] if self.cfg_no_text else self._guide(logits), temps, top_ks, s.text_rngs)

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
        cfg = self.model.config
        expected = (batch_size, cfg.num_user_streams, 1)
        if not isinstance(codes, Tensor) or codes.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"user codes must be an int64 tensor of shape {list(expected)}")
        if tuple(codes.shape) != expected:
            raise ValueError(
                f"user codes must have shape [B={batch_size}, {cfg.num_user_streams}, 1], "
                f"got {list(codes.shape)}"
            )
        if codes.numel():
            low, high = (int(v) for v in torch.aminmax(codes))
            if low < 0 or high >= cfg.card:
                raise ValueError(f"user codes must be in [0, {cfg.card}), got values in [{low}, {high}]")

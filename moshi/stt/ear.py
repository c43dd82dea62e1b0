"""An ear for a dialogue model: a speech-to-text model that writes down the user's words in
the dialogue model's text, in place of the words the dialogue model would write itself.

A dialogue model whose config has `dialogue_config.user_text_delay_seconds` writes what it
hears of the user between EOS (the user's turn) and BOS (Moshi's), then answers what it wrote.
A small one mishears the words that matter (the slot words: "can you say cake" for "can you
say planet") and answers the question it wrote. A speech-to-text model trained on far more
of the users' speech hears them better; both read the same Mimi codes and write the user's
words at the same delay (`user_text_delay_seconds` = `stt_config.audio_delay_seconds`), so
its text token of a step can stand in for the dialogue model's:

    codes [B, 8, 1] -> speech-to-text step -> its text token [B] (greedy)
    dialogue step: sampled text token [B] -> `write` -> the token the dialogue model keeps

`write` keeps the dialogue model's own turn markers (it decides when the user speaks and
when to answer) and every token of Moshi's turns; inside a user's turn (after the model's
EOS, until its BOS) the token is the ear's. One exception: an EOS while the ear has heard no
word in its last RECENT_STEPS steps is dropped (no user speaks: the model's reply goes on;
a stray EOS used to cut its replies short, 7 points of correct replies on the held-out
dialogues). Both run in one engine step over the same batch slots (`listen` before the
dialogue step, `reset` with the slot).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor

from ..lm.config import LMConfig
from ..lm.generator import Generator
from ..lm.model import LMModel
from ..lm.sampling import SamplingOptions
from ..lm.text import TextTokenizer

# The model's EOS may come this many steps (0.64 s) after the ear began the user's first word:
# what the ear wrote in them is the start of the user's turn.
RECENT_STEPS = 8


class Ear:
    """`stt`: a speech-to-text LMModel (dep_q = 0) reading the dialogue model's user codebooks,
    with its tokenizer (the vocabulary of `tokenizer`, the dialogue model's)."""

    def __init__(self, stt: LMModel, dialogue: LMConfig, tokenizer: TextTokenizer, cuda_graphs: bool = True):
        c = stt.config
        if c.dep_q != 0 or c.n_q != dialogue.num_user_streams:
            raise ValueError(
                f"an ear is a speech-to-text model reading the dialogue model's {dialogue.num_user_streams} "
                f"user codebooks, got one with n_q={c.n_q}, dep_q={c.dep_q}"
            )
        if not tokenizer.user_turns:
            raise ValueError("an ear needs a dialogue model that writes down the user's words (turn markers)")
        if c.text_card < tokenizer.vocab_size:
            raise ValueError(f"the ear has {c.text_card} text tokens, the tokenizer {tokenizer.vocab_size}")
        self.stt = stt
        self.user_id, self.moshi_id = tokenizer.user_turn_id, tokenizer.moshi_turn_id
        # The ear's own padding ids become the dialogue model's.
        self.padding_id, self.end_padding_id = dialogue.text_padding_id, dialogue.text_end_padding_id
        self._padding = {c.text_padding_id: self.padding_id, c.text_end_padding_id: self.end_padding_id}
        greedy = SamplingOptions(temp=0.0, temp_text=0.0)
        self.generator = Generator(stt, greedy, on_text=self._keep, cuda_graphs=cuda_graphs)
        self._heard: Tensor | None = None  # [B] the ear's token of this step
        self._hearing: list[bool] = []  # per item: inside a user's turn
        self._owed: list[deque[int]] = []  # per item, in a user's turn: the ear's tokens not yet written
        self._recent: list[deque[int]] = []  # per item, outside: the ear's last RECENT_STEPS tokens
        self._executing: Tensor | None = None  # [B] bool, None: every item

    @contextmanager
    def streaming(self, batch_size: int) -> Iterator[Ear]:
        with self.generator.streaming(batch_size):
            self._hearing = [False] * batch_size
            self._owed = [deque() for _ in range(batch_size)]
            self._recent = [deque(maxlen=RECENT_STEPS) for _ in range(batch_size)]
            try:
                yield self
            finally:
                self._hearing, self._owed, self._recent, self._heard = [], [], [], None

    def reset(self, mask: Tensor | None = None) -> None:
        """Restart items (`mask` [B] bool; None: all) as the dialogue model's slots restart."""
        self.generator.reset_streaming(mask)
        restart = range(len(self._hearing)) if mask is None else mask.nonzero().flatten().tolist()
        for b in restart:
            self._hearing[b] = False
            self._owed[b].clear()
            self._recent[b].clear()

    def listen(self, codes: Tensor, mask: Tensor | None = None) -> None:
        """codes [B, n_q, 1]: this step's user codes; `mask` [B] bool: the items that step."""
        self._executing = mask
        self.generator.set_exec_mask(mask)
        self._heard = None
        self.generator.step(codes)
        assert self._heard is not None, "the speech-to-text step samples a text token each step"

    def _keep(self, text: Tensor) -> Tensor:
        self._heard = text
        return text

    def write(self, text: Tensor) -> Tensor:
        """The dialogue model's sampled text tokens [B] -> the tokens it keeps [B]: the ear's
        inside a user's turn (see the module docstring). A `Generator(on_text=...)` hook."""
        if self._heard is None:
            raise RuntimeError("Ear.write before Ear.listen: the ear steps first, on the same codes")
        ours, heard = text.tolist(), self._heard.tolist()
        stepped = [True] * len(ours) if self._executing is None else self._executing.tolist()
        out = [self._write(b, m, self._padding.get(h, h)) if go else m for b, (m, h, go) in
               enumerate(zip(ours, heard, stepped, strict=True))]  # fmt: skip
        return torch.tensor(out, dtype=text.dtype, device=text.device)

    def _speaks(self, b: int, heard: int) -> bool:
        """Whether the ear writes a word now or wrote one in its last RECENT_STEPS steps."""
        return any(t not in (self.padding_id, self.end_padding_id) for t in (*self._recent[b], heard))

    def _write(self, b: int, token: int, heard: int) -> int:
        """One item's token. Inside a user's turn the words are the ear's: those it wrote in
        the last RECENT_STEPS steps when the model's EOS came (it may hear the first word before
        the model knows the user speaks), then each of its tokens in turn, queued behind the
        marker as the training text shifts a word a marker lands on. A model's end of padding
        with nothing owed stays (it comes before its BOS); its own words of the user's are
        dropped. Moshi's turns are the model's own."""
        if heard in (self.user_id, self.moshi_id):
            heard = self.padding_id
        if token == self.moshi_id:
            self._hearing[b] = False
        if token == self.user_id and not self._hearing[b] and not self._speaks(b, heard):
            token = self.padding_id  # no user's turn the ear does not hear: its reply goes on
        if not self._hearing[b] and token != self.user_id:
            self._recent[b].append(heard)
            return token
        owed = self._owed[b]
        if token == self.user_id:
            self._hearing[b] = True
            owed.clear()
            owed.extend(t for t in self._recent[b] if t != self.padding_id)
            self._recent[b].clear()
            if owed and owed[0] == self.end_padding_id:
                owed.popleft()  # the model wrote its own before its marker
        if heard != self.padding_id:
            owed.append(heard)
        if token == self.user_id:
            return token
        if owed:
            return owed.popleft()
        return token if token == self.end_padding_id else self.padding_id

"""The word feeder: between the model's text prediction and what it is fed back.

The TTS model only decides *when* the next word starts: at each step it predicts either
"new word" (0) or "pad" (3) on its text stream. This machine turns that prediction into
the token actually fed, so that the words of the script come out in order:

1. anything but 0 or 3 counts as 3;
2. while a word's tokens are queued -> 3; else while forced padding remains -> 3;
   else when the padding budget is spent -> 0 (the model must start a word);
3. on 0: the next entry is taken (its step recorded). A word: its tokens queued, the
   forced padding set to the entry's, the budget reset to `max_padding`; 0 is fed. A break
   (no tokens): the forced padding set to its length, and it counts as 3. With no entry
   left: if the text is complete, the end step is recorded; either way it counts as 3
   (while waiting for more text, the model pads);
4. on 3: both counters decrease (not below 0) and the next queued token is fed, else 3.

Both counters start at `initial_padding`. Entries may be added while generating (`push`),
for text that arrives word by word; `close` says the text is complete.

Models with a second text stream (`second_stream_ahead = a > 0`, the released 1.6B TTS)
are fed two tokens per step, muxed into one: main + card * (second + 1), second = -1 for
none (card = text_card + 1). The main stream gets a word's tokens from the step it starts
(no 0 there). The second stream is a lookahead of the text to come: 0 at the step a word
starts, when the tokens of the a-th word after it (breaks not counted) join its queue,
which it feeds one token per step at the other steps. When the complete text runs out,
that step is fed 3 on the main stream and 0 on the second, and neither counter decreases.
For text that arrives while speaking, the lookahead sees only the words already pushed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from ..lm.config import LMConfig
from .script import Entry

# Kyutai's text ids (a model's config may name others: `text_end_padding_id`, `text_padding_id`)
NEW_WORD = LMConfig.text_end_padding_id  # text token: a word starts here
PAD = LMConfig.text_padding_id  # text token: nothing new here


class WordStateMachine:
    def __init__(
        self,
        entries: Iterable[Entry] = (),
        max_padding: int = 8,
        initial_padding: int = 2,
        complete: bool = True,
        second_stream_ahead: int = 0,
        mux_card: int = 0,
        new_word: int = NEW_WORD,
        pad: int = PAD,
    ):
        if max_padding < 0 or initial_padding < 0 or second_stream_ahead < 0:
            raise ValueError("max_padding, initial_padding and second_stream_ahead must be >= 0")
        if second_stream_ahead and mux_card <= 0:
            raise ValueError("a second text stream needs mux_card (the text vocabulary + 1)")
        self.max_padding = max_padding
        self.new_word, self.pad = new_word, pad
        self.ahead, self.mux_card = second_stream_ahead, mux_card
        self.lookahead: deque[int] = deque()  # second stream: tokens of a word to come
        self.entries: deque[Entry] = deque(entries)
        self.queued: deque[int] = deque()
        self.budget = initial_padding  # steps of padding the model may still choose
        self.forced = initial_padding  # steps of padding it must still do
        self.complete = complete  # no more entries will be pushed
        self.end_step: int | None = None  # step where the text ran out (once complete)
        self.consumed: list[tuple[Entry, int]] = []  # every entry and the step it started

    def push(self, entries: Iterable[Entry]) -> None:
        if self.complete:
            raise RuntimeError("the text was already marked complete")
        self.entries.extend(entries)

    def close(self) -> None:
        """No more text will come: the machine ends once its entries are spoken."""
        self.complete = True

    @property
    def waiting(self) -> bool:
        """Nothing left to say but more text may come."""
        return not self.complete and not self.entries and not self.queued

    @property
    def transcript(self) -> list[tuple[str, int]]:
        """(word, step where it started), breaks left out."""
        return [(e.text, step) for e, step in self.consumed if not e.is_break]

    def process(self, step: int, token: int) -> int:
        """The model predicted `token` at `step`: the token to feed it instead."""
        if token not in (self.new_word, self.pad):
            token = self.pad
        if self.queued or self.forced > 0:
            token = self.pad
        elif self.budget <= 0:
            token = self.new_word
        if token == self.new_word:
            if self.entries:
                entry = self.entries.popleft()
                self.consumed.append((entry, step))
                self.forced = entry.padding
                if entry.tokens:
                    self.queued.extend(entry.tokens)
                    self.budget = self.max_padding
                    if not self.ahead:
                        return self.new_word
                    self.lookahead.extend(self._word_ahead())
                    return self._mux(self.queued.popleft(), self.new_word)
            elif self.complete and self.end_step is None:
                self.end_step = step
                if self.ahead:
                    return self._mux(self.pad, self.new_word)
        self.budget = max(0, self.budget - 1)
        self.forced = max(0, self.forced - 1)
        main = self.queued.popleft() if self.queued else self.pad
        return self._mux(main, self.lookahead.popleft() if self.lookahead else None)

    def _word_ahead(self) -> tuple[int, ...]:
        """The tokens of the `ahead`-th word still to come (breaks not counted), if any."""
        words = [e for e in self.entries if e.tokens]
        return words[self.ahead - 1].tokens if len(words) >= self.ahead else ()

    def _mux(self, main: int, second: int | None) -> int:
        """The token fed for both text streams (the main one alone when single-stream)."""
        return main if second is None or not self.ahead else main + self.mux_card * (second + 1)

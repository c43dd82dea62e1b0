"""The word feeder: between the model's text prediction and what it is fed back.

The TTS model only decides *when* the next word starts: at each step it predicts either
"new word" (0) or "pad" (3) on its text stream. This machine turns that prediction into
the token actually fed, so that the words of the script come out in order:

1. anything but 0 or 3 counts as 3;
2. while a word's tokens are queued -> 3; else while forced padding remains -> 3;
   else when the padding budget is spent -> 0 (the model must start a word);
3. on 0: the next entry is taken (its step recorded), its tokens queued, the forced
   padding set to the entry's, the budget reset to `max_padding`; 0 is fed. A break (no
   tokens) sets both counters to its length and counts as 3. With no entry left: if the
   text is complete, the end step is recorded; either way it counts as 3 (while waiting
   for more text, the model pads);
4. on 3: both counters decrease (not below 0) and the next queued token is fed, else 3.

Both counters start at `initial_padding`. Entries may be added while generating (`push`),
for text that arrives word by word; `close` says the text is complete.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from .script import Entry

NEW_WORD = 0  # text token: a word starts here
PAD = 3  # text token: nothing new here


class WordStateMachine:
    def __init__(
        self,
        entries: Iterable[Entry] = (),
        max_padding: int = 8,
        initial_padding: int = 2,
        complete: bool = True,
    ):
        if max_padding < 0 or initial_padding < 0:
            raise ValueError("max_padding and initial_padding must be >= 0")
        self.max_padding = max_padding
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
        if token not in (NEW_WORD, PAD):
            token = PAD
        if self.queued or self.forced > 0:
            token = PAD
        elif self.budget <= 0:
            token = NEW_WORD
        if token == NEW_WORD:
            if self.entries:
                entry = self.entries.popleft()
                self.consumed.append((entry, step))
                self.queued.extend(entry.tokens)
                self.forced = entry.padding
                if entry.tokens:
                    self.budget = self.max_padding
                    return NEW_WORD
                self.budget = entry.padding  # a break: the next word right after it
            elif self.complete and self.end_step is None:
                self.end_step = step
        self.budget = max(0, self.budget - 1)
        self.forced = max(0, self.forced - 1)
        return self.queued.popleft() if self.queued else PAD

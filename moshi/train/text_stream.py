"""The text stream of a training item, from word alignments (Moshi's inner monologue).

One text token per 80 ms frame, aligned with the audio. The rules (those of moshi-finetune's
`Interleaver`, checked against its output in tests/fixtures/interleaver):

- words are sorted by start time; words with end <= start are dropped; each is tokenized on
  its own (no BOS);
- a delay d (`delay_s`, seconds the audio lags the text) and a crop start o (`offset_s`)
  move every word by -(o + d); words then ending at or before 0 are dropped;
- frame t takes the next pending token once some word starts before frame t + 1
  (start * 12.5 < t + 1); a word that starts replaces what is still pending of the previous
  one (`keep_and_shift`: queues after it instead);
- a frame with no pending token is padding (3); when a token lands on frame t and frame
  t - 1 is padding, t - 1 becomes end-of-padding (0): a 0 announces every word;
- `turn_markers`: BOS is put before the main speaker's words when they take the turn (the
  previous word, if any, was another speaker's), EOS before another speaker's words after
  the main speaker's;
- `user_delay_s` (ours, not moshi-finetune's): the other speakers' words are in the text too,
  moved by that delay instead of `delay_s` (< 0: after their audio, as speech-to-text writes
  them), and every change of speaker is announced, the item's first word's included: BOS
  before the main speaker's words, EOS before another's. A dialogue model then writes down
  what it heard before it answers (its text between EOS and BOS is the user's);
- with d < 0 (text after the audio: speech-to-text) the frames before the text can start,
  the first floor((-d - o) * 12.5), are the zero token (-1: no text, no loss), or with
  `padding_before_start` what they hold (padding: nothing is said before the file starts);
  all frames are the zero token when `alignments` is None (no text known, as opposed to [] =
  silence).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

import torch
from torch import Tensor

from ..audio import FRAME_RATE
from ..lm.config import LMConfig
from ..lm.layers import ZERO_TOKEN  # embeds to zero; in training: no loss, the text is undefined
from ..lm.text import TextTokenizer
from .alignments import MAIN_SPEAKER, AlignedWord


def text_stream(
    alignments: Sequence[AlignedWord] | None,
    tokenizer: TextTokenizer,
    num_frames: int,
    *,
    delay_s: float = 0.0,
    offset_s: float = 0.0,
    main_only: bool = False,
    padding_before_start: bool = False,
    main_speaker: str = MAIN_SPEAKER,
    turn_markers: bool = False,
    keep_and_shift: bool = False,
    user_delay_s: float | None = None,
    padding_id: int = LMConfig.text_padding_id,
    end_of_padding_id: int = LMConfig.text_end_padding_id,
) -> Tensor:
    """Word alignments -> text tokens [num_frames] int64, frame t covering
    [offset_s + t / 12.5, offset_s + (t + 1) / 12.5) s of the audio. `delay_s` > 0: the text
    runs ahead of the audio (text-to-speech); < 0: behind it (speech-to-text). `main_only`:
    only `main_speaker`'s words (dialogue: Moshi's own)."""
    if num_frames < 0:
        raise ValueError(f"num_frames must be >= 0, got {num_frames}")
    if alignments is None:
        return torch.full((num_frames,), ZERO_TOKEN, dtype=torch.int64)
    shift = offset_s + delay_s
    if user_delay_s is not None and not tokenizer.has_turn_markers:
        raise ValueError("user_delay_s needs a tokenizer with <s> and </s> (the turn markers)")
    if user_delay_s is None:
        words = _words(alignments, tokenizer, shift, main_only, main_speaker, turn_markers)
    else:
        words = _both_speakers(alignments, tokenizer, shift, offset_s + user_delay_s, main_speaker)
    out = [padding_id] * num_frames
    pending: deque[int] = deque()
    i = 0
    for t in range(num_frames):
        while i < len(words) and words[i][0] * FRAME_RATE < t + 1:
            if not keep_and_shift:
                pending.clear()
            pending.extend(words[i][1])
            i += 1
        if pending:
            out[t] = pending.popleft()
            if t > 0 and out[t - 1] == padding_id:
                out[t - 1] = end_of_padding_id
    zeros = 0
    if delay_s < 0 and not padding_before_start:
        zeros = min(num_frames, max(0, math.floor(-shift * FRAME_RATE)))
    out[:zeros] = [ZERO_TOKEN] * zeros
    return torch.tensor(out, dtype=torch.int64)


def _words(
    alignments: Sequence[AlignedWord],
    tokenizer: TextTokenizer,
    shift: float,
    main_only: bool,
    main_speaker: str,
    turn_markers: bool,
) -> list[tuple[float, list[int]]]:
    """(start in seconds after the shift, tokens) of the words that count, by start time."""
    kept = sorted((w for w in alignments if w.end > w.start), key=lambda w: w.start)
    out = []
    previous: str | None = None
    for w in kept:
        is_main = w.speaker == main_speaker
        if main_only and not is_main:
            continue
        tokens = tokenizer.encode(w.text)
        if turn_markers and is_main and previous != main_speaker:
            tokens = [tokenizer.sp.bos_id(), *tokens]
        elif turn_markers and not is_main and previous == main_speaker:
            tokens = [tokenizer.sp.eos_id(), *tokens]
        previous = w.speaker
        if w.end - shift > 0:
            out.append((w.start - shift, tokens))
    return out


def _both_speakers(
    alignments: Sequence[AlignedWord],
    tokenizer: TextTokenizer,
    main_shift: float,
    user_shift: float,
    main_speaker: str,
) -> list[tuple[float, list[int]]]:
    """(start after its speaker's shift, tokens) of every word, by that start; each change of
    speaker (and the first word) is announced by BOS (main speaker) or EOS (another)."""
    shifted = []
    for w in alignments:
        shift = main_shift if w.speaker == main_speaker else user_shift
        if w.end > w.start and w.end - shift > 0:
            shifted.append((w.start - shift, w))
    shifted.sort(key=lambda sw: sw[0])
    out = []
    previous: bool | None = None  # whether the previous word was the main speaker's
    for start, w in shifted:
        is_main = w.speaker == main_speaker
        tokens = tokenizer.encode(w.text)
        if is_main is not previous:
            tokens = [tokenizer.moshi_turn_id if is_main else tokenizer.user_turn_id, *tokens]
        previous = is_main
        out.append((start, tokens))
    return out

"""The text stream: Kyutai's own output on 11 cases (moshi-finetune's `Interleaver`), and
hand-made cases pinning where every token lands (crops, delays, turn markers)."""

import json
import math

import pytest

from moshi.lm.text import TextTokenizer
from moshi.train.alignments import AlignedWord
from moshi.train.text_stream import text_stream
from tests.support.fixtures import FIXTURES

CASES = json.loads((FIXTURES / "interleaver" / "cases.json").read_text())
TOK = TextTokenizer(FIXTURES / "tiny_spm_nl_56.model")
HI, SO, NO, HELLO = [44, 24], [13, 6], [5, 11, 6], [44, 7, 23, 43]  # this tokenizer's pieces
BOS, EOS, PAD, EPAD, ZERO = 1, 2, 3, 0, -1


def words(*items: tuple) -> list[AlignedWord]:
    return [AlignedWord(*item) for item in items]


def frames(T: int, at: dict[int, list[int]], fill: int = PAD) -> list[int]:
    """A stream of T frames of `fill` with token runs written from the given frames."""
    out = [fill] * T
    for t, tokens in at.items():
        out[t : t + len(tokens)] = tokens
    return out


@pytest.mark.parametrize("case", CASES["cases"], ids=[c["name"] for c in CASES["cases"]])
def test_kyutai_interleaver_cases(case):
    assert (CASES["text_padding"], CASES["end_of_text_padding"], CASES["zero_padding"]) == (PAD, EPAD, ZERO)
    alignments = case["alignments"]
    found = None if alignments is None else [AlignedWord(w, s, e, who) for w, (s, e), who in alignments]
    o = case["options"]
    got = text_stream(
        found,
        TOK,
        math.ceil(case["segment_duration"] * 12.5),
        delay_s=o.get("audio_delay", 0.0),
        main_only=o.get("keep_main_only", False),
        turn_markers=o.get("use_bos_eos", False),
        keep_and_shift=o.get("keep_and_shift", False),
    )
    assert got.dtype.is_signed and got.dtype.itemsize == 8
    assert got.tolist() == case["tokens"]


TWO = words(("hi", 0.25, 0.5), ("so", 1.0, 1.2))  # frames 3.125 and 12.5


def test_each_word_at_its_start_frame_announced_by_end_of_padding():
    assert text_stream(TWO, TOK, 16).tolist() == frames(16, {2: [EPAD, *HI], 11: [EPAD, *SO]})


def test_the_models_padding_ids_are_used():
    got = text_stream(TWO, TOK, 16, padding_id=7, end_of_padding_id=8).tolist()
    assert got == frames(16, {2: [8, *HI], 11: [8, *SO]}, fill=7)


def test_a_crop_moves_words_and_drops_those_ended_before_it():
    # "hi" ended before 0.8 s; "so" starts 0.2 s into the crop: frame 2.5
    assert text_stream(TWO, TOK, 6, offset_s=0.8).tolist() == [PAD, EPAD, *SO, PAD, PAD]


def test_a_word_running_over_the_crop_start_lands_on_frame_zero():
    got = text_stream(words(("hello", 0.5, 1.5)), TOK, 6, offset_s=0.8).tolist()
    assert got == [*HELLO, PAD, PAD]


def test_words_after_the_crop_are_left_out():
    assert text_stream(TWO, TOK, 10).tolist() == frames(10, {2: [EPAD, *HI]})


def test_text_behind_the_audio_starts_with_zero_tokens_shortened_by_the_crop():
    # delay -0.5 s at crop 0.25 s: the text can start 0.25 s in (3.125 frames -> 3 zeros);
    # "hi" moves to 0.25 + 0.25 = 0.5 s (frame 6.25)
    got = text_stream(TWO, TOK, 9, delay_s=-0.5, offset_s=0.25).tolist()
    assert got == [ZERO, ZERO, ZERO, PAD, PAD, EPAD, *HI, PAD]


def test_padding_before_start_writes_the_truth_there():
    got = text_stream(TWO, TOK, 9, delay_s=-0.5, offset_s=0.25, padding_before_start=True).tolist()
    assert got == [PAD, PAD, PAD, PAD, PAD, EPAD, *HI, PAD]


def test_text_ahead_of_the_audio_has_no_zero_tokens():
    got = text_stream(TWO, TOK, 12, delay_s=0.5).tolist()  # "so" at 0.5 s: frame 6.25
    assert got == frames(12, {5: [EPAD, *SO]})


def test_zero_tokens_never_exceed_the_stream():
    assert text_stream(TWO, TOK, 2, delay_s=-1.0).tolist() == [ZERO, ZERO]


def test_turn_markers_open_the_main_speakers_first_turn_too():
    turns = words(("hi", 0.25, 0.5), ("no", 0.9, 1.1, "SPEAKER_OTHER"), ("so", 1.5, 1.7))
    got = text_stream(turns, TOK, 24, turn_markers=True).tolist()
    assert got == frames(24, {2: [EPAD, BOS, *HI], 10: [EPAD, EOS, *NO], 17: [EPAD, BOS, *SO]})


def test_main_only_keeps_the_named_speakers_words():
    turns = words(("hi", 0.25, 0.5, "left"), ("so", 1.0, 1.2, "right"))
    got = text_stream(turns, TOK, 16, main_only=True, main_speaker="right").tolist()
    assert got == frames(16, {11: [EPAD, *SO]})


def test_silence_is_padding_and_unknown_text_is_zero():
    assert text_stream([], TOK, 4).tolist() == [PAD] * 4
    assert text_stream(None, TOK, 4).tolist() == [ZERO] * 4
    assert text_stream(TWO, TOK, 0).tolist() == []
    with pytest.raises(ValueError, match="num_frames"):
        text_stream(TWO, TOK, -1)


# The user's words too (dialogue_config.user_text_delay_seconds): each speaker's own delay, and
# every change of speaker announced, the first word's included.
USER = "SPEAKER_USER"


def test_the_users_words_come_their_delay_late_between_eos_and_bos():
    turns = words(("hi", 0.25, 0.5), ("no", 0.9, 1.1, USER), ("so", 1.5, 1.7))
    # "no" 0.4 s late: 1.3 s = frame 16.25, after Moshi's "hi" (frame 3.125); "so" (18.75)
    # queues after its last token
    got = text_stream(turns, TOK, 24, user_delay_s=-0.4, keep_and_shift=True).tolist()
    assert got == frames(24, {2: [EPAD, BOS, *HI], 15: [EPAD, EOS, *NO], 20: [BOS, *SO]})


def test_a_crop_in_the_users_turn_opens_with_eos():
    turns = words(("no", 0.9, 1.1, USER), ("so", 1.5, 1.7))
    # crop at 1.0 s: "no" (late: 1.3-1.5 s) at frame 3.75, "so" at 6.25, queued after "no"
    got = text_stream(turns, TOK, 12, offset_s=1.0, user_delay_s=-0.4, keep_and_shift=True).tolist()
    assert got == frames(12, {2: [EPAD, EOS, *NO], 7: [BOS, *SO]})


def test_user_words_ended_before_the_crop_after_their_delay_are_dropped():
    turns = words(("no", 0.2, 0.3, USER), ("so", 1.5, 1.7))
    got = text_stream(turns, TOK, 12, offset_s=1.0, user_delay_s=-0.4, keep_and_shift=True).tolist()
    assert got == frames(12, {5: [EPAD, BOS, *SO]})

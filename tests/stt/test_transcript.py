"""Text tokens -> timed words, and the output formats."""

import json

import pytest

from moshi.lm.text import TextTokenizer
from moshi.stt import MIN_CUE_SECONDS, Transcript, Word, cues, render, timed_words
from tests.helpers import FIXTURES

PAD, EPAD = 3, 0
# In the tiny tokenizer: 99 = "▁", 83 96 93 93 97 = "hello", 10 = "▁koquxoqu",
# 21 = "▁cataca", 74 = "c", 32 = "▁tacazi".
HELLO = [99, 83, 96, 93, 93, 97]


@pytest.fixture(scope="module")
def tok():
    return TextTokenizer(FIXTURES / "tiny_spm_100.model")


def words(tok, tokens, shift=0.0, duration=100.0):
    return timed_words(tokens, tok, frame_rate=12.5, shift=shift, duration=duration)


def test_words_start_after_end_of_padding_and_end_at_the_next_word(tok):
    tokens = [PAD, PAD, EPAD, *HELLO, PAD, PAD, EPAD, 10, PAD, PAD, PAD, 21, 74]
    got = words(tok, tokens, shift=0.1, duration=1.3)
    assert [w.text for w in got] == ["hello", "koquxoqu", "catacac"]
    # hello: first piece at step 3; koquxoqu at step 12; catacac at step 16, last piece 17.
    assert got[0] == Word("hello", 0.14, 0.86)
    assert got[1] == Word("koquxoqu", 0.86, 1.18)
    assert got[2] == Word("catacac", 1.18, 1.3)  # (17 + 1) / 12.5 - 0.1 = 1.34, clamped


def test_a_space_mark_splits_words_without_end_of_padding(tok):
    got = words(tok, [EPAD, 10, 21, PAD, 32])
    assert [(w.text, w.start, w.end) for w in got] == [
        ("koquxoqu", 0.08, 0.16),
        ("cataca", 0.16, 0.32),
        ("tacazi", 0.32, 0.4),
    ]


def test_times_are_clamped_to_the_input(tok):
    got = words(tok, [10, 21, PAD, PAD, 32], shift=0.2, duration=0.1)
    assert [(w.start, w.end) for w in got] == [(0.0, 0.0), (0.0, 0.1), (0.1, 0.1)]
    assert words(tok, [PAD, EPAD, PAD]) == []


def test_json_is_exactly_text_and_words():
    t = Transcript([Word("hi", 0.32, 0.61), Word("there", 0.61, 1.0)])
    assert json.loads(render(t, "json")) == {
        "text": "hi there",
        "words": [{"text": "hi", "start": 0.32, "end": 0.61}, {"text": "there", "start": 0.61, "end": 1.0}],
    }
    assert render(t, "txt") == "hi there\n"


def test_subtitles():
    t = Transcript([Word("hi", 0.32, 0.61), Word("there", 0.61, 3661.5)])  # a cue lasts <= 5 s
    assert render(t, "srt") == (
        "1\n00:00:00,320 --> 00:00:00,610\nhi\n\n2\n00:00:00,610 --> 01:01:01,500\nthere\n"
    )
    assert render(t, "vtt") == (
        "WEBVTT\n\n00:00:00.320 --> 00:00:00.610\nhi\n\n00:00:00.610 --> 01:01:01.500\nthere\n"
    )
    short = Transcript([Word("hi", 0.32, 0.61), Word("there", 0.61, 1.5)])
    assert render(short, "srt") == "1\n00:00:00,320 --> 00:00:01,500\nhi there\n"


def test_cues_stay_short_and_break_at_turns():
    many = [Word(f"word{i}", i * 0.5, (i + 1) * 0.5) for i in range(12)]
    got = cues(Transcript(many))
    assert all(len(c.text) <= 42 and c.end - c.start <= 5 for c in got)
    assert " ".join(c.text for c in got) == " ".join(w.text for w in many)
    turns = Transcript(many[:4], end_of_turn=[1.0])
    assert [c.text for c in cues(turns)] == ["word0 word1", "word2 word3"]
    assert render(turns, "txt") == "word0 word1\nword2 word3\n"
    assert json.loads(render(turns, "json"))["end_of_turn"] == [1.0]


def test_no_cue_is_empty_in_time():
    """Words clamped to the input's ends have no length: a cue lasts MIN_CUE_SECONDS, or
    until the next cue when that starts sooner (and later than this one)."""
    assert MIN_CUE_SECONDS == 0.5
    t = Transcript([Word("a", 0.0, 0.0), Word("b", 0.2, 0.2), Word("c", 1.0, 1.0)], end_of_turn=[0.1, 0.5])
    assert [(c.text, c.start, c.end) for c in cues(t)] == [("a", 0.0, 0.2), ("b", 0.2, 0.7), ("c", 1.0, 1.5)]
    assert render(t, "srt").splitlines()[1] == "00:00:00,000 --> 00:00:00,200"
    same = Transcript([Word("x" * 30, 2.0, 2.0), Word("y" * 30, 2.0, 2.0)])  # one cue each, same time
    assert [(c.start, c.end) for c in cues(same)] == [(2.0, 2.5), (2.0, 2.5)]
    assert "00:00:02.000 --> 00:00:02.500" in render(same, "vtt")

"""The dialogue bar's measures on hand-made dialogues: questions found among the user's words,
the reply window and its onset, and Moshi's quiet while the user speaks."""

import numpy as np
import pytest

from moshi.audio import FRAME_SIZE, SAMPLE_RATE
from moshi.eval.dialogue import SPEECH_RMS, questions, quiet_while_user_speaks, replies, speech_frames

U, M = "SPEAKER_USER", "SPEAKER_MAIN"
META = {
    "exchanges": [
        {"kind": "arithmetic", "question": "what is one plus one", "answer": "it is two"},
        {"kind": "say", "question": "say cat", "answer": "cat"},
    ],
    "alignments": [
        ["hello", [0.2, 0.6], M],
        ["what", [1.0, 1.2], U], ["is", [1.2, 1.4], U], ["one", [1.4, 1.6], U],
        ["plus", [1.6, 1.8], U], ["one", [1.8, 2.0], U],
        ["it", [2.4, 2.6], M], ["is", [2.6, 2.8], M], ["two", [2.8, 3.2], M],
        ["okay", [3.4, 3.6], U],  # a backchannel: not a question
        ["say", [4.0, 4.2], U], ["cat", [4.2, 4.6], U],
        ["cat", [5.2, 5.6], M],
    ],
}  # fmt: skip


def _tone(duration: float, spans: list[tuple[float, float]], level: float = 0.1) -> np.ndarray:
    pcm = np.zeros(round(duration * SAMPLE_RATE), dtype=np.float32)
    for a, b in spans:
        i, j = round(a * SAMPLE_RATE), round(b * SAMPLE_RATE)
        pcm[i:j] = level * np.sin(np.arange(j - i))
    return pcm


def test_questions_are_found_past_backchannels():
    qs = questions(META)
    assert [(q.text, q.answer, q.kind) for q in qs] == [
        ("what is one plus one", "it is two", "arithmetic"),
        ("say cat", "cat", "say"),
    ]
    assert [(q.start, q.end) for q in qs] == [(1.0, 2.0), (4.0, 4.6)]


def test_speech_frames_threshold():
    pcm = np.concatenate([np.full(FRAME_SIZE, 2 * SPEECH_RMS), np.full(FRAME_SIZE, SPEECH_RMS / 2), [1.0]])
    assert speech_frames(pcm.astype(np.float32)).tolist() == [True, False, True]
    with pytest.raises(ValueError, match="mono"):
        speech_frames(np.zeros((2, 10)))


def test_replies_and_their_onsets():
    moshi = _tone(6.0, [(0.2, 0.6), (2.48, 3.2), (5.2, 5.6)])  # Moshi speaks as in the metadata
    words = [(w, s[0], s[1]) for w, s, who in META["alignments"] if who == M]
    rs = replies(questions(META), moshi, words)
    assert [r.text for r in rs] == ["it is two", "cat"]
    # The first loud frame after 2.0 s is the one starting at 2.48 s -> frame 31 (2.48 s).
    assert rs[0].onset == pytest.approx(31 / 12.5) and rs[0].latency == pytest.approx(31 / 12.5 - 2.0)
    assert rs[1].latency == pytest.approx(5.2 - 4.6)
    assert [r.stop for r in rs] == [4.0, 6.0]  # the next question's start, the output's end
    assert len(rs[0].window(moshi)) == 2 * SAMPLE_RATE  # 2.0 s to 4.0 s
    silent = replies(questions(META), np.zeros(6 * SAMPLE_RATE, dtype=np.float32), [])
    assert [(r.text, r.onset, r.latency) for r in silent] == [("", None, None)] * 2


def test_quiet_while_user_speaks_counts_frames_in_user_words():
    user = [(1.0, 2.0)]  # frames 12..24: their middles (t + 0.5) / 12.5 are in [1.0, 2.0)
    quiet, total = quiet_while_user_speaks(np.zeros(3 * SAMPLE_RATE, dtype=np.float32), user)
    assert (quiet, total) == (13, 13)
    talks = _tone(3.0, [(1.52, 3.0)])  # loud from frame 19 (1.52 s) on: 6 of the 13 frames
    assert quiet_while_user_speaks(talks, user) == (7, 13)

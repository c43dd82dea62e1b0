"""Real speech through the shipped small family (issue 13): unheard voices saying held-out
sentences, copied from the corpus' held-out set (tests/fixtures/small_heldout: its README
says how), come out of `moshi transcribe --model small` word for word, each word's start
within 100 ms of the synthesiser's. The whole held-out set's word error rate is the model
card's (moshi/small/README.md); these five are files the shipped weights get right, and keep
right under faint added noise, so a change that breaks real transcription fails here."""

import json
from pathlib import Path

import pytest

from moshi.small import shipped_kinds

HELD_OUT = Path(__file__).parents[1] / "fixtures" / "small_heldout"
CASES = json.loads((HELD_OUT / "cases.json").read_text())
START_TOLERANCE_S = 0.1  # the bar, on the median; here on every word

pytestmark = pytest.mark.skipif("stt" not in shipped_kinds(), reason="no speech-to-text model shipped")


def test_the_shipped_stt_transcribes_unheard_voices(moshi, tmp_path):
    assert len({c["voice"] for c in CASES}) == len(CASES)  # one file per voice
    wavs = [HELD_OUT / c["wav"] for c in CASES]
    r = moshi("transcribe", "--model", "small", "--device", "cpu", "--format", "json", "-o", tmp_path, *wavs)
    assert r.code == 0, r.err
    for case in CASES:
        got = json.loads((tmp_path / Path(case["wav"]).with_suffix(".json").name).read_text())
        assert got["text"] == case["text"], case["voice"]
        starts = [w["start"] for w in got["words"]]
        assert len(starts) == len(case["starts"])
        assert all(abs(s - t) <= START_TOLERANCE_S for s, t in zip(starts, case["starts"], strict=True)), (
            case["voice"], starts, case["starts"])  # fmt: skip

"""`moshi transcribe --live FILE` on the tiny model: the file played in real time through the
live path gives the offline transcript of the same frames; Ctrl-C ends it cleanly after the
frame it came in; a machine too slow is one line; bad combinations are one line."""

import json
import os
import re
import signal
from pathlib import Path

import pytest
import soundfile as sf
import torch

from moshi.models import ModelFiles
from moshi.stt import LiveTranscriber, transcribe
from tests.support.fixtures import STT_CONFIG

FRAME = 1920


@pytest.fixture(scope="module")
def offline(stt_model):
    files = ModelFiles.resolve(str(Path(stt_model[1]).parent))
    lm, mimi, tok = files.load_lm(dtype=torch.float32), files.load_mimi(), files.load_tokenizer()
    return lambda pcm: transcribe(lm, mimi, pcm, tok, STT_CONFIG, chunk_frames=1).to_dict()


@pytest.fixture
def clip(tmp_path, speech):
    """1.2 s of speech (15 whole frames) as a file, and its samples."""
    pcm = speech[12000 : 12000 + 15 * FRAME]
    sf.write(tmp_path / "talk.wav", pcm, 24000, subtype="FLOAT")
    return tmp_path / "talk.wav", pcm


def test_a_file_played_in_real_time(moshi, stt_model, clip, offline, tmp_path):
    path, pcm = clip
    out = tmp_path / "talk.json"
    r = moshi("transcribe", "--live", path, "--format", "json", "-o", out, *stt_model)
    assert r.code == 0, r.err
    doc = json.loads(out.read_text())
    assert doc == offline(pcm)
    assert r.out.split() == doc["text"].split()  # the text, printed as it came
    status = r.err.strip().splitlines()[-1]
    assert re.fullmatch(
        r"\[live: 1\.2 s of audio, real-time factor [\d.]+ \(compute over audio\), lag [\d.]+ s at the end "
        r"\(max [\d.]+ s\) \(plus the model's text delay, 0\.24 s\)\]",
        status,
    ), r.err
    assert "too slow" not in r.err


def test_ctrl_c_ends_after_the_frame_and_keeps_the_transcript(moshi, stt_model, clip, offline, monkeypatch):
    path, pcm = clip
    push, pushed = LiveTranscriber.push, []

    def push_then_ctrl_c(self, frame):
        pushed.append(frame)
        if len(pushed) == 6:
            os.kill(os.getpid(), signal.SIGINT)
        return push(self, frame)

    monkeypatch.setattr(LiveTranscriber, "push", push_then_ctrl_c)
    r = moshi("transcribe", "--live", path, "--format", "json", *stt_model)
    assert r.code == 0, r.err
    assert len(pushed) == 6  # the 6th frame was finished, no 7th was read
    assert json.loads(r.out) == offline(pcm[: 6 * FRAME])
    assert "[live: 0.5 s of audio" in r.err  # the live text went to stderr (json on stdout)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_too_slow_is_one_line_and_drops_nothing(moshi, stt_model, clip, offline, monkeypatch):
    path, pcm = clip
    clock = [0.0]
    push = LiveTranscriber.push

    def slow_push(self, frame):  # each frame "takes" 100 ms of compute
        clock[0] += 0.1
        return push(self, frame)

    monkeypatch.setattr(LiveTranscriber, "push", slow_push)
    monkeypatch.setattr("moshi.cli.transcribe_live.time.perf_counter", lambda: clock[0])
    r = moshi("transcribe", "--live", path, "--format", "json", *stt_model)
    assert r.code == 0, r.err
    slow = [line for line in r.err.splitlines() if "too slow" in line]
    assert slow == [
        "[too slow for live transcription on this machine: 100 ms of compute per 80 ms frame; going on "
        "without dropping audio, so the text falls behind (faster: --dtype bfloat16 or --int8 (CPU), "
        "or a GPU (--device cuda))]"
    ]
    assert json.loads(r.out) == offline(pcm)  # every frame was transcribed
    assert "real-time factor 1.25" in r.err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--live", "a.wav", "b.wav"], "--live transcribes the microphone or one --live FILE"),
        ([], "no input: give audio files, or --live"),
        (["--live", "missing.wav"], "missing.wav"),
    ],
)
def test_bad_live_arguments_are_one_line(moshi, stt_model, args, message, tmp_path):
    r = moshi("transcribe", *args, *stt_model)
    assert r.code == 1 and r.out == ""
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("moshi transcribe: error:") and message in lines[0]

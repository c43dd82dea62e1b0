"""`moshi transcribe` end to end on the tiny speech-to-text model."""

import json

import numpy as np
import soundfile as sf

from moshi.stt import SttTiming
from tests.cli.conftest import STT_CONFIG


def check_words(doc: dict, duration: float) -> None:
    assert set(doc) == {"text", "words"}
    words = doc["words"]
    assert words, "the tiny model always writes something"
    assert doc["text"] == " ".join(w["text"] for w in words)
    assert all(set(w) == {"text", "start", "end"} for w in words)
    times = [t for w in words for t in (w["start"], w["end"])]
    assert times == sorted(times), "word times are monotonic"
    assert times[0] >= 0 and times[-1] <= duration + 1e-9
    assert all(w["start"] <= w["end"] for w in words)


def test_each_format_to_a_file(moshi, stt_model, wav, tmp_path):
    audio = wav(seconds=1.0)
    outs = {}
    for fmt in ("json", "txt", "srt", "vtt"):
        out = tmp_path / f"talk.{fmt}"
        r = moshi("transcribe", audio, "--format", fmt, "-o", out, *stt_model)
        assert r.code == 0 and r.out == "", r.err
        outs[fmt] = out.read_text()
    doc = json.loads(outs["json"])
    check_words(doc, duration=1.0)
    assert outs["txt"] == doc["text"] + "\n"
    assert outs["srt"].startswith("1\n00:00:0") and " --> " in outs["srt"]
    assert outs["vtt"].startswith("WEBVTT\n\n00:00:0")
    for fmt in ("srt", "vtt"):  # every word is in the subtitles, in order
        lines = [x for x in outs[fmt].splitlines() if x and "-->" not in x and not x.isdigit()]
        assert " ".join(lines).replace("WEBVTT ", "") == doc["text"]


def test_a_batch_gives_each_file_what_it_gets_alone(moshi, stt_model, wav, tmp_path):
    """Padding the shorter file to the longer changes nothing: the model is causal. (The
    batch runs shortest first; results come in the order of the command line.)"""
    short, long = wav("short.wav", seconds=0.5), wav("long.mp3", seconds=1.2, start=2.0)
    together = moshi("transcribe", long, short, "--format", "json", *stt_model)
    assert together.code == 0, together.err
    docs = [json.loads(line) for line in together.out.splitlines()]
    assert [d.pop("file") for d in docs] == [str(long), str(short)]
    for path, doc, seconds in zip((long, short), docs, (1.2, 0.5), strict=True):
        alone = moshi("transcribe", path, "--format", "json", *stt_model)
        assert json.loads(alone.out) == doc
        check_words(doc, seconds)
    # Several inputs to a folder: one file each.
    r = moshi("transcribe", short, long, "--format", "txt", "-o", tmp_path / "texts", *stt_model)
    assert r.code == 0, r.err
    assert sorted(p.name for p in (tmp_path / "texts").iterdir()) == ["long.txt", "short.txt"]


def test_stdout_headers_with_several_inputs(moshi, stt_model, wav):
    a, b = wav("a.wav", seconds=0.3), wav("b.wav", seconds=0.3, start=1.0)
    r = moshi("transcribe", a, b, "--batch-size", "1", *stt_model)
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0] == f"==> {a} <==" and lines[2] == f"==> {b} <==" and len(lines) == 4


def test_voice_activity_from_the_extra_heads(moshi, stt_model, wav):
    r = moshi("transcribe", wav(seconds=0.8), "--format", "json", "--vad", *stt_model)
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    turns = doc.pop("end_of_turn")
    assert turns == sorted(turns) and all(0 <= t <= 0.8 for t in turns)
    check_words(doc, 0.8)


def test_one_sample_and_silence(moshi, stt_model, tmp_path):
    sf.write(tmp_path / "one.wav", np.array([0.1]), 24000, subtype="FLOAT")
    sf.write(tmp_path / "silent.flac", np.zeros(8000), 16000)
    for name, duration in (("one.wav", 1 / 24000), ("silent.flac", 0.5)):
        r = moshi("transcribe", tmp_path / name, "--format", "json", *stt_model)
        assert r.code == 0, r.err
        doc = json.loads(r.out)
        assert all(0 <= w["start"] <= w["end"] <= duration for w in doc["words"])


def test_timing_comes_from_the_models_stt_config():
    t = SttTiming.from_config(STT_CONFIG)
    assert (t.prefix_frames, t.delay_seconds) == (2, 0.24)
    assert t.flush_frames == 10  # ceil((0.24 + 0.5) * 12.5)
    assert abs(t.shift - 0.4) < 1e-9
    assert t.steps(1) == 2 + 1 + 10 and t.steps(1920 * 3 + 1) == 2 + 4 + 10
    kyutai_1b = SttTiming.from_config({"audio_silence_prefix_seconds": 0.0, "audio_delay_seconds": 0.5})
    assert kyutai_1b.prefix_frames == 0 and kyutai_1b.flush_frames == 13


def test_a_transformers_config_is_one_line_not_the_7b(moshi, wav, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps({"architectures": ["WhisperForConditionalGeneration"], "model_type": "whisper"})
    )
    r = moshi("transcribe", wav(), "--config", config, "--device", "cpu")
    assert r.code == 1 and r.out == ""
    assert len(r.err.strip().splitlines()) == 1 and "not a Moshi-family config" in r.err, r.err

"""`moshi speak` end to end on a tiny model directory (the TTS fixture's weights and config,
the tiny Mimi, the 100-piece tokenizer, the fixture's voice)."""

import io
import json
import re
import shutil

import pytest
import soundfile as sf

from moshi.cli.main import main
from moshi.lm import load_lm
from tests.helpers import FIXTURES, fake_hub_cache
from tests.tts.conftest import TOKENIZER, TTS_TINY, make_tts


@pytest.fixture
def model_dir(tmp_path):
    d = tmp_path / "tiny-tts"
    d.mkdir()
    config = json.loads((TTS_TINY / "config.json").read_text())
    config |= dict(
        moshi_name="tts.safetensors",
        mimi_name="mimi.safetensors",
        mimi_config_name="mimi.json",
        tokenizer_name="tokenizer.model",
    )
    (d / "config.json").write_text(json.dumps(config))
    shutil.copy(TTS_TINY / "weights.safetensors", d / "tts.safetensors")
    shutil.copy(FIXTURES / "mimi_tiny" / "weights.safetensors", d / "mimi.safetensors")
    shutil.copy(FIXTURES / "mimi_tiny" / "config.json", d / "mimi.json")
    shutil.copy(TOKENIZER, d / "tokenizer.model")
    shutil.copy(TTS_TINY / "voice.safetensors", d / "voice.safetensors")
    return d


def speak(model_dir, *args):
    return main(["speak", "--config", str(model_dir / "config.json"), "--temp", "0", *map(str, args)])


def test_writes_the_speech_and_the_word_timings(model_dir, tmp_path, capsys):
    out, timings = tmp_path / "hello.wav", tmp_path / "words.json"
    voice = model_dir / "voice.safetensors"
    assert speak(model_dir, "hokopily qu zihogequ", "--voice", voice, "-o", out, "--timings", timings) == 0
    expected = make_tts(load_lm(model_dir / "tts.safetensors", model_dir / "config.json")).generate(
        ["hokopily qu zihogequ"], [voice], cfg=2.0
    )
    pcm, rate = sf.read(out)
    assert rate == 24000
    assert len(pcm) == expected.audio_codes.shape[-1] * 1920  # one 80 ms chunk per audio frame
    words = json.loads(timings.read_text())
    assert [(w["word"], w["start"], w["end"]) for w in words["words"]] == [
        (w.word, w.start, w.end) for w in expected.words
    ]
    assert words["seconds"] == len(pcm) / 24000
    assert "wrote" in capsys.readouterr().err


def test_lines_of_a_file_and_a_voice_from_the_hub(model_dir, tmp_path, monkeypatch):
    fake_hub_cache(
        tmp_path / "hub",
        monkeypatch,
        "kyutai/tts-voices",
        {"a/b.wav.tiny0000@1.safetensors": TTS_TINY / "voice.safetensors"},
    )
    script = tmp_path / "script.txt"
    script.write_text("hokopily qu\n\nmidaba sefaru\n")
    out = tmp_path / "dialogue.wav"
    assert speak(model_dir, "-i", script, "--voice", "a/b.wav", "--voice", "a/b.wav", "-o", out) == 0
    assert sf.info(out).frames > 0


def test_stream_reads_lines_as_they_come(model_dir, tmp_path, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("hokopily qu\nzihogequ\n"))
    out, timings = tmp_path / "streamed.wav", tmp_path / "words.json"
    voice = model_dir / "voice.safetensors"
    assert speak(model_dir, "--stream", "--voice", voice, "-o", out, "--timings", timings) == 0
    words = json.loads(timings.read_text())
    assert [w["word"] for w in words["words"]] == ["hokopily", "qu", "zihogequ"]
    assert sf.info(out).frames == round(words["seconds"] * 24000) > 0


@pytest.mark.parametrize(
    "args, match",
    [
        (["qu", "--voice", "nobody/here.wav"], "no voice 'nobody/here.wav'"),
        (["qu", "--cfg", "2.2"], "valid: 1.0, 1.5, 2.0"),
        (['qu <break time="5ms"/>'], "malformed break"),
        (["qu", "--n-q", "9"], r"n_q must be in \[1, 8\]"),
        (["   "], "no text to speak"),
        (["qu", "--voice", "nothere.safetensors"], "no such voice file: nothere.safetensors"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(model_dir, tmp_path, monkeypatch, capsys, args, match):
    fake_hub_cache(tmp_path / "hub", monkeypatch, "kyutai/tts-voices", {})
    out, timings = tmp_path / "out.wav", tmp_path / "t.json"
    assert speak(model_dir, *args, "-o", out, "--timings", timings) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("moshi speak: error:")
    assert re.search(match, err[0])
    assert not out.exists() and not timings.exists()


def test_an_existing_output_needs_force(model_dir, tmp_path, capsys):
    out = tmp_path / "out.wav"
    out.write_bytes(b"keep me")
    assert speak(model_dir, "qu", "-o", out) == 1
    assert "exists: use --force" in capsys.readouterr().err
    assert out.read_bytes() == b"keep me"
    assert speak(model_dir, "qu", "-o", out, "--force") == 0
    assert sf.info(out).frames > 0


def test_nothing_to_do_is_an_error(model_dir, capsys):
    assert speak(model_dir, "qu") == 1
    assert "-o FILE.wav and/or --play" in capsys.readouterr().err


def test_missing_folders_are_created_and_the_suffix_names_the_format(
    model_dir, tmp_path, capsys, monkeypatch
):
    clock = iter(range(0, 10**6, 100))  # each reading of the clock: 100 s later
    monkeypatch.setattr("moshi.cli.speak.time.perf_counter", lambda: next(clock))
    out, timings = tmp_path / "nodir" / "sub" / "s.flac", tmp_path / "other" / "w.json"
    assert speak(model_dir, "qu", "-o", out, "--timings", timings) == 0
    assert sf.info(out).format == "FLAC" and json.loads(timings.read_text())["words"]
    err = capsys.readouterr().err
    rtf = float(re.search(r"real-time factor ([\d.]+)", err).group(1))
    seconds = sf.info(out).duration
    assert rtf == pytest.approx(200 / seconds, abs=0.01)  # compute (start, first audio, end) over audio


def test_an_unknown_suffix_is_refused_before_work(model_dir, tmp_path, capsys):
    assert speak(model_dir, "qu", "-o", tmp_path / "x.xyz") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and ".wav, .flac, .ogg, .mp3" in err[0] and not (tmp_path / "x.xyz").exists()

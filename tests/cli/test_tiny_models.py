"""`moshi tiny-models DIR`: one command writes a model of every kind, deterministically, and
each job runs on its own with it (no download, no GPU) as the README shows."""

import soundfile as sf

from moshi.tiny import write_tiny_models
from tests.support.fixtures import files_under


def test_the_same_files_every_time(tmp_path):
    a, b = write_tiny_models(tmp_path / "a"), write_tiny_models(tmp_path / "b")
    assert sorted(a) == ["dialogue", "stt", "tts"]
    files = files_under(tmp_path / "a")
    assert [p.relative_to(tmp_path / "a") for p in files] == [
        p.relative_to(tmp_path / "b") for p in files_under(tmp_path / "b")
    ]
    assert all(p.read_bytes() == (tmp_path / "b" / p.relative_to(tmp_path / "a")).read_bytes() for p in files)
    assert a["tts"].parent.joinpath("voice.safetensors").is_file()
    assert b["stt"].is_file()


def test_every_job_runs_on_them(moshi, wav, tmp_path):
    root = tmp_path / "tiny"
    r = moshi("tiny-models", root)
    assert r.code == 0 and f"--config {root / 'stt' / 'config.json'}" in r.out
    cpu = ["--device", "cpu"]
    talk = wav(seconds=0.5)

    r = moshi("transcribe", talk, "--config", root / "stt" / "config.json", *cpu)
    assert r.code == 0, r.err
    r = moshi("infer", talk, "-o", tmp_path / "replies", "--max-tail", "0",
              "--config", root / "dialogue" / "config.json", *cpu)  # fmt: skip
    assert r.code == 0, r.err
    assert sf.info(tmp_path / "replies" / "talk.wav").frames > 0
    out = tmp_path / "hello.wav"
    r = moshi("speak", "qu", "--voice", root / "tts" / "voice.safetensors", "-o", out,
              "--config", root / "tts" / "config.json", *cpu)  # fmt: skip
    assert r.code == 0, r.err
    assert sf.info(out).frames > 0

"""Which model a command runs: `--model small` (the package's own), `--model tiny`, Kyutai's
flags, and with none of them, the small model of the job's kind on a machine without CUDA
when the package ships one (one line on stderr says so), else Kyutai's repo as before."""

import pytest
import torch

from moshi.cli import common
from moshi.models import ModelFiles
from moshi.small import model_folder

NOTE = "no model flag and no CUDA GPU"


@pytest.fixture
def looked_up(monkeypatch):
    """The repos the commands look models up in; no download (the lookup stops there), only
    the speech-to-text kind shipped, no CUDA GPU unless a test says so."""
    repos: list[str] = []

    def resolve(hf_repo=None, **files):
        repos.append(hf_repo)
        raise FileNotFoundError("stopped here")

    monkeypatch.setattr(ModelFiles, "resolve", staticmethod(resolve))
    monkeypatch.setattr(common, "shipped_kinds", lambda: ("stt",))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    return repos


def test_transcribe_runs_the_shipped_model(moshi, wav):
    r = moshi("transcribe", "--model", "small", wav(seconds=1.0), "--device", "cpu")
    assert r.code == 0, r.err
    assert r.out.strip() and NOTE not in r.err


def test_no_flag_without_cuda_is_the_small_model_and_says_so(moshi, wav, looked_up):
    r = moshi("transcribe", wav())
    assert r.code == 1 and looked_up == [str(model_folder("stt"))]
    note = [line for line in r.err.splitlines() if NOTE in line]
    assert len(note) == 1 and "--hf-repo kyutai/stt-1b-en_fr" in note[0]


@pytest.mark.parametrize(
    "flags",
    [["--hf-repo", "kyutai/stt-1b-en_fr"], ["--tokenizer", "t.model"], ["cuda"]],
    ids=["hf-repo", "another-flag", "cuda"],
)
def test_kyutai_flags_or_cuda_keep_kyutai(moshi, wav, looked_up, monkeypatch, flags):
    if flags == ["cuda"]:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        flags = []
    r = moshi("transcribe", wav(), *flags)
    assert r.code == 1 and looked_up == ["kyutai/stt-1b-en_fr"] and NOTE not in r.err


def test_a_kind_not_shipped_keeps_kyutai(moshi, tmp_path, looked_up):
    r = moshi("speak", "Hello.", "-o", tmp_path / "hello.wav")
    assert r.code == 1 and looked_up == ["kyutai/tts-1.6b-en_fr"] and NOTE not in r.err


@pytest.mark.parametrize("job", ["speak", "infer"])
def test_model_small_of_a_kind_not_shipped_is_one_line(moshi, wav, tmp_path, looked_up, job):
    io = ["Hello.", "-o", tmp_path / "hello.wav"] if job == "speak" else [wav(), "-o", tmp_path / "out"]
    r = moshi(job, *io, "--model", "small")
    assert r.code == 1 and looked_up == [] and len(r.err.strip().splitlines()) == 1
    kind, repo = (
        ("text-to-speech", "tts-1.6b-en_fr") if job == "speak" else ("dialogue", "moshiko-pytorch-bf16")
    )
    assert f"no small {kind} model is shipped yet" in r.err and f"--hf-repo kyutai/{repo}" in r.err


def test_model_and_hf_repo_are_one_line(moshi, wav, looked_up):
    r = moshi("transcribe", wav(), "--model", "small", "--hf-repo", "kyutai/stt-1b-en_fr")
    assert r.code == 1 and looked_up == [] and len(r.err.strip().splitlines()) == 1 and "give one" in r.err


def test_model_tiny_speaks_with_its_own_voice(moshi, tmp_path):
    r = moshi("speak", "qu", "-o", tmp_path / "hello.wav", "--model", "tiny", "--device", "cpu")
    assert r.code == 0, r.err
    assert (tmp_path / "hello.wav").stat().st_size > 44

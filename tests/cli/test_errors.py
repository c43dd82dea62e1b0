"""Every bad input: a non-zero exit code, one line on stderr, and nothing written."""

import numpy as np
import pytest
import soundfile as sf

from tests.support.fixtures import files_under


@pytest.fixture
def bad(tmp_path, wav):
    """Input files of every kind, and an output folder holding one existing file."""
    (tmp_path / "notes.txt").write_text("not audio")
    sf.write(tmp_path / "empty.wav", np.zeros((0, 1)), 24000)
    out = tmp_path / "out"
    out.mkdir()
    (out / "talk.wav").write_bytes(b"existing")
    (out / "talk.json").write_bytes(b"existing")
    (out / "existing.txt").write_text("existing")
    return {
        "good": wav(),
        "other": wav("other.wav"),
        "missing": tmp_path / "missing.wav",
        "folder": tmp_path / "in",
        "text": tmp_path / "notes.txt",
        "empty": tmp_path / "empty.wav",
        "out": out,
    }


def snapshot(path):
    return {p: p.read_bytes() for p in files_under(path)}


# (name, the command line, with {placeholders} from the `bad` fixture; words of the message)
CASES = [
    ("missing input", "transcribe {missing}", "no such file"),
    ("folder input", "infer {folder} -o {out}/new", "not a file"),
    ("not audio", "transcribe {good} {text}", "not an audio file"),
    ("empty audio", "infer {empty} -o {out}/new", "no audio"),
    ("chat: not audio", "chat --input-file {text} --output-file {out}/o.wav", "not an audio file"),
    ("infer output exists", "infer {good} -o {out}", "--force"),
    ("transcribe output exists", "transcribe {good} -o {out}/existing.txt", "--force"),
    ("chat output exists", "chat --input-file {good} --output-file {out}/talk.wav", "--force"),
    ("save exists", "chat --input-file {good} --output-file {out}/n.wav --save {out}/talk.json", "force"),
    ("output folder is a file", "infer {good} -o {out}/existing.txt", "is a file"),
    ("same names", "transcribe {good} {good} -o {out}/t", "same outputs"),
    ("unknown format", "transcribe {good} --format xml", "invalid choice"),
    ("unknown dtype", "infer {good} -o {out}/n --dtype float8", "invalid choice"),
    ("unknown device", "transcribe {good} --device tpu", "device"),
    ("cpu with an index", "transcribe {good} --device cpu:3", "the CPU has no index"),
    ("mistyped config path", "transcribe {good} --config nothere.json", "no such file: nothere.json"),
    ("mistyped weights path", "infer {good} -o {out}/n --moshi-weight ./w.safetensors", "no such file"),
    ("a file for several inputs", "transcribe {good} {other} -o {out}/single.txt", "need a folder"),
    ("output folder cannot be made", "infer {good} -o /proc/moshi-x/", "cannot create the folder"),
    ("port out of range", "serve --port 80000", "--port must be 0 to 65535"),
    ("not a number", "infer {good} -o {out}/n --temp hot", "invalid float"),
    ("bad temperature", "infer {good} -o {out}/n --temp 9", "--temp must"),
    ("bad top-k", "chat --input-file {good} --output-file {out}/n.wav --top-k-text -2", "--top-k-text must"),
    ("bad seed", "infer {good} -o {out}/n --seed -1", "--seed must"),
    ("bad batch size", "transcribe {good} --batch-size 0", "--batch-size"),
    ("bad tail", "infer {good} -o {out}/n --max-tail -1", "--max-tail"),
    ("half a file seam", "chat --input-file {good}", "go together"),
    ("bad url", "chat --url ftp://host --input-file {good} --output-file {out}/n.wav", "ws://"),
    ("no input", "infer -o {out}/n", "required"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case, bad, moshi, dialogue_model, stt_model):
    _, command, message = case
    job, *rest = (word.format(**bad) for word in command.split())
    args = [job, *(stt_model if job == "transcribe" else dialogue_model), *rest]  # the case's flags win
    before = snapshot(bad["out"].parent)
    r = moshi(*args)
    assert r.code != 0
    assert r.out == ""
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"moshi {args[0]}: error: "), r.err
    assert message in lines[0]
    assert snapshot(bad["out"].parent) == before, "nothing written"


@pytest.mark.parametrize("job", ["infer", "chat", "transcribe"])
def test_a_model_that_does_not_fit_the_job(job, bad, moshi, dialogue_model, stt_model):
    wrong = dialogue_model if job == "transcribe" else stt_model
    io = {
        "infer": [bad["good"], "-o", bad["out"] / "new"],
        "chat": ["--input-file", bad["good"], "--output-file", bad["out"] / "new.wav"],
        "transcribe": [bad["good"], "-o", bad["out"] / "new.txt"],
    }[job]
    before = snapshot(bad["out"].parent)
    r = moshi(job, *io, *wrong)
    assert r.code == 1 and r.out == "" and len(r.err.strip().splitlines()) == 1
    expected = "not a speech-to-text model" if job == "transcribe" else "use `moshi transcribe`"
    assert expected in r.err
    assert snapshot(bad["out"].parent) == before


def test_missing_model_files_are_one_line(bad, moshi, tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # no network in tests
    config = tmp_path / "config.json"
    config.write_text('{"moshi_name": "nowhere.safetensors"}')
    r = moshi("infer", bad["good"], "-o", bad["out"] / "new", "--config", config)
    assert r.code == 1 and len(r.err.strip().splitlines()) == 1 and "nowhere.safetensors" in r.err


def test_tracebacks_only_with_debug(bad, moshi, dialogue_model):
    with pytest.raises(Exception, match="no such file"):
        moshi("--debug", "infer", bad["missing"], "-o", bad["out"] / "n", *dialogue_model)


def test_a_port_in_use_is_found_before_the_model_loads(moshi, monkeypatch):
    import socket

    from moshi.cli import serve

    monkeypatch.setattr(serve, "model_files", lambda args: pytest.fail("the model was looked up first"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        r = moshi("serve", "--port", taken.getsockname()[1], "--device", "cpu")
    assert r.code == 1 and "cannot listen on 127.0.0.1:" in r.err and len(r.err.strip().splitlines()) == 1

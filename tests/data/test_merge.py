"""`moshi data merge`: builds read as one corpus, in order, with absolute paths; builds of
another grammar refused before anything is written."""

import json

import pytest

from moshi.cli.main import main
from moshi.data.merge import SHARED_FILES, merge_corpora


def fake_build(root, name, files, grammar="public <s> = hello;\n"):
    """A folder laid out as `moshi data build` writes it: `files` {(split, kind): n} of 1 s."""
    build = root / name
    for (split, kind), n in files.items():
        (build / split / kind).mkdir(parents=True)
        rows = [{"path": f"{kind}/{i:06d}.wav", "duration": 1.0} for i in range(n)]
        (build / split / f"{kind}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        for i in range(n):
            (build / split / kind / f"{i:06d}.wav").write_bytes(b"")
    for shared in SHARED_FILES:
        (build / shared).write_text(grammar if shared == "grammar.jsgf" else shared)
    (build / "corpus.json").write_text("{}")
    return build


def paths(manifest):
    return [json.loads(line)["path"] for line in manifest.read_text().splitlines()]


def test_manifests_in_order_with_absolute_paths(tmp_path):
    a = fake_build(tmp_path, "a", {("train", "stt"): 2, ("train", "tts"): 1, ("heldout", "stt"): 1})
    b = fake_build(tmp_path, "b", {("train", "stt"): 1, ("train", "tts"): 2, ("train", "dialogues"): 1})
    summary = merge_corpora(tmp_path / "all", [a, b])
    out = tmp_path / "all"
    assert paths(out / "train" / "stt.jsonl") == [
        str(a / "train/stt/000000.wav"), str(a / "train/stt/000001.wav"), str(b / "train/stt/000000.wav")
    ]  # fmt: skip
    mono = paths(out / "train" / "mono.jsonl")  # each build's stt, then its tts
    assert [p.removeprefix(str(tmp_path) + "/") for p in mono] == [
        "a/train/stt/000000.wav", "a/train/stt/000001.wav", "a/train/tts/000000.wav",
        "b/train/stt/000000.wav", "b/train/tts/000000.wav", "b/train/tts/000001.wav",
    ]  # fmt: skip
    assert paths(out / "heldout" / "stt.jsonl") == [str(a / "heldout/stt/000000.wav")]
    assert paths(out / "heldout" / "dialogues.jsonl") == []
    users = [json.loads(line) for line in (out / "train" / "users.jsonl").read_text().splitlines()]
    assert users == [{"path": str(b / "train/dialogues/000000.wav"), "duration": 1.0, "channel": 1}]
    assert summary["hours"]["train/mono.jsonl"] == round(6 / 3600, 4)
    assert summary["total_hours"] == round(8 / 3600, 4)  # mono.jsonl counted once, in stt and tts
    assert summary["merged"] == [str(a), str(b)]
    assert all((out / name).read_bytes() == (a / name).read_bytes() for name in SHARED_FILES)
    again = merge_corpora(tmp_path / "again", [out])  # a merged corpus merges again, unchanged
    assert paths(tmp_path / "again" / "train" / "mono.jsonl") == mono
    assert again["total_hours"] == summary["total_hours"]


def test_builds_of_another_grammar_are_refused_before_writing(tmp_path):
    a = fake_build(tmp_path, "a", {("train", "stt"): 1})
    b = fake_build(tmp_path, "b", {("train", "stt"): 1}, grammar="public <s> = goodbye;\n")
    with pytest.raises(ValueError, match=r"grammar\.jsgf differs between .*a and .*b"):
        merge_corpora(tmp_path / "all", [a, b])
    with pytest.raises(ValueError, match="given twice"):
        merge_corpora(tmp_path / "all", [a, a])
    with pytest.raises(ValueError, match="not a corpus made by `moshi data build`"):
        merge_corpora(tmp_path / "all", [a, tmp_path])
    held = fake_build(tmp_path, "held", {("heldout", "stt"): 1})
    (held / "corpus.json").write_text(json.dumps({"args": {"splits": ["heldout"]}}))
    with pytest.raises(ValueError, match="heldout split alone"):
        merge_corpora(tmp_path / "all", [a, held])
    assert not (tmp_path / "all").exists()


def test_the_command_keeps_a_merged_corpus_unless_forced(tmp_path, capsys):
    a = fake_build(tmp_path, "a", {("train", "stt"): 1})
    out = str(tmp_path / "all")
    assert main(["data", "merge", out, str(a)]) == 0
    assert json.loads(capsys.readouterr().out)["mono_train_hours"] == round(1 / 3600, 4)
    assert main(["data", "merge", out, str(a)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "not empty" in err and "--force" in err
    assert main(["data", "merge", out, str(a), "--force"]) == 0

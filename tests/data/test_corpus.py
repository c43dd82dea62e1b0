"""A tiny corpus built for real: files in the training format, words where the audio says,
manifests right, held-out sentences held out."""

import itertools
import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from moshi.audio import SAMPLE_RATE
from moshi.data.build import build_corpus
from moshi.data.dialogue import SPEAKER_MAIN, SPEAKER_USER
from moshi.data.grammar import is_heldout
from moshi.data.synth import FAST_MOSHI_VOICE

pytestmark = pytest.mark.skipif(
    not (shutil.which("espeak-ng") and shutil.which("flite") and shutil.which("sox")),
    reason="needs espeak-ng, flite and sox (./install.sh installs them as root)",
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    # Moshi in flite's slt (festival takes seconds to start); 2 dialogues, 3 + 2 utterances.
    build_corpus(out, seed=1, n_dialogues=2, n_utterances=3, n_tts=2, heldout_fraction=0.5,
                 moshi_voice=FAST_MOSHI_VOICE, workers=2)  # fmt: skip
    return out


def _entries(corpus, split, kind):
    for line in (corpus / split / f"{kind}.jsonl").read_text().splitlines():
        row = json.loads(line)
        wav = corpus / split / row["path"]
        pcm, rate = sf.read(wav, dtype="float32", always_2d=True)
        yield row, pcm, rate, json.loads(wav.with_suffix(".json").read_text())


def test_layout_manifests_and_alignments(corpus):
    summary = json.loads((corpus / "corpus.json").read_text())
    assert summary["total_hours"] > 0
    for name in ("grammar.jsgf", "vocab.txt", "lexicon.dic"):
        assert (corpus / name).stat().st_size > 0
    counts = {}
    for split in ("train", "heldout"):
        for kind in ("dialogues", "stt", "tts"):
            entries = list(_entries(corpus, split, kind))
            counts[split, kind] = len(entries)
            for row, pcm, rate, meta in entries:
                assert rate == SAMPLE_RATE and pcm.shape[1] == (2 if kind == "dialogues" else 1)
                assert row["duration"] == pytest.approx(len(pcm) / SAMPLE_RATE, abs=1e-6)
                spans = [span for _, span, _ in meta["alignments"]]
                assert all(0 <= s < e <= row["duration"] for s, e in spans)
                assert [s for s, _ in spans] == sorted(s for s, _ in spans)
                if kind != "dialogues":
                    assert [w for w, _, _ in meta["alignments"]] == meta["text"].split()
                    assert is_heldout(meta["text"]) == (split == "heldout")
    assert counts == {(s, k): 1 for s in ("train", "heldout") for k in ("dialogues", "tts")} | {
        ("train", "stt"): 1, ("heldout", "stt"): 2,
    }  # fmt: skip


def test_dialogue_channels_and_speakers(corpus):
    for split in ("train", "heldout"):
        for _, pcm, _, meta in _entries(corpus, split, "dialogues"):
            moshi = [(w, s) for w, s, who in meta["alignments"] if who == SPEAKER_MAIN]
            user = [w for w, _, who in meta["alignments"] if who == SPEAKER_USER]
            assert len(moshi) + len(user) == len(meta["alignments"])
            said = (meta["greeting"] or "").split() + [
                w for ex in meta["exchanges"] for w in ex["answer"].split()
            ]
            it = iter(said)  # Moshi's words in order (an interrupted answer loses its tail)
            assert all(w in it for w, _ in moshi)
            questions = iter(w for ex in meta["exchanges"] for w in ex["question"].split())
            assert [w for w in user if w in questions] or not meta["exchanges"]
            if split == "train":
                assert not any(
                    is_heldout(ex["question"]) or is_heldout(ex["answer"]) for ex in meta["exchanges"]
                )
            else:
                assert all(is_heldout(ex["question"]) for ex in meta["exchanges"])
            # Moshi's channel is its voice alone: silent (to wav precision) outside its words.
            left = pcm[:, 0]
            inside = np.zeros(len(left), bool)
            for _, (s, e) in moshi:
                inside[round(s * SAMPLE_RATE) : round(e * SAMPLE_RATE)] = True
            assert np.abs(left[~inside]).max() < 1e-3
            assert np.abs(left[inside]).max() > 0.05


def test_word_times_hold_the_speech(corpus):
    """In Moshi's clean utterances, every word's span is loud and the pauses between are silent."""
    for split in ("train", "heldout"):
        for _, pcm, _, meta in _entries(corpus, split, "tts"):
            x = pcm[:, 0]
            spans = [(round(s * SAMPLE_RATE), round(e * SAMPLE_RATE)) for _, (s, e), _ in meta["alignments"]]
            for s, e in spans:
                assert np.sqrt(np.mean(x[s:e] ** 2)) > 0.01
            gaps = [x[e1:s2] for (_, e1), (s2, _) in itertools.pairwise(spans)]
            gaps += [x[: spans[0][0]], x[spans[-1][1] :]]
            assert max(np.abs(g).max(initial=0.0) for g in gaps) < 1e-3


def test_refuses_a_non_empty_directory(corpus):
    with pytest.raises(FileExistsError, match="not empty"):
        build_corpus(corpus, n_dialogues=1, n_utterances=1)


def test_cli_refuses_a_non_empty_directory_in_one_line(corpus, capsys):
    from moshi.cli.main import main

    assert main(["data", "build", str(corpus), "--dialogues", "1"]) == 1
    err = capsys.readouterr().err.strip()
    assert "not empty" in err and "--force" in err and len(err.splitlines()) == 1


def test_a_text_only_build_is_the_same_words_without_audio(corpus, tmp_path):
    out = tmp_path / "text"
    build_corpus(out, seed=1, n_dialogues=2, n_utterances=3, n_tts=2, heldout_fraction=0.5,
                 moshi_voice=FAST_MOSHI_VOICE, workers=2, text_only=True)  # fmt: skip
    assert not list(out.rglob("*.wav"))
    for split in ("train", "heldout"):
        audio = (corpus / split / "dialogues.jsonl").read_text().splitlines()
        text = (out / split / "dialogues.jsonl").read_text().splitlines()
        assert [json.loads(x)["path"].replace(".wav", ".json") for x in audio] == [
            json.loads(x)["path"] for x in text
        ]
        for a, t in zip(audio, text, strict=True):
            assert json.loads(a)["duration"] == json.loads(t)["duration"]
            path = json.loads(t)["path"]
            assert (out / split / path).read_text() == (corpus / split / path).read_text()
        users = [json.loads(x) for x in (corpus / split / "users.jsonl").read_text().splitlines()]
        assert users == [{**json.loads(x), "channel": 1} for x in audio]  # the dialogues' right channels
        assert (out / split / "users.jsonl").read_text() == ""  # text-only items have no channels


def test_the_held_out_split_built_alone_is_the_full_builds(corpus, tmp_path):
    out = tmp_path / "held"
    summary = build_corpus(out, seed=1, n_dialogues=2, n_utterances=3, n_tts=2, heldout_fraction=0.5,
                           moshi_voice=FAST_MOSHI_VOICE, workers=2, splits=("heldout",))  # fmt: skip
    assert not (out / "train").exists() and summary["args"]["splits"] == ["heldout"]
    assert sorted(summary["voices"]) == ["heldout"]
    full = sorted(p.relative_to(corpus) for p in (corpus / "heldout").rglob("*") if p.is_file())
    assert full == sorted(p.relative_to(out) for p in (out / "heldout").rglob("*") if p.is_file())
    for path in full:  # the same bytes: audio, alignments, manifests
        assert (out / path).read_bytes() == (corpus / path).read_bytes(), path
    with pytest.raises(ValueError, match="expected splits among"):
        build_corpus(tmp_path / "none", n_dialogues=1, n_utterances=1, splits=("test",))

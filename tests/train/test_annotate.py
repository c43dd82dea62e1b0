"""annotate: each channel of each file transcribed by the speech-to-text model on its own,
written as moshi-finetune's alignments json, ready for LMDataset."""

import json

import numpy as np
import pytest
import soundfile as sf

from moshi.codec import load_mimi
from moshi.lm.loading import load_lm
from moshi.lm.text import TextTokenizer
from moshi.stt import SttTiming, transcribe_batch
from moshi.train.alignments import read_alignments
from moshi.train.annotate import annotate
from moshi.train.dataset import LMDataset
from tests.helpers import FIXTURES

from .conftest import SR, STT_CONFIG, manifest


@pytest.fixture(scope="module")
def stt():
    """(model, mimi with 32 codebooks, tokenizer) of the tiny speech-to-text model."""
    d = FIXTURES / "mimi_tiny"
    mimi = load_mimi(d / "weights.safetensors", d / "config.json", num_codebooks=32)
    lm = load_lm(FIXTURES / "stt_lm_tiny" / "weights.safetensors", FIXTURES / "stt_lm_tiny" / "config.json")
    return lm, mimi, TextTokenizer(FIXTURES / "tiny_spm_100.model")


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    pcm, sr = sf.read(FIXTURES / "hello_24k.wav", dtype="float32")
    assert sr == SR
    return pcm


def test_each_channel_is_its_own_speaker(tmp_path, stt, speech):
    lm, mimi, tok = stt
    left, right = speech[: 2 * SR], speech[3 * SR : 5 * SR]
    (tmp_path / "data").mkdir()
    stereo, mono = tmp_path / "data" / "talk.wav", tmp_path / "data" / "solo.wav"
    sf.write(stereo, np.stack([left, right], axis=1), SR)
    sf.write(mono, right, SR)
    report = annotate(manifest(tmp_path, [stereo, mono]), lm, mimi, tok, STT_CONFIG)
    assert report.written == [stereo.with_suffix(".json"), mono.with_suffix(".json")]
    doc = json.loads(stereo.with_suffix(".json").read_text())
    assert set(doc) == {"alignments"} and all(len(a) == 3 and len(a[1]) == 2 for a in doc["alignments"])
    words = read_alignments(stereo.with_suffix(".json"))
    assert [w.start for w in words] == sorted(w.start for w in words)
    assert all(0 <= w.start <= w.end <= 2.0 for w in words)
    # Each channel gets what the project's speech-to-text finds in it alone.
    timing = SttTiming.from_config(STT_CONFIG)
    for speaker, pcm in (("SPEAKER_MAIN", left), ("SPEAKER_OTHER", right)):
        ours = [(w.text, w.start) for w in words if w.speaker == speaker]
        (alone,) = transcribe_batch(lm, mimi, [pcm], tok, timing)
        assert ours and ours == [(w.text, w.start) for w in alone.words]
    solo = read_alignments(mono.with_suffix(".json"))
    assert solo and {w.speaker for w in solo} == {"SPEAKER_MAIN"}
    other = [(w.text, w.start) for w in words if w.speaker == "SPEAKER_OTHER"]
    assert [(w.text, w.start) for w in solo] == other


def test_existing_files_are_kept_and_bad_audio_skipped(tmp_path, stt, speech, caplog):
    lm, mimi, tok = stt
    (tmp_path / "data").mkdir()
    done, bad = tmp_path / "data" / "done.wav", tmp_path / "data" / "bad.wav"
    sf.write(done, speech[:SR], SR)
    done.with_suffix(".json").write_text('{"alignments": []}')
    bad.write_bytes(b"RIFF nonsense")
    report = annotate(manifest(tmp_path, [done, bad]), lm, mimi, tok, STT_CONFIG)
    assert report.kept == [done.with_suffix(".json")] and not report.written
    assert dict(report.skipped) == {"unreadable audio": 1} and not bad.with_suffix(".json").exists()
    assert any("bad.wav" in r.getMessage() for r in caplog.records)
    report = annotate(manifest(tmp_path, [done]), lm, mimi, tok, STT_CONFIG, overwrite=True)
    assert report.written == [done.with_suffix(".json")] and read_alignments(done.with_suffix(".json"))
    with pytest.raises(ValueError, match="negative"):
        annotate(manifest(tmp_path, [done]), lm, mimi, tok, {"audio_delay_seconds": -1.0})


def test_annotated_dialogue_trains(tmp_path, stt, speech, mimi, configs):
    lm, stt_mimi, tok = stt
    (tmp_path / "data").mkdir()
    path = tmp_path / "data" / "talk.wav"
    sf.write(path, np.stack([speech[: 2 * SR], speech[3 * SR : 5 * SR]], axis=1), SR)
    jsonl = manifest(tmp_path, [path])
    annotate(jsonl, lm, stt_mimi, tok, STT_CONFIG)
    ds = LMDataset(jsonl, mimi, tok, configs["dialogue"], duration_sec=1.0, cache_dir=tmp_path / "cache")
    assert not ds.skipped and len(ds) == 1  # 25 frames: one crop of 13
    main = [w for w in ds.files[0].words if w.speaker == "SPEAKER_MAIN"]
    assert main and ds[0].shape == (17, 13)

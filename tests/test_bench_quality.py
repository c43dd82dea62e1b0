"""CI's smoke run of the quality benchmark: a tiny corpus, the recogniser on its held-out
files, and the tiny codec's round trip (word error rates, their ratio, STOI)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.fixtures import MIMI_TINY

BENCH = Path(__file__).resolve().parent.parent / "bench" / "quality.py"
pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("flite") is None, reason="needs espeak-ng and flite"
)


def test_quality_bench_smoke(tmp_path):
    pytest.importorskip("pocketsphinx")
    from moshi.data.build import build_corpus
    from moshi.data.synth import FAST_MOSHI_VOICE

    build_corpus(tmp_path / "corpus", seed=2, n_dialogues=1, n_utterances=2, n_tts=2, heldout_fraction=0.5,
                 moshi_voice=FAST_MOSHI_VOICE, workers=1)  # fmt: skip
    cmd = [sys.executable, str(BENCH), str(tmp_path / "corpus"), "--limit", "1",
           "--codec", str(MIMI_TINY / "weights.safetensors"), str(MIMI_TINY / "config.json")]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    wer = [x for x in lines if x["metric"] == "recogniser_wer"]
    assert sorted((x["audio"], x["manifest"]) for x in wer) == [
        ("codec", "heldout/stt.jsonl"), ("codec", "heldout/tts.jsonl"),
        ("original", "heldout/stt.jsonl"), ("original", "heldout/tts.jsonl"),
    ]  # fmt: skip
    assert all(x["files"] == 1 and x["words"] > 0 and x["wer"] >= 0 for x in wer)
    codec = [x for x in lines if x["metric"] == "codec"]
    assert len(codec) == 2 and all(-1 <= x["stoi_mean"] <= 1 and x["wer_ratio"] >= 0 for x in codec)

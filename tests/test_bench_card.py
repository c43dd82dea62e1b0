"""CI's smoke run of the model card's one command: tiny held-out sets built by it, the shipped
family through every bench, one JSON line per figure of the card and the table in card.md."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "card.py"
pytestmark = pytest.mark.skipif(
    not all(shutil.which(x) for x in ("espeak-ng", "flite", "festival", "sox")),
    reason="needs espeak-ng, flite, festival and sox (./install.sh installs them as root)",
)


def test_card_smoke(tmp_path):
    pytest.importorskip("pocketsphinx")
    out = tmp_path / "card"
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--smoke", "--out", str(out), "--workers", "2"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(rows) == 21 and all(r["bench"] == "card" for r in rows)
    assert {r["model"] for r in rows} == {"codec", "speech-to-text", "text-to-speech", "dialogue", "all"}
    for r in rows:
        # one file each: the synthesiser's own rendering may be read without an error, and the
        # ratio over it is then undefined; everything else is measured
        if r["value"] is None:
            assert r["measure"].startswith("pocketsphinx WER ratio (ours")
            continue
        assert r["value"] >= 0
        if r["bar"] is not None:
            op, bar = r["bar"].split()
            assert r["met"] == (r["value"] <= float(bar) if op == "<=" else r["value"] >= float(bar))
        else:
            assert r["met"] is None
    assert (out / "corpus" / "heldout" / "stt.jsonl").is_file() and not (out / "corpus" / "train").exists()
    card = (out / "card.md").read_text().splitlines()
    assert len([x for x in card if x.startswith("| ")]) == 1 + len(rows)
    assert card[-1].startswith("Weights: codec step")

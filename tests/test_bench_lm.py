"""CI's smoke run of the LM benchmark: it runs and prints well-formed JSON lines, including
the pass-through and ratio lines of a (fake) reference."""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "lm.py"

FAKE_REFERENCE = """
import json, sys
assert sys.argv[1] == "lm-small"
print(json.dumps(dict(bench="lm-small", impl="fake", step_ms=30.0, params_m=105.2, threads=2)))
"""
FAKE_RING_REFERENCE = """
import json, sys
assert sys.argv[1:5] == ["--warmup", "505", "--steps", "3"] and sys.argv[5] == "--reference-script"
print(json.dumps(dict(bench="lm-small", impl="fake", warmup=505, step_ms=40.0, threads=2)))
"""


def run_bench(tmp_path, *extra):
    fake = tmp_path / "bench_reference.py"
    fake.write_text(FAKE_REFERENCE)
    ring = tmp_path / "reference_lm.py"
    ring.write_text(FAKE_RING_REFERENCE)
    out = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--smoke",
            "--reference",
            sys.executable,
            "--reference-script",
            str(fake),
            "--reference-ring-script",
            str(ring),
            "--threads",  # a smoke: the output's shape, not speed; 2 threads beside a busy core crawl
            "1",
            *extra,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=180,
    )
    lines = {}
    for text in out.stdout.splitlines():
        line = json.loads(text)
        lines[(line["bench"], line.get("impl"))] = line
    return lines


def test_lm_bench_smoke(tmp_path):
    lines = run_bench(tmp_path, "--repeat", "2")
    ours = lines[("lm-small", "ours")]
    assert ours["step_ms"] > 0 and ours["params_m"] == 105.2 and ours["runs"] == 2
    assert ours["floor_ms"] > 0 and ours["floor_ratio"] > 0  # the memory floor beside it
    assert lines[("lm-small-int8", "ours")]["weight_mb"] < ours["weight_mb"]
    assert lines[("lm-small", "fake")]["runs"] == 2
    assert lines[("lm-small-int8", "ours")]["step_ms"] > 0
    ratio = lines[("lm-small-ratio", None)]
    assert abs(ratio["speedup"] - 30.0 / ratio["ours_ms"]) < 0.01
    assert ("lm-small-int8-ratio", None) in lines and ("lm-small-full-ring", "ours") not in lines


def test_lm_bench_full_ring(tmp_path):
    """With --full-ring both sides are also timed past the KV ring's 500 slots."""
    lines = run_bench(tmp_path, "--full-ring")
    assert lines[("lm-small-full-ring", "ours")]["warmup"] == 505
    assert lines[("lm-small-full-ring", "fake")]["step_ms"] == 40.0
    ratio = lines[("lm-small-full-ring-ratio", None)]
    assert abs(ratio["speedup"] - 40.0 / ratio["ours_ms"]) < 0.01

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


def test_lm_bench_smoke(tmp_path):
    fake = tmp_path / "bench_reference.py"
    fake.write_text(FAKE_REFERENCE)
    out = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--smoke",
            "--reference",
            sys.executable,
            "--reference-script",
            str(fake),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    lines = {}
    for text in out.stdout.splitlines():
        line = json.loads(text)
        lines[(line["bench"], line.get("impl"))] = line
    ours = lines[("lm-small", "ours")]
    assert ours["step_ms"] > 0 and ours["params_m"] == 105.2
    assert lines[("lm-small-int8", "ours")]["step_ms"] > 0
    ratio = lines[("lm-small-ratio", None)]
    assert abs(ratio["speedup"] - 30.0 / ratio["ours_ms"]) < 0.01
    assert ("lm-small-int8-ratio", None) in lines and ("lm-small", "fake") in lines

"""CI's smoke run of bench/linear.py: well-formed JSON lines, one per dtype and row count,
naming every formulation and the one chosen."""

import json
import subprocess
import sys
from pathlib import Path

from moshi.nn import small_rows

BENCH = Path(__file__).resolve().parent.parent / "bench" / "linear.py"


def test_linear_bench_smoke():
    cmd = [sys.executable, str(BENCH), "--smoke", "--threads", "1", "--rows", "1", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(line["dtype"], line["rows"]) for line in lines] == [
        ("float32", 1), ("float32", 2), ("bfloat16", 1), ("bfloat16", 2)
    ]  # fmt: skip
    for line in lines:
        assert set(line["gbs"]) == set(small_rows.FORMS) and min(line["gbs"].values()) > 0
        assert line["chosen"] in small_rows.FORMS

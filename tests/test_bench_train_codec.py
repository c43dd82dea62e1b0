"""CI's smoke run of the codec training benchmark: it runs and prints well-formed JSON lines."""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "train_codec.py"
KEYS = {
    "bench",
    "preset",
    "params_m",
    "batch",
    "seconds",
    "discriminator",
    "step_s",
    "frames_per_s",
    "rtf_train",
}


def test_train_codec_bench_smoke():
    cmd = [sys.executable, str(BENCH), "--smoke", "--threads", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [line["discriminator"] for line in lines] == [False, True]
    for line in lines:
        assert line.keys() >= KEYS and line["bench"] == "codec-train"
        assert line["frames_per_s"] > 0 and line["step_s"] > 0

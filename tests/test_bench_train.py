"""CI's smoke run of the training benchmark: it runs and prints well-formed JSON lines."""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "train.py"


def test_train_bench_smoke():
    cmd = [sys.executable, str(BENCH), "--smoke", "--threads", "1", "--rank", "8", "--lora-only"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(x["bench"], x["mode"]) for x in lines] == [("train-lm-small", "lora")]
    (lora,) = lines
    assert 105.2 < lora["params_m"] < 108 and 0 < lora["trainable_m"] < 3  # rank 8 adapters
    assert lora["step_s"] > 0 and lora["frames_per_s"] > 0
    assert abs(lora["frames_per_s"] * lora["step_s"] - 13) < 0.1  # batch 1 x 1 s = 13 frames
    assert abs(lora["tokens_per_s"] - 17 * lora["frames_per_s"]) < 0.01 * lora["tokens_per_s"] + 1

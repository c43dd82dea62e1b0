"""CI's smoke run of the TTS benchmark: it runs fast and prints well-formed JSON lines."""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "tts.py"
FIELDS = {"bench", "impl", "device", "dtype", "batch", "threads", "params_m", "delay_steps"}
FIELDS |= {"ttfa_ms", "audio_s", "step_ms", "rtf", "throughput", "words"}


def test_tts_bench_smoke():
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--smoke", "--threads", "1", "--batch", "1", "2"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(x["bench"], x["batch"]) for x in lines] == [("tts-tiny", 1), ("tts-tiny", 2)]
    for line in lines:
        assert set(line) == FIELDS
        assert line["ttfa_ms"] > 0 and line["audio_s"] > 0 and line["rtf"] > 0

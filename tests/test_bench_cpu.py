"""CI's smoke run of bench/cpu.py: it runs in seconds without Kyutai's venv, and every line
carries its figures, the floor beside them, its goal and whether it passes, and the machine."""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "cpu.py"
COMMON = {"bench", "machine", "threads", "goal", "weight_mb", "bandwidth_gbs", "floor_ms", "floor_ratio"}
FIELDS = {
    "stt-1b-en_fr": COMMON | {"precision", "frame_ms", "encode_ms", "step_ms", "passed"},
    "tts-1.6b-en_fr": COMMON | {"precision", "batch", "n_q", "ttfa_ms", "frame_ms", "rtf", "passed"},
    "mimi-stream": COMMON | {"codebooks", "frame_ms", "encode_ms", "decode_ms", "reference", "passed_floor"},
    "lm-small": COMMON | {"step_ms", "reference", "passed_floor"},
}


def test_cpu_bench_smoke():
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--smoke", "--threads", "1"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(x["bench"], x.get("precision")) for x in lines] == [
        ("stt-1b-en_fr", "float32"),
        ("stt-1b-en_fr", "bfloat16"),
        ("stt-1b-en_fr", "int8"),
        ("tts-1.6b-en_fr", "float32"),
        ("tts-1.6b-en_fr", "bfloat16"),
        ("tts-1.6b-en_fr", "int8"),
        ("mimi-stream", None),
        ("lm-small", None),
    ]
    for line in lines:
        assert FIELDS[line["bench"]] <= line.keys(), line
        assert line["threads"] == 1 and line["machine"]
        assert line["weight_mb"] > 0 and line["floor_ms"] > 0 and line["floor_ratio"] > 0
        assert isinstance(line.get("passed"), bool)
    for line in lines[-2:]:  # no reference in a smoke run, and the line says so
        assert line["reference"].startswith("skipped") and "speedup" not in line
    int8, float32 = lines[2], lines[0]
    assert int8["weight_mb"] < float32["weight_mb"]  # the floor counts the bytes of the int8 weights


def test_mimi_profile_smoke():
    """bench/mimi_profile.py: one line per module of a streaming frame, each with its
    floors, then a total; the shares of the frame add up to one."""
    script = BENCH.parent / "mimi_profile.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--smoke", "--threads", "1"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    modules, total = lines[:-1], lines[-1]
    assert total["bench"] == "mimi-profile-total" and total["frame_ms"] > 0 and total["floor_ms"] > 0
    assert {"encoder_transformer", "decoder_transformer", "other"} <= {m["module"] for m in modules}
    for m in modules:
        assert {"ms", "share", "weight_mb", "mflop", "memory_floor_ms", "compute_floor_ms"} <= m.keys()
    assert abs(sum(m["share"] for m in modules) - 1) < 0.02
    assert any(m["mflop"] > 0 for m in modules) and any(m["weight_mb"] > 0 for m in modules)

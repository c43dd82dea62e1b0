"""CI's smoke run of the codec benchmark: it runs, and prints well-formed JSON lines,
including the pass-through and ratio lines of a (fake) reference."""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "codec.py"

FAKE_REFERENCE = """
import json, sys
times = {"mimi-stream": dict(encode_ms=20.0, decode_ms=25.0, rtf=0.56),
         "mimi-offline": dict(seconds=10, encode_s=1.0, decode_s=1.0, rtf=0.2)}
print(json.dumps(dict(bench=sys.argv[1], impl="fake", **times[sys.argv[1]])))
"""

EXPECTED = {
    "mimi-stream": {"impl", "frames", "encode_ms", "decode_ms", "rtf", "threads", "floor_ms", "floor_ratio"},
    "mimi-offline": {"impl", "seconds", "encode_s", "decode_s", "rtf", "threads"},
    "mimi-stream-int8": {
        "impl",
        "frames",
        "encode_ms",
        "decode_ms",
        "rtf",
        "threads",
        "floor_ms",
        "floor_ratio",
    },
    "mimi-offline-int8": {"impl", "seconds", "encode_s", "decode_s", "rtf", "threads"},
    "mimi-stream-ratio": {"speedup", "encode_ms_speedup", "decode_ms_speedup"},
    "mimi-offline-ratio": {"speedup", "encode_s_speedup", "decode_s_speedup"},
}


def test_codec_bench_smoke(tmp_path):
    fake = tmp_path / "bench_reference.py"
    fake.write_text(FAKE_REFERENCE)
    cmd = [sys.executable, str(BENCH), "--smoke", "--threads", "1"]
    cmd += ["--reference", sys.executable, "--reference-script", str(fake)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(line["bench"], line.get("impl")) for line in lines] == [
        ("mimi-stream", "ours"),
        ("mimi-offline", "ours"),
        ("mimi-stream-int8", "ours"),
        ("mimi-offline-int8", "ours"),
        ("mimi-stream", "fake"),
        ("mimi-stream-ratio", None),
        ("mimi-offline", "fake"),
        ("mimi-offline-ratio", None),
    ]
    for line in lines:
        if line.get("impl") != "fake":
            assert EXPECTED[line["bench"]] <= line.keys(), line
            assert all(v > 0 for v in line.values() if isinstance(v, float))

"""CI's smoke run of the small family's budget benchmark: it runs fast, prints one JSON line
per model and the total, and times each shipped kind with the shipped model's config."""

import json
import subprocess
import sys
from pathlib import Path

from moshi.small import model_folder, shipped_kinds

BENCH = Path(__file__).resolve().parent.parent / "bench" / "family.py"
RECIPES = BENCH.parent.parent / "recipes" / "small"
KINDS = ["stt", "tts", "dialogue"]


def test_family_bench_smoke():
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--smoke", "--threads", "1"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [x["model"] for x in lines] == ["codec", *KINDS, "all"]
    tasks = lines[1:-1]
    for kind, line in zip(KINDS, tasks, strict=True):
        want = model_folder(kind) / "config.json" if kind in shipped_kinds() else RECIPES / f"{kind}.json"
        assert Path(line["config"]) == want
        assert line["frame_ms"] > 0 and line["realtime_x"] > 0 and isinstance(line["meets_speed"], bool)
    total = sum(x["params_m"] for x in lines[:-1])
    assert abs(lines[-1]["params_m"] - total) < 0.01 and lines[-1]["meets_size"] is True

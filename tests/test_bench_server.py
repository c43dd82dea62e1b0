"""bench/server.py --smoke: it runs (server process, real-time clients) and prints the
JSON lines it promises."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
WINDOW_KEYS = {
    "bench",
    "measurement",
    "t_s",
    "clients",
    "steps",
    "step_ms_p50",
    "step_ms_p99",
    "added_latency_ms_p50",
    "added_latency_ms_p99",
    "engine_wait_ms_p99",
    "transport_ms_p99",
    "frames_in",
    "frames_out",
    "dropped_in",
    "dropped_out",
}


@pytest.mark.parametrize("model", ["tiny", "config"])
def test_bench_server_smoke(model, tmp_path):
    bench = [sys.executable, str(REPO / "bench" / "server.py")]
    flags = []
    if model == "config":  # --config: any model folder's config.json (here the tiny one's)
        subprocess.run([*bench, "--write-tiny-config", tmp_path / "c.json"], check=True, cwd=REPO)
        flags = ["--config", str(tmp_path / "c.json")]
    done = subprocess.run(
        [*bench, "--smoke", *flags],
        capture_output=True,
        text=True,
        timeout=60,  # a hang guard; it takes ~7 s
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    *windows, summary = lines
    assert len(windows) == 2 and all(w["measurement"] == "window" for w in windows)
    for line in lines:
        assert set(line) >= WINDOW_KEYS, WINDOW_KEYS - set(line)
        assert line["bench"] == "server" and line["clients"] == 2
    assert summary["measurement"] == "summary"
    assert summary["client_errors"] == []
    assert summary["frames_in"] > 0 and summary["client_frames_received"] > 0
    assert summary["client_frames_sent"] >= summary["frames_in"] >= summary["frames_out"]
    for key in ("added_latency_ms_p99", "step_ms_p50", "round_trip_ms_p99", "added_latency_growth_ms_p99"):
        assert isinstance(summary[key], float), key

"""The server under real-time load: N simulated clients against the tiny models on CPU.

    python bench/server.py                        # 3 clients, 60 s, a JSON line per 10 s
    python bench/server.py --clients 8 --seconds 120
    python bench/server.py --smoke                # a few seconds (CI)
    python bench/server.py --write-tiny-config /tmp/tiny.json   # for `moshi serve --config`
    python bench/server.py --clients 1 --seconds 300 --config MODEL/config.json   # a 5-minute conversation

The server runs in its own process (`python -m moshi serve`, tiny models or `--config`'s, one torch
thread by default); each client streams tests/fixtures/hello_24k.wav, looped, at real-time
pace (Ogg/Opus, as a browser would) and reads everything back. Every `--window` seconds
the server's health endpoint gives, over that window: model step time, and the added
server latency (from a frame's arrival to its answer being written, minus the model step)
p50/p99, split into the wait for the engine (busy with another client's step: frames that
arrive during a step go into the next one) and the rest ("transport": Opus, queues,
threads, sockets). The clients add their own view: frames sent and received, and the round trip
(sending frame k+1 -> receiving answer k, which includes the model step and the network).
The summary line compares the first and the last window (latency growth).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
sys.path.insert(0, str(REPO))  # `python bench/server.py` from a checkout

from moshi.audio import FRAME_SIZE, SAMPLE_RATE  # noqa: E402
from moshi.stream.client import AudioEvent, Client, ErrorEvent, TextEvent  # noqa: E402

FRAME_S = FRAME_SIZE / SAMPLE_RATE


def write_tiny_config(path: Path) -> Path:
    """A Kyutai config.json for the tiny test models, naming their files by absolute path."""
    config = json.loads((FIXTURES / "moshi_lm_tiny" / "config.json").read_text())
    config.update(
        moshi_name=str(FIXTURES / "moshi_lm_tiny" / "weights.safetensors"),
        mimi_name=str(FIXTURES / "mimi_tiny" / "weights.safetensors"),
        mimi_config_name=str(FIXTURES / "mimi_tiny" / "config.json"),
        tokenizer_name=str(FIXTURES / "tiny_spm_100.model"),
    )
    path.write_text(json.dumps(config, indent=1))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def health(port: int, window: float) -> dict:
    """The health report (also when it comes with 503: every slot taken, or draining)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health?window={window}", timeout=10) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        if e.code != 503:
            raise
        return json.loads(e.read())


def start_server(
    config: Path, port: int, sessions: int, threads: int, device: str, log: IO[bytes]
) -> subprocess.Popen:
    """`python -m moshi serve` on the tiny models; its log goes to `log`."""
    cmd = [sys.executable, "-m", "moshi", "serve", "--config", str(config), "--device", device]
    cmd += ["--port", str(port), "--static", "none", "--max-sessions", str(sessions)]
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": path}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"the server exited: {log.read().decode(errors='replace')[-3000:]}")
        try:
            health(port, 1)
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the server did not start within 120 s")


class SimClient:
    """Streams `pcm` (looped) at real-time pace, reads everything back."""

    def __init__(self, url: str, pcm: np.ndarray, seconds: float, offset: float):
        self.url, self.pcm, self.seconds, self.offset = url, pcm, seconds, offset
        self.sent_at: list[float] = []  # monotonic time of each frame sent
        self.round_trips_ms: list[float] = []
        self.received = 0  # samples
        self.texts = 0
        self.errors: list[str] = []

    async def run(self) -> None:
        client = await Client.connect(self.url, pace=False)  # paced below, on a schedule
        receiver = asyncio.create_task(self._receive(client))
        start = time.monotonic() + self.offset
        n = int(self.seconds / FRAME_S)
        for k in range(n):
            await asyncio.sleep(max(0.0, start + k * FRAME_S - time.monotonic()))  # absolute schedule
            i = (k * FRAME_SIZE) % (len(self.pcm) - FRAME_SIZE)
            self.sent_at.append(time.monotonic())
            await client.send_pcm(self.pcm[i : i + FRAME_SIZE])
        await asyncio.sleep(0.5)  # the last answers
        await client.close()
        await receiver

    async def _receive(self, client: Client) -> None:
        async for event in client.events():
            if isinstance(event, AudioEvent):
                answered = self.received // FRAME_SIZE + 1  # answer j is for input frame j + 1
                self.received += len(event.pcm)
                if answered < len(self.sent_at):
                    self.round_trips_ms.append(1000 * (time.monotonic() - self.sent_at[answered]))
            elif isinstance(event, TextEvent):
                self.texts += 1
            elif isinstance(event, ErrorEvent):
                self.errors.append(event.message)


def window_line(t: float, h: dict, clients: int) -> dict:
    w = h["window"]
    return {
        "bench": "server",
        "measurement": "window",
        "device": h["device"],
        "t_s": round(t, 1),
        "clients": clients,
        "window_s": w["seconds"],
        "steps": w["steps"],
        "step_ms_p50": w["step_ms"].get("p50"),
        "step_ms_p99": w["step_ms"].get("p99"),
        "added_latency_ms_p50": w["added_latency_ms"].get("p50"),
        "added_latency_ms_p99": w["added_latency_ms"].get("p99"),
        "engine_wait_ms_p50": w["engine_wait_ms"].get("p50"),
        "engine_wait_ms_p99": w["engine_wait_ms"].get("p99"),
        "transport_ms_p50": w["transport_ms"].get("p50"),
        "transport_ms_p99": w["transport_ms"].get("p99"),
        **h["frames"],  # cumulative
    }


async def measure(port: int, pcm: np.ndarray, args: argparse.Namespace) -> list[dict]:
    url = f"ws://127.0.0.1:{port}"
    # Evenly spread phases: each client starts its 80 ms cycle at a different time.
    clients = [SimClient(url, pcm, args.seconds, k * FRAME_S / args.clients) for k in range(args.clients)]
    tasks = [asyncio.create_task(c.run()) for c in clients]
    lines, t0 = [], time.monotonic()
    for k in range(1, int(args.seconds / args.window) + 1):
        await asyncio.sleep(max(0.0, t0 + k * args.window - time.monotonic()))
        report = await asyncio.to_thread(health, port, args.window)
        line = window_line(time.monotonic() - t0, report, args.clients)
        print(json.dumps(line), flush=True)
        lines.append(line)
    await asyncio.gather(*tasks)
    final = await asyncio.to_thread(health, port, args.seconds + 5)
    round_trips = np.concatenate([c.round_trips_ms for c in clients] + [np.zeros(0)])
    first, last = lines[0], lines[-1]

    def growth(key: str) -> float | None:
        return None if first[key] is None or last[key] is None else round(last[key] - first[key], 3)

    summary = {
        **window_line(time.monotonic() - t0, final, args.clients),
        "measurement": "summary",
        "seconds": args.seconds,
        "client_frames_sent": sum(len(c.sent_at) for c in clients),
        "client_frames_received": sum(c.received // FRAME_SIZE for c in clients),
        "client_text_pieces": sum(c.texts for c in clients),
        "client_errors": [e for c in clients for e in c.errors],
        "round_trip_ms_p50": round(float(np.percentile(round_trips, 50)), 2) if len(round_trips) else None,
        "round_trip_ms_p99": round(float(np.percentile(round_trips, 99)), 2) if len(round_trips) else None,
        "added_latency_growth_ms_p50": growth("added_latency_ms_p50"),
        "added_latency_growth_ms_p99": growth("added_latency_ms_p99"),
        "step_ms_growth_p50": growth("step_ms_p50"),
    }
    print(json.dumps(summary), flush=True)
    return [*lines, summary]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--window", type=float, default=10.0, help="seconds per measurement line")
    parser.add_argument("--max-sessions", type=int, help="server slots (default: --clients)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads in the server")
    parser.add_argument("--device", default="cpu", help="the server's device (cpu, cuda)")
    parser.add_argument("--smoke", action="store_true", help="a few seconds, 2 clients (CI)")
    parser.add_argument("--write-tiny-config", type=Path, metavar="PATH", help="write it and exit")
    parser.add_argument(
        "--config", type=Path, metavar="PATH",
        help="serve this model (a Kyutai config.json, e.g. a dialogue checkpoint's) instead of the tiny ones",
    )  # fmt: skip
    args = parser.parse_args()
    if args.write_tiny_config:
        print(write_tiny_config(args.write_tiny_config))
        return
    if args.smoke:
        args.clients, args.seconds, args.window = 2, 4.0, 2.0
    pcm, sr = sf.read(FIXTURES / "hello_24k.wav", dtype="float32")
    assert sr == SAMPLE_RATE and pcm.ndim == 1
    with tempfile.TemporaryDirectory() as tmp:
        config = args.config or write_tiny_config(Path(tmp) / "config.json")
        port = free_port()
        log = open(Path(tmp) / "server.log", "w+b")  # noqa: SIM115 (closed with the folder)
        sessions = args.max_sessions or args.clients
        server = start_server(config, port, sessions, args.threads, args.device, log)
        try:
            asyncio.run(measure(port, pcm, args))
        finally:
            server.terminate()
            server.wait(30)
            log.close()


if __name__ == "__main__":
    main()

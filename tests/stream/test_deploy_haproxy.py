"""deploy/haproxy.cfg as written, in front of 3 real `moshi serve` workers (tiny models) on
loopback: conversations spread over the workers, the one too many hears "server busy", a
worker killed mid-conversation loses only its own conversations, and new ones go to the
survivors until it comes back."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from moshi.stream.client import AudioEvent, Client, ServerError
from tests.stream.test_server_support import FRAME, write_tiny_model_dir

REPO = Path(__file__).resolve().parents[2]  # the checkout: deploy/haproxy.cfg
SLOTS = 2  # per worker
WORKERS = 3
GUARD_S = 60.0  # only so that a bug fails the test instead of hanging it

pytestmark = pytest.mark.skipif(
    shutil.which("haproxy") is None and not os.environ.get("CI"),
    reason="needs Debian's haproxy (./install.sh installs it as root)",
)


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def health(port: int) -> dict:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=5) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:  # 503: full or draining, same report
        return json.loads(e.read())


def wait(predicate, what: str) -> None:
    deadline = time.monotonic() + GUARD_S
    while True:
        try:
            if predicate():
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)


class Worker:
    def __init__(self, config: Path, port: int, log_dir: Path):
        self.config, self.port, self.log = config, port, log_dir / f"worker-{port}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Worker:
        cmd = [sys.executable, "-m", "moshi.cli.main", "serve", "--config", str(self.config),
               "--device", "cpu", "--port", str(self.port), "--static", "none",
               "--max-sessions", str(SLOTS), "--drain-seconds", "0"]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log, cwd=REPO)
        return self

    def ready(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, self.log.read_text()[-2000:]
        return health(self.port)["status"] in ("ready", "full")

    def used(self) -> int:
        return health(self.port)["slots"]["used"]

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class Talker:
    """One conversation through the balancer: sends audio at real time, counts answers."""

    def __init__(self, client: Client, pcm: np.ndarray):
        self.client, self.pcm = client, pcm
        self.heard = 0
        self.ended = asyncio.Event()
        self._tasks = [asyncio.create_task(self._send()), asyncio.create_task(self._receive())]

    async def _send(self) -> None:
        i = 0
        try:
            while not self.ended.is_set():
                start = (i * FRAME) % (len(self.pcm) - FRAME)
                await self.client.send_pcm(self.pcm[start : start + FRAME])
                i += 1
                await asyncio.sleep(0.08)
        except ConnectionError:
            pass

    async def _receive(self) -> None:
        async for event in self.client.events():
            self.heard += isinstance(event, AudioEvent)
        self.ended.set()

    async def hears_more(self) -> None:
        seen = self.heard
        deadline = time.monotonic() + GUARD_S
        while self.heard < seen + 3:
            assert not self.ended.is_set(), "the conversation ended"
            assert time.monotonic() < deadline, "no more audio came"
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        await self.client.close()
        await asyncio.wait_for(self.ended.wait(), GUARD_S)
        for t in self._tasks:
            t.cancel()


async def open_talker(url: str, pcm: np.ndarray) -> Talker:
    return Talker(await asyncio.wait_for(Client.connect(url), GUARD_S), pcm)


def test_haproxy_spreads_refuses_and_survives_a_dead_worker(tmp_path, speech):
    config = write_tiny_model_dir(tmp_path / "model")
    front, stats, *ports = free_ports(2 + WORKERS)
    workers = [Worker(config, p, tmp_path).start() for p in ports]
    env = {**os.environ, "MOSHI_BIND": f"127.0.0.1:{front}", "MOSHI_STATS_BIND": f"127.0.0.1:{stats}"}
    env.update({f"MOSHI_WORKER_{i + 1}": f"127.0.0.1:{p}" for i, p in enumerate(ports)})
    cfg = str(REPO / "deploy" / "haproxy.cfg")
    check = subprocess.run(["haproxy", "-c", "-f", cfg], env=env, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    balancer = subprocess.Popen(["haproxy", "-db", "-f", cfg], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"ws://127.0.0.1:{front}"
    last_status: dict[str, str] = {}

    def up(name: str) -> set[str]:
        """Servers of backend `name` that HAProxy's health checks have marked UP."""
        assert balancer.poll() is None, "haproxy exited"
        with urllib.request.urlopen(f"http://127.0.0.1:{stats}/;csv", timeout=5) as r:
            rows = [line.split(",") for line in r.read().decode().splitlines()[1:]]
        status = {row[1]: row[17] for row in rows if row[0] == name and row[1] != "BACKEND"}
        last_status.update(status)
        return {server for server, state in status.items() if state.startswith("UP")}

    async def scenario() -> None:
        for w in workers:
            await asyncio.to_thread(wait, w.ready, f"worker {w.port}")
        await asyncio.to_thread(wait, lambda: up("ready") == {"w1", "w2", "w3"}, "all workers up")
        # 3 x SLOTS conversations: all served, spread over the workers
        talkers = []
        for _ in range(WORKERS * SLOTS):
            talkers.append(await open_talker(url, speech))
        assert [w.used() for w in workers] == [SLOTS] * WORKERS
        with pytest.raises(ServerError, match="server busy"):  # the one too many
            await Client.connect(url)
        for t in talkers:
            await t.hears_more()
        # a worker dies mid-conversation: its conversations end, the others go on
        workers[1].kill()
        await asyncio.sleep(3.0)  # its conversations end within this (the others go on)
        lost = [t for t in talkers if t.ended.is_set()]
        assert len(lost) == SLOTS
        survivors = [t for t in talkers if t not in lost]
        for t in survivors:
            await t.hears_more()
        # new conversations go to the survivors (once a slot is free there)
        await survivors[0].close()
        await survivors[-1].close()
        await asyncio.to_thread(wait, lambda: workers[0].used() + workers[2].used() == 2 * SLOTS - 2, "freed")
        fresh = [await open_talker(url, speech) for _ in range(2)]
        assert workers[0].used() + workers[2].used() == 2 * SLOTS
        # the restarted worker comes back into rotation
        workers[1].start()
        await asyncio.to_thread(wait, workers[1].ready, "the restarted worker")
        await asyncio.to_thread(wait, lambda: "w2" in up("ready"), "the restarted worker up in HAProxy")
        back = [await open_talker(url, speech) for _ in range(SLOTS)]
        assert workers[1].used() == SLOTS
        for t in [*survivors[1:-1], *fresh, *back]:
            await t.hears_more()
            await t.close()

    try:
        asyncio.run(asyncio.wait_for(scenario(), 4 * GUARD_S))
    except AssertionError as e:
        raise AssertionError(f"{e}; HAProxy saw {last_status}") from None
    finally:
        balancer.send_signal(signal.SIGTERM)
        for w in workers:
            w.kill()
        balancer.wait(10)

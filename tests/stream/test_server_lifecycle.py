"""Stopping a server without hurting anyone: `Server.drain`, and `moshi serve` on SIGTERM
and SIGINT (also when started with SIGINT ignored, as `moshi serve &` from a script is)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from moshi.stream import protocol
from moshi.stream.engine import Engine
from moshi.stream.server import DRAINING_MESSAGE
from tests.support.fixtures import free_port, tiny_model_dir
from tests.support.server import (
    FRAME,
    HANG_GUARD_S,
    ServerThread,
    http_get,
    ogg_messages,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


async def converse_until_closed(url: str, messages: list[bytes], seen: dict) -> None:
    """Send audio at about real time until the server closes; record what came back."""
    async with connect(url + protocol.CHAT_PATH, compression=None) as ws:
        first = await asyncio.wait_for(ws.recv(), HANG_GUARD_S)
        if first != protocol.HANDSHAKE:
            raise RuntimeError(f"refused: {protocol.decode(first).payload}")  # type: ignore[arg-type]

        async def receive() -> None:
            async for raw in ws:
                m = protocol.decode(raw)  # type: ignore[arg-type]
                if m.kind == protocol.MessageKind.AUDIO:
                    seen["audio"] = seen.get("audio", 0) + 1
                    seen["last_audio"] = time.monotonic()
                elif m.kind == protocol.MessageKind.ERROR:
                    seen["error"] = m.payload

        receiver = asyncio.create_task(receive())
        i = 0
        try:
            while not receiver.done():
                await ws.send(messages[i % len(messages)] if i else messages[0])
                i += 1
                await asyncio.sleep(0.08)
        except ConnectionClosed:
            pass
        await asyncio.wait_for(receiver, HANG_GUARD_S)
        seen["close_code"] = ws.close_code


async def first_audio(talker: asyncio.Task, seen: dict) -> None:
    deadline = time.monotonic() + HANG_GUARD_S
    while "audio" not in seen:
        if talker.done():
            talker.result()  # raises what ended it
            pytest.fail("the conversation ended before any audio")
        assert time.monotonic() < deadline, "no audio came back"
        await asyncio.sleep(0.02)


def test_drain_lets_running_conversations_finish_then_ends_them(tiny_parts, speech):
    messages = ogg_messages(speech[: 40 * FRAME])
    with ServerThread(Engine(*tiny_parts, max_sessions=2)) as server:
        seen: dict = {}

        async def scenario() -> None:
            talker = asyncio.create_task(converse_until_closed(server.url, messages, seen))
            await first_audio(talker, seen)
            drained = asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(server.server.drain(1.5), server.loop)
            )
            await asyncio.sleep(0.3)
            status, _, body = await asyncio.to_thread(http_get, server.port, "/api/health")
            assert status == 503 and json.loads(body)["status"] == "draining"
            with pytest.raises(RuntimeError, match="refused: server shutting down"):  # no new one
                await converse_until_closed(server.url, messages, {})
            before = seen["audio"]
            await asyncio.sleep(0.6)
            assert seen["audio"] > before  # the running one goes on during the grace period
            await asyncio.wait_for(drained, HANG_GUARD_S)
            await asyncio.wait_for(talker, HANG_GUARD_S)

        asyncio.run(scenario())
        assert seen["error"] == DRAINING_MESSAGE and seen["close_code"] == 1000
        assert server.health()["slots"]["used"] == 0


def _start_serve(tmp_path: Path, drain_s: float, ignore_sigint: bool = False) -> tuple[subprocess.Popen, int]:
    config = tiny_model_dir(tmp_path / "model")
    port = free_port()
    cmd = [sys.executable, "-m", "moshi.cli.main", "serve", "--config", str(config), "--device", "cpu",
           "--port", str(port), "--static", "none", "--drain-seconds", str(drain_s)]  # fmt: skip

    def ignore() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    proc = subprocess.Popen(
        cmd, stderr=subprocess.PIPE, text=True, preexec_fn=ignore if ignore_sigint else None,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        try:
            if http_get(port, "/api/health")[0] == 200:
                return proc, port
        except OSError:
            pass
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "moshi serve did not start"
        time.sleep(0.2)


@pytest.mark.parametrize(
    "sig,drain_s,ignore_sigint",
    [(signal.SIGTERM, 1.5, False), (signal.SIGINT, 30.0, True)],
    ids=["sigterm", "sigint-ignored-at-start"],
)
def test_moshi_serve_stops_cleanly_on_a_signal(tmp_path, speech, sig, drain_s, ignore_sigint):
    """SIGTERM drains for --drain-seconds; SIGINT (even if ignored at start) for at most a
    second; either way the client gets the 0x05 message and a normal close, exit code 0."""
    proc, port = _start_serve(tmp_path, drain_s, ignore_sigint)
    messages = ogg_messages(speech[: 40 * FRAME])
    seen: dict = {}

    async def scenario() -> float:
        talker = asyncio.create_task(converse_until_closed(f"ws://127.0.0.1:{port}", messages, seen))
        await first_audio(talker, seen)
        proc.send_signal(sig)
        signalled = time.monotonic()
        await asyncio.wait_for(talker, HANG_GUARD_S + drain_s)
        return signalled

    try:
        signalled = asyncio.run(scenario())
        rc = proc.wait(HANG_GUARD_S)
    finally:
        proc.kill()
    err = proc.stderr.read() if proc.stderr else ""
    assert rc == 0, err
    assert seen["error"] == DRAINING_MESSAGE and seen["close_code"] == 1000, (seen, err)
    grace = min(drain_s, 1.0) if sig == signal.SIGINT else drain_s
    assert seen["last_audio"] - signalled > grace - 0.6  # it went on talking during the grace
    assert "draining" in err and "Traceback" not in err

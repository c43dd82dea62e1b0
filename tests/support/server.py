"""For the server tests: a server running in its own thread and event loop, client-side
Ogg/Opus, and raw websocket sockets for the misbehaving clients a library client cannot be."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from moshi.stream.engine import Engine
from moshi.stream.opus import OpusEncoder
from moshi.stream.server import Server, ServerConfig

FRAME = 1920
HANG_GUARD_S = 20.0  # only so that a bug fails a test instead of hanging it


def ogg_messages(pcm: np.ndarray) -> list[bytes]:
    """pcm [T] float32 -> one 0x01 message per 80 ms frame (the remainder is dropped)."""
    enc = OpusEncoder()
    return [b"\x01" + enc.encode(pcm[i : i + FRAME]) for i in range(0, len(pcm) - FRAME + 1, FRAME)]


class ServerThread:
    """A `Server` on 127.0.0.1 (a free port), in a thread with its own event loop."""

    def __init__(self, engine: Engine, **config: Any):
        self.server = Server(engine, ServerConfig(host="127.0.0.1", port=0, **config))
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ServerThread:
        self._thread.start()
        self._run(self.server.start())
        return self

    def __exit__(self, *exc: object) -> None:
        self._run(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(HANG_GUARD_S)
        self.loop.close()

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(HANG_GUARD_S)

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """`fn(*args)` on the server's loop (to read its state consistently)."""

        async def run() -> Any:
            return fn(*args)

        return self._run(run())

    def health(self) -> dict[str, Any]:
        return self.call(self.server.health)

    def wait_until(self, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """Poll the health report until `predicate` holds (fails after the hang guard)."""
        deadline = time.monotonic() + HANG_GUARD_S
        while True:
            health = self.health()
            if predicate(health):
                return health
            assert time.monotonic() < deadline, f"gave up waiting; health: {health}"
            time.sleep(0.01)

    def wait_quiet(self) -> None:
        """Until no frame waits in any conversation's queues."""
        sessions = self.server._sessions
        self.wait_until(lambda h: self.call(lambda: not any(s.inbox or s.outbox for s in sessions)))

    def wait_idle(self) -> dict[str, Any]:
        """Until every slot is free again."""
        return self.wait_until(lambda h: h["slots"]["used"] == 0)

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


# -- raw websocket, for clients that misbehave at the frame level -----------------------------------
def raw_connect(port: int, path: str = "/api/chat", headers: dict[str, str] | None = None, rcvbuf: int = 0):
    """A TCP socket after a successful websocket upgrade; returns (socket, bytes read past
    the HTTP response). `rcvbuf` > 0 shrinks the receive buffer (a client that never reads)."""
    sock = socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(HANG_GUARD_S)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        *(f"{k}: {v}" for k, v in (headers or {}).items()),
    ]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, "closed during the upgrade"
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock, rest


def ws_frame(payload: bytes, opcode: int = 2, fin: bool = True) -> bytes:
    """A masked client frame (opcode 1 text, 2 binary, 8 close)."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", (0x80 if fin else 0) | opcode, 0x80 | n)
    elif n < 1 << 16:
        header = struct.pack("!BBH", (0x80 if fin else 0) | opcode, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", (0x80 if fin else 0) | opcode, 0x80 | 127, n)
    masked = (np.frombuffer(payload, np.uint8) ^ np.resize(np.frombuffer(mask, np.uint8), n)).tobytes()
    return header + mask + masked


def read_ws_frame(sock: socket.socket, buffer: bytearray) -> tuple[int, bytes]:
    """The server's next (unmasked) frame: (opcode, payload); `buffer` holds bytes read past
    it, for the next call (start it with what `raw_connect` read past the upgrade)."""

    def need(n: int) -> None:
        while len(buffer) < n:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed in the middle of a frame")
            buffer.extend(chunk)

    need(2)
    opcode, n, at = buffer[0] & 0x0F, buffer[1] & 0x7F, 2
    if n >= 126:
        width = 2 if n == 126 else 8
        need(2 + width)
        n, at = int.from_bytes(buffer[2 : 2 + width], "big"), 2 + width
    need(at + n)
    payload = bytes(buffer[at : at + n])
    del buffer[: at + n]
    return opcode, payload


def rss_bytes() -> int:
    """This process's resident memory (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def http_get(
    port: int, path: str, headers: dict[str, str] | list[tuple[str, str]] | None = None, method: str = "GET"
) -> tuple[int, dict, bytes]:
    """A raw HTTP/1.1 request (the path is sent as is, unnormalised): (status, headers, body).
    `headers` as a list may repeat a name; a `Host` given there replaces the default one."""
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    with socket.create_connection(("127.0.0.1", port), timeout=HANG_GUARD_S) as sock:
        extra = [f"{k}: {v}" for k, v in pairs]
        host = [] if any(k.lower() == "host" for k, _ in pairs) else [f"Host: 127.0.0.1:{port}"]
        lines = [f"{method} {path} HTTP/1.1", *host, *extra]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    status_line, *header_lines = head.decode().split("\r\n")
    fields = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), {k.lower(): v for k, v in fields.items()}, body


class Witness:
    """A well-behaved conversation beside the misbehaving ones, in its own thread: it
    streams `pcm` (looped) at twice real time and counts the audio frames it gets back."""

    def __init__(self, url: str, pcm: np.ndarray):
        self.url, self.pcm = url, pcm
        self.audio_events = 0
        self.errors: list[str] = []
        self.ended_early = False
        self._stop = threading.Event()
        self._started = threading.Event()
        self.paused = threading.Event()  # set: stop sending (but stay connected)
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self) -> Witness:
        self._thread.start()
        assert self._started.wait(HANG_GUARD_S), "the witness could not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(HANG_GUARD_S)
        assert not self.errors and not self.ended_early, (self.errors, self.ended_early)

    async def _run(self) -> None:
        from moshi.stream.client import AudioEvent, Client, ErrorEvent

        client = await Client.connect(self.url, pace=False)
        self._started.set()

        async def receive() -> None:
            async for event in client.events():
                if isinstance(event, AudioEvent):
                    self.audio_events += 1
                elif isinstance(event, ErrorEvent):
                    self.errors.append(event.message)
            self.ended_early = not self._stop.is_set()

        receiver = asyncio.create_task(receive())
        i = 0
        while not self._stop.is_set() and not receiver.done():
            if not self.paused.is_set():
                start = (i * FRAME) % (len(self.pcm) - FRAME)
                await client.send_pcm(self.pcm[start : start + FRAME])
                i += 1
            await asyncio.sleep(0.04)
        await client.close()
        await receiver

    def still_hears(self) -> None:
        """Wait until more audio comes back than has so far (fails after the hang guard)."""
        seen, deadline = self.audio_events, time.monotonic() + HANG_GUARD_S
        while self.audio_events <= seen + 2:
            assert time.monotonic() < deadline and not self.ended_early, "the witness stopped hearing"
            time.sleep(0.01)


@contextmanager
def served_with_witness(
    parts: tuple, pcm: np.ndarray, **limits: Any
) -> Iterator[tuple[ServerThread, Witness]]:
    """A server on `parts` (the tiny models, 3 slots, with `limits`) and a `Witness` already
    talking to it; on exit, waits until the server has let every conversation go."""
    with ServerThread(Engine(*parts, max_sessions=3), **limits) as server:
        with Witness(server.url, pcm) as witness:
            yield server, witness
        server.wait_idle()

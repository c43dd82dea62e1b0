"""The websocket server: Kyutai's protocol over one batched `Engine`.

    GET /api/chat    websocket: a conversation (see `protocol`)
    GET /api/health  JSON: model, slots, frame counters, step time and added latency
    GET /...         the web client (`web/`), when static files are on

Per connection, a receive task turns Ogg/Opus pages into 80 ms frames and queues them in
the connection's inbox, and a send task writes its outbox to the socket. One tick task
owns the model: whenever any inbox has a frame, it takes one frame from every inbox that
has one, runs `Engine.step` on them together in the engine thread (the event loop stays
free), Opus-encodes the outputs there, and hands each to its outbox. So ticks follow the
arrival of audio, a slow client never holds the others back (its slot just pauses), and
frames that arrive during a step are batched into the next one.

Backpressure: an inbox keeps at most `input_backlog` frames (the oldest are dropped and
counted in the slot's `dropped_in`), an outbox at most `output_backlog` (the oldest are
dropped, their text kept, counted in `dropped_out`), so latency cannot creep up over a
conversation. A send blocked for `send_stall_s` (a client that does not read) ends that
connection. Every engine call (open, step, close) runs in one worker thread, in order.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from ssl import SSLContext
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from . import protocol, routes
from .engine import Engine, SlotStats
from .opus import OpusError
from .protocol import MessageKind
from .session import Outgoing, Session

log = logging.getLogger(__name__)

BUSY_MESSAGE = "server busy: every conversation slot is taken, try again later"
SAMPLES_KEPT = 20_000  # recent (time, ms) samples kept for the health windows
CLOSE_NORMAL, CLOSE_UNSUPPORTED, CLOSE_BAD_DATA, CLOSE_POLICY, CLOSE_TOO_BIG, CLOSE_ERROR = (
    1000,
    1003,
    1007,
    1008,
    1009,
    1011,
)


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8998  # 0: any free port (see `Server.port`)
    static_dir: Path | None = None  # the web client, served at /
    model_name: str = ""  # shown by the health endpoint
    auth_token: str | None = None  # clients must present it (query or bearer header)
    allowed_origins: tuple[str, ...] | None = None  # None: any Origin
    ssl: SSLContext | None = None  # https/wss
    input_backlog: int = 3  # frames kept per inbox; large = process everything (offline)
    output_backlog: int = 4  # frames kept per outbox beyond what the socket took
    write_buffer_bytes: int = 4096  # websockets' write buffer before `send` waits
    send_buffer_bytes: int | None = 32 * 1024  # SO_SNDBUF per connection (None: the OS's)
    send_stall_s: float = 5.0  # a send blocked this long ends the connection
    idle_timeout_s: float = 30.0  # no message this long ends the connection
    ping_interval_s: float | None = 20.0  # websocket keepalive (a dead peer is closed)

    def __post_init__(self) -> None:
        for name in ("input_backlog", "output_backlog"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


class Refusal(Exception):
    """End a conversation with this 0x05 message and websocket close code."""

    def __init__(self, message: str, code: int = CLOSE_POLICY):
        super().__init__(message)
        self.message, self.code = message, code


_Result = tuple[bytes, "str | None"]  # (Ogg pages, text piece) of one slot's step


class Server:
    """Serves conversations over `engine` (which it starts, warms up and closes)."""

    def __init__(self, engine: Engine, config: ServerConfig):
        self.engine, self.config = engine, config
        self.port = config.port
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="moshi-engine")
        self._sessions: list[Session] = []
        self._ready = asyncio.Event()
        self._closed_totals = SlotStats()
        self._latency: deque[tuple[float, float, float]] = deque(maxlen=SAMPLES_KEPT)  # (t, added, wait)
        self._steps: deque[tuple[float, float]] = deque(maxlen=SAMPLES_KEPT)  # (t, ms)
        self._started = time.monotonic()
        self._tick_task: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self._ws_server: Any = None

    # -- lifetime ------------------------------------------------------------------------------
    async def start(self) -> Server:
        """Warm up the engine, then accept connections."""
        await self._engine_call(self._warm_up)
        self._tick_task = asyncio.create_task(self._tick_loop(), name="moshi-tick")
        c = self.config
        self._ws_server = await serve(
            self._handle,
            c.host,
            c.port,
            process_request=self._process_request,
            compression=None,  # Opus does not compress; deflate would cost CPU and memory
            max_size=4 * protocol.MAX_MESSAGE_BYTES,  # above the cap: a 0x05 explains
            write_limit=c.write_buffer_bytes,
            ping_interval=c.ping_interval_s,
            ping_timeout=c.ping_interval_s,
            ssl=c.ssl,
        )
        self.port = self._ws_server.sockets[0].getsockname()[1]
        self._started = time.monotonic()
        return self

    def _warm_up(self) -> None:
        self.engine.start()
        self.engine.warmup()

    async def stop(self) -> None:
        if self._ws_server is not None:
            self._ws_server.close()
            await self._ws_server.wait_closed()
        if self._tick_task is not None:
            self._tick_task.cancel()
        await self._engine_call(self.engine.close)
        self._executor.shutdown()

    async def __aenter__(self) -> Server:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _engine_call(self, fn: Any, *args: Any) -> asyncio.Future:
        """Run `fn(*args)` in the engine thread, after every call submitted before it."""
        return asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # -- the tick ------------------------------------------------------------------------------
    async def _tick_loop(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            batch = [(s, *s.take_frame()) for s in self._sessions if s.ready]
            if any(s.ready for s in self._sessions):
                self._ready.set()  # more frames are already waiting: tick again right away
            if not batch:
                continue
            try:
                outputs, started, ms = await self._engine_call(self._compute, [(s, f) for s, f, _ in batch])
            except Exception:
                log.exception("the model step failed; ending the conversations in it")
                for s, *_ in batch:
                    self._background(_refuse(s.connection, Refusal("internal server error", CLOSE_ERROR)))
                continue
            for (s, _, arrived), (audio, text) in zip(batch, outputs, strict=True):
                s.deliver(Outgoing(audio, [text] if text else [], arrived, ms, 1000 * (started - arrived)))

    def _background(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)  # a reference, until it is done
        task.add_done_callback(self._tasks.discard)

    def _compute(self, batch: list[tuple[Session, np.ndarray]]) -> tuple[list[_Result], float, float]:
        """In the engine thread: one step for `batch` (session, frame [frame_size]), then
        each output frame Opus-encoded. Returns ([(ogg pages, text piece)], step start
        (perf_counter), step ms)."""
        t0 = time.perf_counter()
        out = self.engine.step({s.slot: frame for s, frame in batch})  # type: ignore[misc]
        ms = 1000 * (time.perf_counter() - t0)
        self._steps.append((time.monotonic(), ms))
        results = []
        for s, _ in batch:
            frame = out[s.slot]  # type: ignore[index]
            audio = s.encoder.encode(frame.pcm) if frame.pcm is not None else b""
            results.append((audio, frame.text))
        return results, t0, ms

    # -- one conversation ------------------------------------------------------------------------
    async def _handle(self, ws: ServerConnection) -> None:
        try:
            await self._conversation(ws)
        except Refusal as r:
            log.info("%s: %s", ws.remote_address, r.message)
            await _refuse(ws, r)
        except ConnectionClosed:
            pass
        except Exception:
            log.exception("conversation failed")
            await _refuse(ws, Refusal("internal server error", CLOSE_ERROR))

    async def _conversation(self, ws: ServerConnection) -> None:
        problem = routes.token_problem(ws.request, self.config.auth_token)  # type: ignore[arg-type]
        if problem:
            raise Refusal(problem)
        try:
            query = urlsplit(ws.request.path).query  # type: ignore[union-attr]
            options = routes.sampling_options(query, self.engine.default_options)
        except ValueError as e:
            raise Refusal(f"bad parameter: {e}") from None
        if len(self._sessions) >= self.engine.max_sessions:
            raise Refusal(BUSY_MESSAGE, CLOSE_NORMAL)
        if self.config.send_buffer_bytes:
            sock = ws.transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.config.send_buffer_bytes)
        s = Session(ws, options, self.config.input_backlog, self.config.output_backlog)
        self._sessions.append(s)  # the slot is ours from here on (the busy check counts it)
        sender = None
        try:
            s.slot = await self._engine_call(self.engine.open_slot, options)
            s.stats = self.engine.stats(s.slot)
            log.info("conversation in slot %d started (%s)", s.slot, ws.remote_address)
            await ws.send(protocol.HANDSHAKE)
            sender = asyncio.create_task(self._send_loop(s))
            await self._receive_loop(s)
        finally:
            if sender is not None:
                sender.cancel()
            self._release(s)

    def _release(self, s: Session) -> None:
        s.closed = True
        if s.slot is not None:  # queued before any later open_slot: the engine thread is FIFO
            self._engine_call(self.engine.close_slot, s.slot)
            log.info("conversation in slot %d ended: %s", s.slot, s.stats)
        self._sessions.remove(s)
        for name in ("frames_in", "frames_out", "dropped_in", "dropped_out", "compute_ms"):
            setattr(self._closed_totals, name, getattr(self._closed_totals, name) + getattr(s.stats, name))

    async def _receive_loop(self, s: Session) -> None:
        while True:
            try:
                raw = await asyncio.wait_for(s.connection.recv(), self.config.idle_timeout_s)
            except asyncio.TimeoutError:
                idle = self.config.idle_timeout_s
                raise Refusal(f"nothing received for {idle:g} s", CLOSE_NORMAL) from None
            except ConnectionClosed:
                return
            try:
                message = protocol.decode(raw)
            except ValueError as e:
                code = CLOSE_UNSUPPORTED if isinstance(raw, str) else CLOSE_BAD_DATA
                if len(raw) > protocol.MAX_MESSAGE_BYTES:
                    code = CLOSE_TOO_BIG
                raise Refusal(f"bad message: {e}", code) from None
            if message.kind != MessageKind.AUDIO:
                continue  # control, ping, metadata and unknown kinds are ignored
            try:
                if s.receive_audio(message.payload, time.perf_counter()):  # type: ignore[arg-type]
                    self._ready.set()
            except OpusError as e:
                raise Refusal(f"bad audio: {e}", CLOSE_BAD_DATA) from None

    async def _send_loop(self, s: Session) -> None:
        try:
            while True:
                await s.out_ready.wait()
                s.out_ready.clear()
                while s.outbox:
                    out = s.outbox.popleft()
                    messages = [protocol.encode(MessageKind.AUDIO, out.audio)] if out.audio else []
                    messages += [protocol.encode(MessageKind.TEXT, t) for t in out.texts]
                    for message in messages:
                        await asyncio.wait_for(s.connection.send(message), self.config.send_stall_s)
                    if out.audio:
                        added = 1000 * (time.perf_counter() - out.arrived) - out.compute_ms
                        self._latency.append((time.monotonic(), added, out.waited_ms))
        except asyncio.TimeoutError:
            log.info("slot %s: the client stopped reading; closing", s.slot)
            s.connection.transport.abort()
        except ConnectionClosed:
            pass

    # -- HTTP ------------------------------------------------------------------------------------
    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if path == protocol.CHAT_PATH:
            if not routes.origin_allowed(request, self.config.allowed_origins):
                return routes.text_response(403, "origin not allowed")
            return None  # the websocket upgrade
        if path == routes.HEALTH_PATH:
            problem = routes.token_problem(request, self.config.auth_token)
            if problem:
                return routes.text_response(401, problem, {"WWW-Authenticate": "Bearer"})
            window = parse_qs(urlsplit(request.path).query).get("window", ["10"])[-1]
            try:
                return routes.json_response(self.health(min(max(float(window), 0.1), 3600.0)))
            except ValueError:
                return routes.text_response(400, "window must be a number of seconds")
        if self.config.static_dir is None:
            return routes.text_response(404, "not found")
        return routes.static_response(self.config.static_dir, path)

    def health(self, window_s: float = 10.0) -> dict[str, Any]:
        """Counters since start; step time over the last steps; both over `window_s`."""
        totals = [self._closed_totals] + [s.stats for s in self._sessions]
        used, total = len(self._sessions), self.engine.max_sessions
        since = time.monotonic() - window_s
        recent_steps = [ms for t, ms in list(self._steps) if t >= since]
        recent = [(added, wait) for t, added, wait in list(self._latency) if t >= since]
        return {
            "model": self.config.model_name,
            "device": str(self.engine.device),
            "uptime_s": round(time.monotonic() - self._started, 1),
            "slots": {"total": total, "used": used, "free": total - used},
            "frames": {
                name: sum(getattr(t, name) for t in totals)
                for name in ("frames_in", "frames_out", "dropped_in", "dropped_out")
            },
            "step_ms": self.engine.step_percentiles(),
            "window": {
                "seconds": window_s,
                "steps": len(recent_steps),
                "step_ms": _percentiles(recent_steps),
                "answers": len(recent),
                # arrival -> answer written, minus the model step; of which: waiting for the
                # engine (busy with an earlier step), and the rest (Opus, queues, sockets)
                "added_latency_ms": _percentiles([added for added, _ in recent]),
                "engine_wait_ms": _percentiles([wait for _, wait in recent]),
                "transport_ms": _percentiles([added - wait for added, wait in recent]),
            },
        }


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {f"p{q}": round(float(np.percentile(values, q)), 3) for q in (50, 90, 99)}


async def _refuse(ws: ServerConnection, r: Refusal) -> None:
    """Send the 0x05 message, then close (without waiting on a client that does not read)."""
    reason = r.message.encode()[:120].decode("utf-8", "ignore")
    try:
        await asyncio.wait_for(ws.send(protocol.encode(MessageKind.ERROR, r.message)), 1.0)
        await ws.close(r.code, reason)
    except (ConnectionClosed, asyncio.TimeoutError):
        ws.transport.abort()

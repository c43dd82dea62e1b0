"""The websocket server: Kyutai's protocol over one batched `Engine`.

    GET /api/chat    websocket: a conversation (see `protocol`)
    GET /api/health  JSON: model, slots, frame counters, step time and added latency;
                     503 (same body) while the server cannot take a conversation: full or draining
    GET /metrics     Prometheus text format (see `metrics`)
    GET /...         the web client (`web/`), when static files are on (HEAD too)

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

Nothing a client sends can stall the loop for long: Opus is decoded page by page, giving
the loop back every `DECODE_SLICE_S`; the health figures are kept incrementally (`window`);
idle means no audio (other messages do not keep a slot). `drain` stops taking
conversations (health 503), lets the running ones end within a grace period, then ends
the rest with a 0x05 message and a normal close.
"""

from __future__ import annotations

import asyncio
import logging
import math
import socket
import time
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
from .gate import ConnectionGate, GateToken
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .metrics import ServerMetrics, State
from .opus import OpusError
from .protocol import MessageKind
from .session import Outgoing, Session
from .window import MAX_WINDOW_S, WindowedPercentiles

log = logging.getLogger(__name__)

BUSY_MESSAGE = "server busy: every conversation slot is taken, try again later"
DRAINING_MESSAGE = "server shutting down: try again in a moment (another server may take you)"
METRICS_PATH = "/metrics"
DEFAULT_WINDOW_S = 10.0  # the health report's window when none is asked for
DECODE_SLICE_S = 0.005  # Opus decoding gives the event loop back at least this often
CLOSE_WAIT_S = 1.0  # a refused client gets this long to answer the close
FRAME_COUNTERS = ("frames_in", "frames_out", "dropped_in", "dropped_out")  # of `SlotStats`
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
    idle_timeout_s: float = 30.0  # no audio this long ends the connection
    ping_interval_s: float | None = 20.0  # websocket keepalive (a dead peer is closed)
    handshake_timeout_s: float = 10.0  # TLS and websocket opening handshakes must end within it
    worker: str = ""  # the `worker` label of the metrics ("" -> host:port)
    # TCP connections one address may hold (more get HTTP 429; 0: no cap). Behind a
    # balancer every connection comes from its address: raise it above the slots, or 0.
    max_connections_per_address: int = 32
    max_pending_handshakes: int = 64  # connections with no HTTP request yet (more: closed)

    def __post_init__(self) -> None:
        for name in ("input_backlog", "output_backlog"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("max_connections_per_address", "max_pending_handshakes"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 (0: no cap), got {getattr(self, name)}")


class Refusal(Exception):
    """End a conversation with this 0x05 message and websocket close code; `reason` is
    the metrics' label (`metrics.REFUSAL_REASONS`)."""

    def __init__(self, message: str, code: int = CLOSE_POLICY, reason: str = "bad_input"):
        super().__init__(message)
        self.message, self.code, self.reason = message, code, reason


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
        self._windows = {name: WindowedPercentiles() for name in ("step", "added", "wait", "transport")}
        self._started = time.monotonic()
        self._draining = False
        self._drain_deadline = math.inf  # time.monotonic() by which every conversation ends
        self.metrics = ServerMetrics(config.worker or f"{config.host}:{config.port}", self._state)
        self._tick_task: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self._ws_server: Any = None
        self.gate = ConnectionGate(config.max_connections_per_address, config.max_pending_handshakes)

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
            create_connection=_gated_connection(self.gate),
            compression=None,  # Opus does not compress; deflate would cost CPU and memory
            max_size=4 * protocol.MAX_MESSAGE_BYTES,  # above the cap: a 0x05 explains
            write_limit=c.write_buffer_bytes,
            ping_interval=c.ping_interval_s,
            ping_timeout=c.ping_interval_s,
            open_timeout=c.handshake_timeout_s,
            ssl=c.ssl,
            ssl_handshake_timeout=c.handshake_timeout_s if c.ssl else None,
        )
        self.port = self._ws_server.sockets[0].getsockname()[1]
        self._started = time.monotonic()
        return self

    def _warm_up(self) -> None:
        self.engine.start()
        self.engine.warmup()

    async def drain(self, grace_s: float) -> None:
        """Stop taking conversations (health answers 503, new ones get `DRAINING_MESSAGE`),
        wait up to `grace_s` for the running ones to end, then end the rest with that
        0x05 message and a normal close. Called again (a second signal), it can only
        shorten the wait."""
        self._draining = True
        self._drain_deadline = min(self._drain_deadline, time.monotonic() + grace_s)
        while self._sessions and time.monotonic() < self._drain_deadline:
            await asyncio.sleep(0.05)
        ending = [s for s in self._sessions if not s.closed]
        for s in ending:
            log.info("conversation %s ended by the shutdown", s.id)
            self.metrics.refused("draining")
        await asyncio.gather(
            *(_refuse(s.connection, Refusal(DRAINING_MESSAGE, CLOSE_NORMAL)) for s in ending)
        )
        deadline = time.monotonic() + 2 * CLOSE_WAIT_S
        while self._sessions and time.monotonic() < deadline:  # their handlers let go
            await asyncio.sleep(0.01)

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
        self._windows["step"].add(ms, time.monotonic())
        self.metrics.step(ms)
        results = []
        for s, _ in batch:
            frame = out[s.slot]  # type: ignore[index]
            audio = s.encoder.encode(frame.pcm) if frame.pcm is not None else b""
            results.append((audio, frame.text))
        return results, t0, ms

    # -- one conversation ------------------------------------------------------------------------
    async def _handle(self, ws: ServerConnection) -> None:
        cid = ws.id.hex[:12]  # the conversation id in every log line about it
        try:
            await self._conversation(ws, cid)
        except Refusal as r:
            log.info(
                "conversation %s refused (%s): %s", cid, r.reason, r.message,
                extra={"event": "refused", "conversation": cid, "reason": r.reason},
            )  # fmt: skip
            self.metrics.refused(r.reason)
            await _refuse(ws, r, discard_incoming=True)
        except ConnectionClosed:
            pass
        except Exception:
            log.exception("conversation %s failed", cid)
            self.metrics.refused("error")
            await _refuse(ws, Refusal("internal server error", CLOSE_ERROR), discard_incoming=True)

    async def _conversation(self, ws: ServerConnection, cid: str) -> None:
        problem = routes.token_problem(ws.request, self.config.auth_token)  # type: ignore[arg-type]
        if problem:
            raise Refusal(problem, reason="auth")
        try:
            query = urlsplit(ws.request.path).query  # type: ignore[union-attr]
            options = routes.sampling_options(query, self.engine.default_options)
        except ValueError as e:
            raise Refusal(f"bad parameter: {e}") from None
        if self._draining:
            raise Refusal(DRAINING_MESSAGE, CLOSE_NORMAL, reason="draining")
        if len(self._sessions) >= self.engine.max_sessions:
            raise Refusal(BUSY_MESSAGE, CLOSE_NORMAL, reason="busy")
        if self.config.send_buffer_bytes:
            sock = ws.transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.config.send_buffer_bytes)
        s = Session(ws, options, self.config.input_backlog, self.config.output_backlog, id=cid)
        self._sessions.append(s)  # the slot is ours from here on (the busy check counts it)
        sender = None
        try:
            s.slot = await self._engine_call(self.engine.open_slot, options)
            s.stats = self.engine.stats(s.slot)
            s.started = time.monotonic()
            self.metrics.conversation_started()
            peer = _address(ws)
            log.info(
                "conversation %s started in slot %d (from %s)", cid, s.slot, peer,
                extra={"event": "start", "conversation": cid, "slot": s.slot, "peer": peer},
            )  # fmt: skip
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
            seconds = round(time.monotonic() - s.started, 2)
            counts = {k: getattr(s.stats, k) for k in FRAME_COUNTERS}
            log.info(
                "conversation %s ended after %.1f s: %s", s.id, seconds,
                ", ".join(f"{k} {v}" for k, v in counts.items()),
                extra={"event": "end", "conversation": s.id, "seconds": seconds, **counts},
            )  # fmt: skip
        self._sessions.remove(s)
        for name in (*FRAME_COUNTERS, "compute_ms"):
            setattr(self._closed_totals, name, getattr(self._closed_totals, name) + getattr(s.stats, name))

    async def _receive_loop(self, s: Session) -> None:
        idle = self.config.idle_timeout_s
        last_audio = time.monotonic()
        while True:
            try:
                wait = last_audio + idle - time.monotonic()
                if wait <= 0:
                    raise asyncio.TimeoutError
                raw = await asyncio.wait_for(s.connection.recv(), wait)
            except asyncio.TimeoutError:
                raise Refusal(f"no audio received for {idle:g} s", CLOSE_NORMAL, reason="idle") from None
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
                continue  # control, ping, metadata and unknown kinds are ignored (and keep no slot)
            last_audio = time.monotonic()
            try:
                await self._decode(s, message.payload)  # type: ignore[arg-type]
            except OpusError as e:
                raise Refusal(f"bad audio: {e}", CLOSE_BAD_DATA) from None

    async def _decode(self, s: Session, ogg: bytes) -> None:
        """Decode page by page into the session's inbox, giving the loop back every
        `DECODE_SLICE_S` (sphn holds the GIL: a thread would not help)."""
        arrived = time.perf_counter()
        slice_start = arrived
        for page in s.decoder.split(ogg):
            if s.queue_pcm(s.decoder.decode(page), arrived):
                self._ready.set()
            if time.perf_counter() - slice_start > DECODE_SLICE_S:
                await asyncio.sleep(0)
                slice_start = time.perf_counter()

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
                        self._record_latency(added, out.waited_ms)
        except asyncio.TimeoutError:
            log.info("slot %s: the client stopped reading; closing", s.slot)
            s.connection.transport.abort()
        except ConnectionClosed:
            pass

    def _record_latency(self, added_ms: float, waited_ms: float) -> None:
        now = time.monotonic()
        self._windows["added"].add(added_ms, now)
        self._windows["wait"].add(waited_ms, now)
        self._windows["transport"].add(added_ms - waited_ms, now)
        self.metrics.added_latency(added_ms)

    # -- HTTP ------------------------------------------------------------------------------------
    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        token = getattr(connection, "token", None)
        if token is not None:
            self.gate.requested(token)
            if self.gate.over_address_cap(token):
                self.metrics.refused("too_many")
                return routes.text_response(429, "too many connections from this address")
        problem = routes.header_problem(request)
        if problem:
            return routes.text_response(400, problem)
        url = urlsplit(request.path)
        if url.path == protocol.CHAT_PATH:
            if not routes.origin_allowed(request, self.config.allowed_origins, self._own_hosts()):
                self.metrics.refused("origin")
                return routes.text_response(403, "origin not allowed")
            return None  # the websocket upgrade
        if request.method not in ("GET", "HEAD"):
            return routes.text_response(405, "method not allowed", {"Allow": "GET, HEAD"})
        response = self._http_response(url.path, url.query, request)
        return routes.without_body(response) if request.method == "HEAD" else response

    def _http_response(self, path: str, query: str, request: Request) -> Response:
        if path in (routes.HEALTH_PATH, METRICS_PATH):
            problem = routes.token_problem(request, self.config.auth_token)
            if problem:
                return routes.text_response(401, problem, {"WWW-Authenticate": "Bearer"})
            if path == METRICS_PATH:
                return routes.response(200, self.metrics.render(), METRICS_CONTENT_TYPE)
            window = parse_qs(query).get("window", [str(DEFAULT_WINDOW_S)])[-1]
            try:
                report = self.health(float(window))
            except ValueError:
                return routes.text_response(400, f"window must be a number of seconds in (0, {MAX_WINDOW_S}]")
            return routes.json_response(report, 200 if report["status"] == "ready" else 503)
        if self.config.static_dir is None:
            return routes.text_response(404, "not found")
        return routes.static_response(self.config.static_dir, path)

    def _own_hosts(self) -> tuple[str, ...]:
        """The names a page of ours may come from (see `routes.origin_allowed`)."""
        return (self.config.host,)

    def _frame_totals(self) -> dict[str, int]:
        totals = [self._closed_totals] + [s.stats for s in self._sessions]
        return {name: sum(getattr(t, name) for t in totals) for name in FRAME_COUNTERS}

    def _state(self) -> State:
        frames = self._frame_totals()
        return State(
            active=len(self._sessions),
            slots_total=self.engine.max_sessions,
            draining=self._draining,
            frames={k.removeprefix("frames_"): v for k, v in frames.items()},
        )

    def health(self, window_s: float = DEFAULT_WINDOW_S) -> dict[str, Any]:
        """Counters since start; step time over the last steps; both over `window_s`
        (0 < window_s <= `MAX_WINDOW_S`, else `ValueError`). `status`: "ready" (a new
        conversation would be taken), "full" or "draining"."""
        if not (math.isfinite(window_s) and 0 < window_s <= MAX_WINDOW_S):
            raise ValueError(f"window must be in (0, {MAX_WINDOW_S}] seconds, got {window_s}")
        used, total = len(self._sessions), self.engine.max_sessions
        now = time.monotonic()
        w = {name: window.percentiles(window_s, now) for name, window in self._windows.items()}
        status = "draining" if self._draining else "full" if used >= total else "ready"
        return {
            "status": status,
            "model": self.config.model_name,
            "device": str(self.engine.device),
            "uptime_s": round(now - self._started, 1),
            "slots": {"total": total, "used": used, "free": total - used},
            "frames": self._frame_totals(),
            "step_ms": self.engine.step_percentiles(),
            "window": {
                "seconds": window_s,
                "steps": int(self._windows["step"].counts(window_s, now).sum()),
                "step_ms": w["step"],
                "answers": int(self._windows["added"].counts(window_s, now).sum()),
                # arrival -> answer written, minus the model step; of which: waiting for the
                # engine (busy with an earlier step), and the rest (Opus, queues, sockets)
                "added_latency_ms": w["added"],
                "engine_wait_ms": w["wait"],
                "transport_ms": w["transport"],
            },
        }


class _GatedConnection(ServerConnection):
    """A connection counted by `gate` from its TCP accept to its end (see `gate`)."""

    gate: ConnectionGate
    token: GateToken | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        self.token = self.gate.opened(str(peer[0]) if isinstance(peer, tuple) else str(peer))
        super().connection_made(transport)
        if self.token is None:  # too many handshakes pending: no request will be read
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.token is not None:
            self.gate.closed(self.token)
            self.token = None
        super().connection_lost(exc)


def _gated_connection(gate: ConnectionGate) -> type[ServerConnection]:
    return type("GatedConnection", (_GatedConnection,), {"gate": gate})


def _address(ws: ServerConnection) -> str:
    peer = ws.remote_address
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)


async def _refuse(ws: ServerConnection, r: Refusal, discard_incoming: bool = False) -> None:
    """Send the 0x05 message, then close (without waiting on a client that does not read).
    `discard_incoming` (when no one else reads the connection): read and drop what the
    client has queued, so that the library sees its answer to the close however much
    audio came before it."""
    reason = r.message.encode()[:120].decode("utf-8", "ignore")
    reader = asyncio.create_task(_discard(ws)) if discard_incoming else None
    try:
        await asyncio.wait_for(ws.send(protocol.encode(MessageKind.ERROR, r.message)), CLOSE_WAIT_S)
        await asyncio.wait_for(ws.close(r.code, reason), CLOSE_WAIT_S)
    except (ConnectionClosed, asyncio.TimeoutError):
        ws.transport.abort()
    finally:
        if reader is not None:
            reader.cancel()


async def _discard(ws: ServerConnection) -> None:
    try:
        async for _ in ws:
            pass
    except ConnectionClosed:
        pass

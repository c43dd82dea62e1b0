"""An asyncio client for Kyutai's websocket protocol (this server's, and Kyutai's own).

    client = await Client.connect("ws://127.0.0.1:8998", query={"text_seed": 1})
    await client.send_pcm(pcm)                 # float32 24 kHz mono, any length, paced
    async for event in client.events():        # AudioEvent / TextEvent / ErrorEvent
        ...                                    # until the connection closes
    await client.close()

The server drops input that comes faster than real time, so `send_pcm` paces itself: it
returns once its audio could have been spoken, running at most `PACE_LEAD_S` ahead of
real time (`pace=False` sends at once, for servers told to keep every frame).

Audio goes out as Ogg/Opus pages (one 80 ms frame per message) and comes back the same
way; `connect` returns once the server sent its handshake (any 0x00 message, so the Rust
server's 8-byte one works too), and raises `ServerError` if the server refuses instead.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import numpy as np
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from ..audio import SAMPLE_RATE
from . import protocol
from .opus import Framer, OpusDecoder, OpusEncoder, OpusError
from .protocol import MessageKind

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT_S = 30.0  # Kyutai's Python server keeps extra clients waiting silently
PACE_LEAD_S = 0.16  # paced audio runs at most this far ahead of real time (the server keeps 3 frames)


class ServerError(Exception):
    """The server refused the conversation (a 0x05 message, an HTTP error, or a close)."""


@dataclass(frozen=True)
class AudioEvent:
    pcm: np.ndarray = field(repr=False)  # [T] float32, 24 kHz mono


@dataclass(frozen=True)
class TextEvent:
    text: str


@dataclass(frozen=True)
class ErrorEvent:
    message: str


Event = AudioEvent | TextEvent | ErrorEvent


def chat_url(url: str, query: dict[str, object] | None = None) -> str:
    """`ws[s]://host:port[/path]` (or http[s]://) -> the chat websocket URL with `query`.
    A URL without a path gets `protocol.CHAT_PATH`."""
    parts = urlsplit(url if "://" in url else f"ws://{url}")
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss"):
        raise ValueError(f"expected a ws://, wss://, http:// or https:// URL, got {url!r}")
    path = parts.path if parts.path not in ("", "/") else protocol.CHAT_PATH
    params = [parts.query] if parts.query else []
    if query:
        params.append(urlencode({k: v for k, v in query.items() if v is not None}))
    return urlunsplit((scheme, parts.netloc, path, "&".join(p for p in params if p), ""))


class Client:
    """One conversation with a server. Create it with `Client.connect`."""

    def __init__(self, ws: ClientConnection, metadata: dict[str, Any] | None = None, pace: bool = True):
        self._ws = ws
        self.metadata = metadata  # a METADATA message the server sent before the handshake
        self._framer = Framer()
        self._encoder = OpusEncoder()
        self._decoder = OpusDecoder()
        self.seconds_sent = 0.0
        self._pace = pace
        self._started_at: float | None = None  # the loop's clock at the first frame sent

    @classmethod
    async def connect(
        cls,
        url: str,
        query: dict[str, object] | None = None,
        auth_token: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        handshake_timeout: float | None = HANDSHAKE_TIMEOUT_S,
        pace: bool = True,
    ) -> Client:
        """Open a conversation and wait for the server's handshake.

        `query`: sampling parameters (`protocol.QUERY_PARAMS`); `auth_token` is sent as an
        `Authorization: Bearer` header; `pace`: see `send_pcm`. Raises `ServerError` if the server refuses,
        `TimeoutError` if no handshake comes within `handshake_timeout` seconds, `OSError`
        (`ConnectionError`) if no websocket server answers, `ValueError` for a bad URL."""
        target = chat_url(url, query)
        headers = {"Authorization": f"Bearer {auth_token}"} if auth_token else None
        kwargs: dict = {"ssl": ssl_context} if ssl_context is not None else {}
        try:
            ws = await connect(
                target,
                additional_headers=headers,
                compression=None,
                max_size=4 * protocol.MAX_MESSAGE_BYTES,
                **kwargs,
            )
        except InvalidStatus as e:
            status = e.response.status_code
            body = e.response.body.decode("utf-8", "replace").strip()
            raise ServerError(f"the server refused the connection (HTTP {status}): {body}") from None
        except InvalidURI as e:
            raise ValueError(str(e)) from None
        except (InvalidHandshake, EOFError) as e:  # not a websocket server (e.g. plain ws:// to TLS)
            raise ConnectionError(f"no websocket server at {target}: {e}") from None
        try:
            metadata = await asyncio.wait_for(_await_handshake(ws), handshake_timeout)
        except BaseException:
            await ws.close()
            raise
        return cls(ws, metadata, pace)

    async def send_pcm(self, pcm: np.ndarray) -> None:
        """Send audio: pcm [T] float32, 24 kHz mono, any length (sent in 80 ms frames;
        the remainder waits for the next call), paced in real time unless `pace=False`.
        Raises `ConnectionError` once closed."""
        pcm = np.asarray(pcm, dtype=np.float32)
        if pcm.ndim != 1:
            raise ValueError(f"expected mono pcm [T], got shape {list(pcm.shape)}")
        for frame in self._framer.push(pcm):
            if self._pace:
                await self._wait_for_real_time()
            pages = self._encoder.encode(frame)
            self.seconds_sent += len(frame) / SAMPLE_RATE
            if pages:
                try:
                    await self._ws.send(protocol.encode(MessageKind.AUDIO, pages))
                except ConnectionClosed as e:
                    raise ConnectionError(f"the connection is closed ({e})") from None

    async def _wait_for_real_time(self) -> None:
        """Sleep while what was sent runs more than `PACE_LEAD_S` ahead of the clock (a source
        that fell behind, e.g. a stalled microphone, catches up at once)."""
        now = asyncio.get_running_loop().time()
        if self._started_at is None:
            self._started_at = now
        ahead = self._started_at + self.seconds_sent - PACE_LEAD_S - now
        if ahead > 0:
            await asyncio.sleep(ahead)

    async def events(self) -> AsyncIterator[Event]:
        """What the server sends, until the connection closes (then the iteration ends).
        Messages of other kinds (metadata, ping, unknown) are skipped."""
        while True:
            try:
                raw = await self._ws.recv()
            except ConnectionClosed:
                return
            try:
                message = protocol.decode(raw)
            except ValueError as e:
                yield ErrorEvent(f"malformed message from the server: {e}")
                continue
            if message.kind == MessageKind.AUDIO:
                try:
                    pcm = self._decoder.append(message.payload)  # type: ignore[arg-type]
                except OpusError as e:
                    yield ErrorEvent(f"undecodable audio from the server: {e}")
                    await self.close()
                    return
                if len(pcm):
                    yield AudioEvent(pcm)
            elif message.kind == MessageKind.TEXT:
                yield TextEvent(message.payload)  # type: ignore[arg-type]
            elif message.kind == MessageKind.ERROR:
                yield ErrorEvent(message.payload)  # type: ignore[arg-type]

    @property
    def close_code(self) -> int | None:
        """The websocket close code once the connection is closed (None before)."""
        return self._ws.close_code

    async def close(self) -> None:
        await self._ws.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def _await_handshake(ws: ClientConnection) -> dict[str, Any] | None:
    """Read until the 0x00 handshake; returns the last METADATA seen before it."""
    metadata: dict[str, Any] | None = None
    while True:
        try:
            raw = await ws.recv()
        except ConnectionClosed as e:
            reason = f": {e.rcvd.reason}" if e.rcvd and e.rcvd.reason else ""
            raise ServerError(f"the server closed the connection before the handshake{reason}") from None
        try:
            message = protocol.decode(raw)
        except ValueError as e:
            log.warning("ignoring a malformed message before the handshake: %s", e)
            continue
        if message.kind == MessageKind.HANDSHAKE:
            return metadata
        if message.kind == MessageKind.ERROR:
            raise ServerError(str(message.payload))
        if message.kind == MessageKind.METADATA and isinstance(message.payload, dict):
            metadata = message.payload

"""One conversation's state on the server: its codecs, and the two bounded queues
between the socket and the model.

    socket -> OpusDecoder -> Framer -> inbox (<= input_backlog frames) -> Engine.step
    Engine.step -> OpusEncoder -> outbox (<= output_backlog frames) -> socket

Both queues drop their oldest audio when full and count it in the slot's `SlotStats`
(`dropped_in`, `dropped_out`), so a client that floods, or one that falls behind reading,
adds a bounded delay, never a growing one. Text is never dropped: the pieces of a dropped
output frame travel with the next one. The first audio output (it carries the OpusHead
and OpusTags pages the client needs to decode anything) is never dropped.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..lm.sampling import SamplingOptions
from .engine import SlotStats
from .opus import Framer, OpusDecoder, OpusEncoder


@dataclass
class Outgoing:
    """What one model step produced for one conversation, waiting for the socket."""

    audio: bytes  # Ogg pages of one 80 ms frame (b"" while the model's delays fill)
    texts: list[str]  # text pieces, in order
    arrived: float  # time.perf_counter() when the input frame it answers was complete
    compute_ms: float  # duration of the model step it came from
    waited_ms: float = 0.0  # from `arrived` to the start of that step (the engine was busy)
    keep: bool = False  # carries the Ogg/Opus header pages: never dropped


@dataclass(eq=False)
class Session:
    connection: Any  # the transport's connection object (a websockets ServerConnection)
    options: SamplingOptions
    input_backlog: int = 3
    output_backlog: int = 4
    id: str = ""  # the conversation id of the log lines
    slot: int | None = None  # the engine slot, once opened
    started: float = 0.0  # time.monotonic() when the slot opened
    stats: SlotStats = field(default_factory=SlotStats)  # the engine's, once opened
    closed: bool = False
    decoder: OpusDecoder = field(default_factory=OpusDecoder)
    encoder: OpusEncoder = field(default_factory=OpusEncoder)
    framer: Framer = field(default_factory=Framer)
    inbox: deque[tuple[np.ndarray, float]] = field(init=False)  # (frame [frame_size], arrival)
    outbox: deque[Outgoing] = field(default_factory=deque)
    out_ready: asyncio.Event = field(default_factory=asyncio.Event)
    _headers_pending: bool = True

    def __post_init__(self) -> None:
        if self.input_backlog < 1 or self.output_backlog < 1:
            raise ValueError(f"backlogs must be >= 1, got {self.input_backlog}, {self.output_backlog}")
        self.inbox = deque(maxlen=self.input_backlog)

    @property
    def ready(self) -> bool:
        """Open, with a frame waiting for the model."""
        return self.slot is not None and not self.closed and bool(self.inbox)

    def receive_audio(self, ogg: bytes, now: float) -> int:
        """Client Ogg/Opus bytes -> frames queued for the model (returns how many).
        Raises `OpusError` for bytes that are not an Ogg/Opus stream."""
        return self.queue_pcm(self.decoder.append(ogg), now)

    def queue_pcm(self, pcm: np.ndarray, now: float) -> int:
        """Decoded pcm [T] float32 -> frames queued for the model (returns how many)."""
        frames = self.framer.push(pcm)
        for frame in frames:
            if len(self.inbox) == self.input_backlog:
                self.stats.dropped_in += 1  # appending drops the oldest
            self.inbox.append((frame, now))
        return len(frames)

    def take_frame(self) -> tuple[np.ndarray, float]:
        """The oldest queued frame [frame_size] float32 and its arrival time."""
        return self.inbox.popleft()

    def deliver(self, out: Outgoing) -> None:
        """Queue a model output for the socket, dropping the oldest beyond the backlog."""
        if self.closed or (not out.audio and not out.texts):
            return
        if out.audio and self._headers_pending:
            out.keep, self._headers_pending = True, False
        box = self.outbox
        while len(box) >= self.output_backlog:
            i = 1 if box[0].keep else 0
            if i >= len(box):
                break
            dropped = box[i]
            del box[i]
            (box[i] if i < len(box) else out).texts[:0] = dropped.texts
            self.stats.dropped_out += bool(dropped.audio)
        box.append(out)
        self.out_ready.set()

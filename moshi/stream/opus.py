"""Ogg/Opus streams over `sphn` (Kyutai's Rust-backed library: the byte stream their
clients send and expect), 24 kHz mono, plus the re-framing into 80 ms frames.

    client bytes (Ogg pages) --OpusDecoder--> pcm [T] --Framer--> frames [1920]
    frames [1920] --OpusEncoder--> Ogg pages (the first call's output starts with the
                                   OpusHead and OpusTags pages)

sphn's reader accepts some garbage silently (it decodes an Ogg stream whose first packet
is not an OpusHead, e.g. Vorbis, as if it were Opus) and reports other garbage one call
late, so `OpusDecoder` checks the start of the stream itself: the "OggS" capture pattern,
Ogg version 0, the beginning-of-stream flag, and an "OpusHead" packet in the first page.
Any problem raises `OpusError` (a `ValueError`) and the decoder stays failed.

A stream's OpusHead input rate (48 kHz from most browsers) is only informative: Opus
packets do not depend on it and libopus decodes them at our 24 kHz, so any rate is taken.
"""

from __future__ import annotations

import numpy as np
import sphn

from ..audio import FRAME_SIZE, SAMPLE_RATE

OGG_CAPTURE = b"OggS"
OPUS_HEAD = b"OpusHead"
_OGG_HEADER_BYTES = 27  # fixed part of a page header; the segment table follows
_BOS_FLAG = 0x02  # header type: beginning of stream
# The largest page body accepted. The format allows 65025 bytes; encoders flush pages at
# about 4 KB (libogg) and ours writes one 80 ms frame (~100-400 bytes) per page.
MAX_OGG_PAGE_BODY = 8192
_START_BYTES = _OGG_HEADER_BYTES + 255 + len(OPUS_HEAD)  # enough to validate a stream's start


class OpusError(ValueError):
    """Bytes that are not an Ogg/Opus stream (or a stream that broke)."""


def check_stream_start(data: bytes) -> bool:
    """Validate the start of an Ogg/Opus stream. Returns False while more bytes are needed
    to decide, True once the first page's header and OpusHead magic are checked; raises
    `OpusError` as soon as the bytes cannot be the start of an Ogg/Opus stream."""
    if data[: len(OGG_CAPTURE)] != OGG_CAPTURE[: len(data)]:
        raise OpusError(f"not an Ogg stream: it starts with {data[:4]!r}, expected {OGG_CAPTURE!r}")
    if len(data) < _OGG_HEADER_BYTES:
        return False
    if data[4] != 0:
        raise OpusError(f"unsupported Ogg version {data[4]}")
    if not data[5] & _BOS_FLAG:
        raise OpusError("the first Ogg page is not marked as the beginning of a stream")
    payload = _OGG_HEADER_BYTES + data[26]  # after the segment table
    if len(data) < payload + len(OPUS_HEAD):
        return False
    if data[payload : payload + len(OPUS_HEAD)] != OPUS_HEAD:
        raise OpusError(
            f"an Ogg stream, but not Opus: its first packet starts with {data[payload : payload + 8]!r}"
        )
    return True


class OggPager:
    """Cuts a byte stream into whole Ogg pages, checking each page header as it arrives.

    A page declares its body size in its header (up to 65025 bytes in the format); a page
    claiming more than `max_body` is refused at once (`OpusError`) instead of silently
    swallowing the audio that follows while it waits for its body."""

    def __init__(self, max_body: int = MAX_OGG_PAGE_BODY):
        self.max_body = max_body
        self._buffer = bytearray()

    def push(self, data: bytes) -> list[bytes]:
        """More stream bytes -> the pages they complete, in order (each header + body)."""
        self._buffer += data
        pages, start, buf = [], 0, self._buffer
        while len(buf) - start >= _OGG_HEADER_BYTES:
            if buf[start : start + 4] != OGG_CAPTURE:
                raise OpusError(f"broken Ogg stream: a page starts with {bytes(buf[start : start + 4])!r}")
            table_end = start + _OGG_HEADER_BYTES + buf[start + 26]
            if len(buf) < table_end:
                break
            body = sum(buf[start + _OGG_HEADER_BYTES : table_end])
            if body > self.max_body:
                raise OpusError(f"an Ogg page of {body} bytes: at most {self.max_body} are accepted")
            if len(buf) < table_end + body:
                break
            pages.append(bytes(buf[start : table_end + body]))
            start = table_end + body
        del buf[:start]
        return pages


class OpusDecoder:
    """Ogg/Opus bytes, in pieces of any size, -> float32 pcm at `sample_rate` (mono).

    `split` then `decode` (page by page, so a caller can interleave other work between
    pages), or `append` for both at once."""

    def __init__(self, sample_rate: int = SAMPLE_RATE):
        self._reader = sphn.OpusStreamReader(sample_rate)
        self._pager = OggPager()
        self._head = b""  # the stream's first bytes, until its start is validated
        self._checked = False
        self._error: OpusError | None = None

    def split(self, data: bytes) -> list[bytes]:
        """Bytes -> the whole Ogg pages they complete. Raises `OpusError` for bytes that
        are not (or no longer) an Ogg/Opus stream; the decoder then stays failed."""
        if self._error is not None:
            raise self._error
        try:
            if not self._checked:  # decided on the first bytes, before any page is whole
                self._head = (self._head + data)[:_START_BYTES]
                self._checked = check_stream_start(self._head)
            pages = self._pager.push(data)
            if pages and not self._checked:  # a whole first page too short for an OpusHead
                raise OpusError("the first Ogg page holds no OpusHead packet")
        except OpusError as e:
            self._error = e
            raise
        return pages

    def decode(self, page: bytes) -> np.ndarray:
        """One whole page (from `split`) -> the pcm it completes, [T] float32 (T may be 0)."""
        if self._error is not None:
            raise self._error
        try:
            pcm = self._reader.append_bytes(page)
        except Exception as e:  # sphn raises ValueError for broken pages; be safe
            self._error = OpusError(f"broken Ogg/Opus stream: {e}")
            raise self._error from None
        return np.asarray(pcm, dtype=np.float32).reshape(-1)

    def append(self, data: bytes) -> np.ndarray:
        """Decode more bytes: returns the pcm they complete, [T] float32 (T may be 0)."""
        pieces = [self.decode(page) for page in self.split(data)]
        return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)


class Framer:
    """Re-cuts pcm of any length into frames of `frame_size` samples."""

    def __init__(self, frame_size: int = FRAME_SIZE):
        self.frame_size = frame_size
        self._pending = np.zeros(0, dtype=np.float32)

    @property
    def pending(self) -> int:
        """Samples waiting for a full frame."""
        return len(self._pending)

    def push(self, pcm: np.ndarray) -> list[np.ndarray]:
        """pcm [T] float32 -> the full frames now available, each [frame_size] float32."""
        if pcm.ndim != 1:
            raise ValueError(f"expected mono pcm [T], got shape {list(pcm.shape)}")
        data = np.concatenate([self._pending, pcm.astype(np.float32, copy=False)])
        n = len(data) // self.frame_size
        frames = [data[i * self.frame_size : (i + 1) * self.frame_size] for i in range(n)]
        self._pending = data[n * self.frame_size :].copy()
        return frames


class OpusEncoder:
    """float32 pcm frames (mono, `sample_rate`) -> Ogg page bytes.

    `frame_size` must be an Opus frame size (1920 = 80 ms at 24 kHz works); the first
    non-empty output starts with the OpusHead and OpusTags pages."""

    def __init__(self, sample_rate: int = SAMPLE_RATE, frame_size: int = FRAME_SIZE):
        self._writer = sphn.OpusStreamWriter(sample_rate)
        self.frame_size = frame_size

    def encode(self, frame: np.ndarray) -> bytes:
        """One frame [frame_size] float32 -> Ogg pages (may be empty)."""
        if frame.shape != (self.frame_size,):
            raise ValueError(f"expected a frame of [{self.frame_size}] samples, got {list(frame.shape)}")
        return bytes(self._writer.append_pcm(np.ascontiguousarray(frame, dtype=np.float32)))

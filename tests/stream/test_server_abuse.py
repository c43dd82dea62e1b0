"""Clients that misbehave get a clear 0x05 message or a clean close, their slot is freed,
and a well-behaved conversation running beside them (the witness) does not notice."""

import asyncio
import socket
import time

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from moshi.stream import protocol
from tests.stream.test_server_support import (  # noqa: F401 (one_torch_thread: autouse)
    FRAME,
    HANG_GUARD_S,
    ogg_messages,
    one_torch_thread,
    raw_connect,
    served_with_witness,
    ws_frame,
)

LIMITS = {"send_buffer_bytes": 4096, "send_stall_s": 0.5, "idle_timeout_s": 1.0}


@pytest.fixture(scope="module")
def served(tiny_parts, speech):
    with served_with_witness(tiny_parts, speech, **LIMITS) as served:
        yield served


@pytest.fixture(scope="module")
def audio(speech) -> list[bytes]:
    return ogg_messages(speech[: 6 * FRAME])


async def exchange(url: str, messages: list) -> tuple[list, int | None]:
    """Connect, send `messages` after the handshake, read until the server closes.
    Returns (what the server sent after the handshake, the close code)."""
    received = []
    async with connect(f"{url}/api/chat", compression=None, max_size=None) as ws:
        assert await asyncio.wait_for(ws.recv(), HANG_GUARD_S) == protocol.HANDSHAKE
        try:
            for m in messages:
                await ws.send(m)
            while True:
                received.append(await asyncio.wait_for(ws.recv(), HANG_GUARD_S))
        except ConnectionClosed:
            pass
        return received, ws.close_code


def check_refused(served, messages, code: int, text: str | None) -> None:
    server, witness = served
    received, close_code = asyncio.run(exchange(server.url, messages))
    assert close_code == code
    if text is not None:
        error = protocol.decode(received[-1])
        assert error.kind == protocol.MessageKind.ERROR and text in error.payload, received[-1]
    server.wait_until(lambda h: h["slots"]["used"] == 1)  # only the witness
    witness.still_hears()


def test_a_text_frame(served):
    check_refused(served, ["hello"], 1003, "expected a binary message")


def test_an_empty_message(served):
    check_refused(served, [b""], 1007, "empty message")


def test_an_oversized_message(served):
    check_refused(served, [b"\x01" + bytes(protocol.MAX_MESSAGE_BYTES)], 1009, "exceeds")


def test_a_huge_message_is_cut_off(served):
    check_refused(served, [b"\x01" + bytes(8 * protocol.MAX_MESSAGE_BYTES)], 1009, None)


def test_audio_that_is_not_ogg(served):
    check_refused(served, [b"\x01RIFF\x24\x00\x00\x00WAVEfmt "], 1007, "not an Ogg stream")


def test_ogg_that_is_not_opus(served, audio):
    first = audio[0].replace(b"OpusHead", b"\x01vorbis\x00")
    check_refused(served, [first, *audio[1:]], 1007, "not Opus")


def test_broken_pages_after_a_good_start(served, audio):
    check_refused(served, [audio[0], b"\x01" + b"not a page at all" * 8, *audio[1:]], 1007, "bad audio")


def test_other_kinds_are_ignored(served, audio):
    """Control, ping, metadata, a handshake, unknown kinds: the conversation goes on."""
    server, _ = served

    async def run():
        noise = [b"\x03\x00", b"\x06", b'\x04{"a":1}', b"\x00", b"\x07\x01hi", b"\x09junk"]
        async with connect(f"{server.url}/api/chat", compression=None) as ws:
            assert await ws.recv() == protocol.HANDSHAKE
            for n, a in zip(noise, audio, strict=False):
                await ws.send(n)
                await ws.send(a)
            while True:
                message = protocol.decode(await asyncio.wait_for(ws.recv(), HANG_GUARD_S))
                assert message.kind != protocol.MessageKind.ERROR, message
                if message.kind == protocol.MessageKind.AUDIO:
                    return

    asyncio.run(run())
    server.wait_until(lambda h: h["slots"]["used"] == 1)


def test_a_silent_client_is_closed_after_the_idle_timeout(served):
    check_refused(served, [], 1000, "no audio received")


def test_a_client_that_disconnects_mid_frame(served, audio):
    server, witness = served
    sock, _ = raw_connect(server.port)
    sock.sendall(ws_frame(audio[0]) + ws_frame(audio[1])[:40])
    sock.close()
    server.wait_until(lambda h: h["slots"]["used"] == 1)
    witness.still_hears()


def test_a_client_that_never_reads(served, speech):
    """Its outbox drops the oldest frames; once a send stalls, the connection is cut."""
    server, witness = served
    dropped = server.health()["frames"]["dropped_out"]
    sock, _ = raw_connect(server.port, rcvbuf=4096)
    frames = [ws_frame(m) for m in ogg_messages(speech)]
    deadline = time.monotonic() + HANG_GUARD_S
    try:
        i = 0
        while time.monotonic() < deadline:  # at a pace the model keeps up with
            sock.sendall(frames[1 + i % (len(frames) - 1)] if i else frames[0])
            i += 1
            time.sleep(0.01)
        pytest.fail("the server never cut off a client that does not read")
    except OSError:
        pass  # reset by the server
    finally:
        sock.close()
    health = server.wait_until(lambda h: h["slots"]["used"] == 1)
    assert health["frames"]["dropped_out"] > dropped
    witness.still_hears()


def test_raw_garbage_instead_of_a_websocket(served):
    server, witness = served
    with socket.create_connection(("127.0.0.1", server.port), timeout=HANG_GUARD_S) as sock:
        sock.sendall(b"\x16\x03\x01\x02\x00garbage, not HTTP\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(4096):  # the server answers (400) or closes: it does not hang
            pass
    witness.still_hears()

"""Regression tests for what an attack on the running server found: each way of stalling,
holding or crashing it now gets a bounded cost, a clear refusal or a 4xx, and the witness
conversation beside it keeps hearing."""

import asyncio
import threading
import time

import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from moshi.stream import protocol
from moshi.stream.opus import MAX_OGG_PAGE_BODY, OggPager, OpusDecoder, OpusEncoder, OpusError
from tests.stream.test_server_support import (  # noqa: F401 (one_torch_thread: autouse)
    FRAME,
    HANG_GUARD_S,
    ServerThread,
    http_get,
    one_torch_thread,
    raw_connect,
    served_with_witness,
    ws_frame,
)

LIMITS = {"idle_timeout_s": 1.5}


@pytest.fixture(scope="module")
def served(tiny_parts, speech, tmp_path_factory):
    web = tmp_path_factory.mktemp("web")
    (web / "index.html").write_text("<p>hi</p>")
    (web / "loop").symlink_to(web / "loop")
    with served_with_witness(tiny_parts, speech, static_dir=web, **LIMITS) as served:
        yield served


def ogg(pcm: np.ndarray) -> bytes:
    enc = OpusEncoder()
    return b"".join(enc.encode(pcm[i : i + FRAME]) for i in range(0, len(pcm) - FRAME + 1, FRAME))


async def session(url: str, messages: list[bytes], pause_s: float = 0.0) -> tuple[list[bytes], int | None]:
    """Handshake, send `messages` (`pause_s` apart) while reading, until the server closes.
    Returns (what the server sent after the handshake, the close code)."""
    received: list[bytes] = []
    async with connect(f"{url}/api/chat", compression=None, max_size=None) as ws:
        assert await asyncio.wait_for(ws.recv(), HANG_GUARD_S) == protocol.HANDSHAKE

        async def read() -> None:
            try:
                async for m in ws:
                    received.append(m)  # type: ignore[arg-type]
            except ConnectionClosed:  # closed with an error code: `close_code` says which
                pass

        reader = asyncio.create_task(read())
        try:
            for m in messages:
                await ws.send(m)
                await asyncio.sleep(pause_s)
        except ConnectionClosed:
            pass
        await asyncio.wait_for(reader, HANG_GUARD_S)
        return received, ws.close_code


def last_error(received: list[bytes]) -> str:
    m = protocol.decode(received[-1])
    assert m.kind == protocol.MessageKind.ERROR, received[-1][:40]
    return m.payload  # type: ignore[return-value]


# -- Opus ---------------------------------------------------------------------------------------
def test_a_long_message_decodes_whole(speech):
    """8 s of audio in one message: sphn alone fails on it (one call per page here)."""
    pcm = np.resize(speech, 8 * 24000).astype(np.float32)
    assert len(OpusDecoder().append(ogg(pcm))) == len(pcm) // FRAME * FRAME


def test_an_ogg_page_claiming_a_huge_body_is_refused_at_once(served):
    server, witness = served
    head = ogg(np.zeros(FRAME, np.float32))
    pages = OggPager().push(head)
    huge = bytearray(pages[-1][:27])
    huge[26] = 255  # 255 segments of 255 bytes: a 65 KB body, never sent
    received, code = asyncio.run(
        session(server.url, [b"\x01" + pages[0] + pages[1], b"\x01" + bytes(huge) + bytes([255] * 255)])
    )
    assert code == 1007 and f"at most {MAX_OGG_PAGE_BODY}" in last_error(received)
    with pytest.raises(OpusError, match="at most"):
        OggPager().push(bytes(huge) + bytes([255] * 255))
    witness.still_hears()


def test_seconds_of_audio_in_one_message_do_not_stall_the_others(served, speech):
    server, witness = served
    blob = ogg(np.resize(speech, int(4.8 * 24000)).astype(np.float32))
    received, code = asyncio.run(session(server.url, [b"\x01" + blob] * 3, pause_s=0.2))
    assert code == 1000 and "no audio" in last_error(received)  # then it went quiet: idle
    witness.still_hears()


# -- slots and refusals -----------------------------------------------------------------------
def test_messages_other_than_audio_do_not_hold_a_slot(served):
    server, witness = served
    ignored = bytes([protocol.MessageKind.PING])
    t0 = time.monotonic()
    received, code = asyncio.run(session(server.url, [ignored] * 40, pause_s=0.1))
    assert code == 1000 and "no audio received" in last_error(received)
    assert time.monotonic() - t0 < 4.0 + LIMITS["idle_timeout_s"]  # not after the 40 messages
    witness.still_hears()


# -- HTTP ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["Origin", "Authorization"])
def test_a_header_given_twice_is_a_400(served, name):
    server, _ = served
    status, _, body = http_get(server.port, "/api/chat", [(name, "http://a"), (name, "http://b")])
    assert status == 400 and name.encode() in body


def test_static_paths_that_used_to_crash(served):
    server, _ = served
    assert http_get(server.port, "/" + "a" * 256)[0] == 404  # a name too long for the OS
    assert http_get(server.port, "/loop")[0] == 404  # a symlink loop
    status, headers, body = http_get(server.port, "/", method="HEAD")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 0
    for method in ("POST", "OPTIONS", "PUT"):
        status, headers, _ = http_get(server.port, "/", method=method)
        assert status == 405 and headers["allow"] == "GET, HEAD"


def test_a_health_flood_does_not_starve_the_conversation(served):
    server, witness = served
    stop = threading.Event()

    def flood() -> None:
        while not stop.is_set():
            http_get(server.port, "/api/health?window=600")

    threads = [threading.Thread(target=flood) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        witness.still_hears()
        witness.still_hears()
    finally:
        stop.set()
        for t in threads:
            t.join(HANG_GUARD_S)

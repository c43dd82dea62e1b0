"""The asyncio client against small fake servers: what it sends, what it yields, and how
it reports refusals (so it is tested apart from our server, as Kyutai's would see it)."""

import asyncio
import contextlib

import numpy as np
import pytest
from websockets.asyncio.server import serve

from moshi.stream import protocol
from moshi.stream.client import PACE_LEAD_S, AudioEvent, Client, ErrorEvent, ServerError, TextEvent, chat_url
from moshi.stream.opus import OpusDecoder, OpusEncoder

FRAME = 1920


def test_chat_url_forms():
    assert chat_url("ws://h:1") == "ws://h:1/api/chat"
    assert chat_url("h:1") == "ws://h:1/api/chat"
    assert chat_url("https://h/") == "wss://h/api/chat"
    assert chat_url("http://h:1/custom?a=1", {"text_seed": 3, "x": None}) == "ws://h:1/custom?a=1&text_seed=3"
    with pytest.raises(ValueError, match="ws://"):
        chat_url("ftp://h")


@contextlib.asynccontextmanager
async def fake_server(handler, **kwargs):
    async with serve(handler, "127.0.0.1", 0, compression=None, **kwargs) as server:
        yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"


def test_send_pcm_frames_any_length_and_events_follow_the_server():
    received: list[bytes] = []
    pcm = (np.sin(np.arange(5 * FRAME + 300) / 7) * 0.3).astype(np.float32)

    async def handler(ws):
        assert ws.request.headers["Authorization"] == "Bearer tok"
        assert "text_seed=5" in ws.request.path
        await ws.send(protocol.encode(protocol.MessageKind.METADATA, {"model": "fake"}))
        await ws.send(b"\x00" + bytes(8))  # Kyutai's Rust server: a versioned handshake
        async for message in ws:
            received.append(message)
            if len(received) == 5:
                break
        enc = OpusEncoder()
        for i in range(3):
            await ws.send(b"\x01" + enc.encode(pcm[i * FRAME : (i + 1) * FRAME]))
            await ws.send(b"\x02" + f" piece{i}".encode())
        await ws.send(b"\x07\x01colored")  # unknown kind: skipped
        await ws.send(b"\x06")  # ping: skipped
        await ws.send(b"\x05the end")

    async def run():
        async with fake_server(handler) as url:
            client = await Client.connect(url, query={"text_seed": 5}, auth_token="tok")
            assert client.metadata == {"model": "fake"}
            for piece in np.split(pcm, [100, 2 * FRAME + 5, 2 * FRAME + 5]):  # uneven, one empty
                await client.send_pcm(piece)  # 5 frames in all, 300 samples left waiting
            events = [e async for e in client.events()]
            await client.close()
            return events

    events = asyncio.run(run())
    assert len(received) == 5 and all(m[:1] == b"\x01" for m in received)
    assert b"OpusHead" in received[0]
    dec = OpusDecoder()
    assert sum(len(dec.append(m[1:])) for m in received) == 5 * FRAME
    kinds = [type(e) for e in events]
    assert kinds == [AudioEvent, TextEvent] * 3 + [ErrorEvent]
    assert events[1] == TextEvent(" piece0") and events[-1] == ErrorEvent("the end")
    assert all(e.pcm.shape == (FRAME,) and e.pcm.dtype == np.float32 for e in events[::2][:3])


def test_an_error_before_the_handshake_is_a_server_error():
    async def handler(ws):
        await ws.send(protocol.encode(protocol.MessageKind.ERROR, "server busy: try later"))
        await ws.close()

    async def run():
        async with fake_server(handler) as url:
            await Client.connect(url)

    with pytest.raises(ServerError, match="server busy"):
        asyncio.run(run())


def test_a_close_before_the_handshake_is_a_server_error():
    async def handler(ws):
        await ws.close(1008, "go away")

    async def run():
        async with fake_server(handler) as url:
            await Client.connect(url)

    with pytest.raises(ServerError, match="go away"):
        asyncio.run(run())


def test_an_http_refusal_is_a_server_error():
    async def run():
        async with fake_server(lambda ws: None, process_request=lambda c, r: c.respond(403, "nope")) as url:
            await Client.connect(url)

    with pytest.raises(ServerError, match="HTTP 403"):
        asyncio.run(run())


def test_no_handshake_times_out():
    async def handler(ws):
        await ws.wait_closed()

    async def run():
        async with fake_server(handler) as url:
            await Client.connect(url, handshake_timeout=0.05)

    with pytest.raises(TimeoutError):
        asyncio.run(run())


def test_sending_after_the_server_left_is_a_connection_error():
    async def handler(ws):
        await ws.send(b"\x00")
        await ws.close()

    async def run():
        async with fake_server(handler) as url:
            client = await Client.connect(url)
            assert [e async for e in client.events()] == []  # ends when the server closes
            with pytest.raises(ConnectionError):
                await client.send_pcm(np.zeros(FRAME, np.float32))
            with pytest.raises(ValueError, match="mono"):
                await client.send_pcm(np.zeros((2, FRAME), np.float32))

    asyncio.run(run())


def test_a_whole_file_sent_at_once_is_paced_in_real_time():
    """The server drops what comes faster than real time: send_pcm waits so that frame k
    leaves no earlier than k * 80 ms - PACE_LEAD_S after the first."""
    arrivals: list[float] = []

    async def handler(ws):
        await ws.send(b"\x00")
        async for _ in ws:
            arrivals.append(asyncio.get_running_loop().time())

    async def run():
        async with fake_server(handler) as url:
            client = await Client.connect(url)
            await client.send_pcm(np.zeros(12 * FRAME, np.float32))  # 0.96 s
            await asyncio.sleep(0.05)
            await client.close()

    asyncio.run(run())
    assert len(arrivals) >= 11  # the first Opus page may wait for the next frame
    assert arrivals[-1] - arrivals[0] >= 0.96 - 2 * 0.08 - PACE_LEAD_S

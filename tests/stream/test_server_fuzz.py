"""Random messages (kinds, lengths, garbage audio) and hundreds of connect/disconnect
cycles: the server stays up, answers with well-formed messages only, frees every slot,
keeps its memory flat, and the conversation beside them keeps receiving audio."""

import asyncio
import gc
import logging
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from moshi.stream import protocol
from tests.support.server import FRAME, HANG_GUARD_S, ogg_messages, raw_connect, served_with_witness, ws_frame

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # the tiny models: one thread

# idle: long enough for the witness to sit out the cycles test silent (idle means no audio)
LIMITS = {"send_buffer_bytes": 4096, "send_stall_s": 0.5, "idle_timeout_s": 60.0}
FUZZ_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def served(tiny_parts, speech):
    with served_with_witness(tiny_parts, speech, **LIMITS) as served:
        yield served


@pytest.fixture(scope="module")
def audio(speech) -> list[bytes]:
    return ogg_messages(speech[: 5 * FRAME])


def messages_strategy(audio: list[bytes]) -> st.SearchStrategy:
    pages = [a[1:] for a in audio]
    one = st.one_of(
        st.binary(max_size=300),  # any kind byte, any payload
        st.builds(lambda k, b: bytes([k]) + b, st.integers(0, 9), st.binary(max_size=2000)),
        st.builds(lambda b: b"\x01OggS" + b, st.binary(max_size=500)),  # Ogg-looking garbage
        st.builds(lambda i: b"\x01" + pages[i], st.integers(0, len(pages) - 1)),  # real pages, any order
        st.builds(lambda n: b"\x01" + pages[0][:n], st.integers(0, len(pages[0]))),  # a cut header page
        st.text(max_size=50),  # a text frame
        st.just(b"\x01" + bytes(protocol.MAX_MESSAGE_BYTES)),  # over the cap
    )
    return st.lists(one, min_size=1, max_size=6)


async def fuzz_once(url: str, messages: list) -> list[bytes]:
    received: list[bytes] = []
    async with connect(f"{url}/api/chat", compression=None, max_size=None) as ws:
        assert await asyncio.wait_for(ws.recv(), HANG_GUARD_S) == protocol.HANDSHAKE

        async def read():
            try:
                while True:
                    received.append(await ws.recv())
            except ConnectionClosed:
                pass

        reader = asyncio.create_task(read())
        try:
            for m in messages:
                await ws.send(m)
        except ConnectionClosed:
            pass  # refused part-way: fine
        await asyncio.wait_for(ws.close(), HANG_GUARD_S)
        await asyncio.wait_for(reader, HANG_GUARD_S)
    return received


def test_fuzzed_messages(served, audio):
    server, witness = served

    @FUZZ_SETTINGS
    @given(messages_strategy(audio))
    def run(messages):
        got = asyncio.run(fuzz_once(server.url, messages))
        for raw in got:
            message = protocol.decode(raw)  # every answer is well-formed
            assert message.kind in (
                protocol.MessageKind.AUDIO,
                protocol.MessageKind.TEXT,
                protocol.MessageKind.ERROR,
            )
            if message.kind == protocol.MessageKind.ERROR:
                assert "Traceback" not in message.payload and "File " not in message.payload
        server.wait_until(lambda h: h["slots"]["used"] == 1)  # only the witness

    run()
    witness.still_hears()


def cycle(port: int, i: int, audio: list[bytes]) -> None:
    """One connection, ended in one of several ways (some in the middle of a frame)."""
    sock, _ = raw_connect(port)
    with sock:
        if i % 4 == 0:
            pass  # gone at once (the handshake may not even be read)
        elif i % 4 == 1:
            sock.sendall(ws_frame(audio[0]) + ws_frame(audio[1])[:25])  # cut mid-frame
        elif i % 4 == 2:
            sock.sendall(b"".join(ws_frame(a) for a in audio[:3]) + ws_frame(b"", opcode=8))  # polite close
        else:
            sock.sendall(ws_frame(audio[0])[:3])  # cut inside the frame header


def test_connect_disconnect_cycles_leave_nothing_behind(served, audio, caplog):
    server, witness = served
    # The test runner keeps every log record of a test (one per conversation start and end):
    # that is its memory, not the server's, so the server's info lines are left out here.
    caplog.set_level(logging.WARNING, logger="moshi")
    witness.paused.set()  # only the cycles allocate while memory is measured
    for i in range(20):  # warm up: caches, allocator, code paths
        cycle(server.port, i, audio)
    server.wait_until(lambda h: h["slots"]["used"] == 1)
    server.wait_quiet()
    tasks_before = server.call(lambda: len(asyncio.all_tasks()))
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for i in range(200):
        cycle(server.port, i, audio)
    health = server.wait_until(lambda h: h["slots"]["used"] == 1)
    server.wait_quiet()
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    witness.paused.clear()
    diffs = after.compare_to(before, "lineno")
    # Bounded by design (not leaks): the health endpoint's recent step/latency samples.
    assert sum(d.size_diff for d in diffs) < 128 * 1024, diffs[:10]
    assert health["slots"] == {"total": 3, "used": 1, "free": 2}
    assert server.call(lambda: server.server.engine.free_slots) == 2
    assert server.call(lambda: len(asyncio.all_tasks())) <= tasks_before
    witness.still_hears()

"""The server over real sockets on 127.0.0.1 with the tiny models: a whole conversation
(checked against the engine alone), several at once, the busy refusal, HTTP routes, and
the command line building a server from a model directory."""

import asyncio
import json
import ssl

import numpy as np
import pytest
from websockets.asyncio.client import connect

from moshi.cli.common import UserError
from moshi.cli.main import get_parser as moshi_parser
from moshi.cli.serve import WEB_DIR, build_server, get_parser
from moshi.lm.sampling import SamplingOptions
from moshi.stream.client import AudioEvent, Client, ErrorEvent, ServerError, TextEvent
from moshi.stream.engine import Engine
from moshi.stream.opus import Framer, OpusDecoder, OpusEncoder
from tests.stream.test_server_support import (  # noqa: F401 (one_torch_thread: autouse)
    FRAME,
    HANG_GUARD_S,
    ServerThread,
    http_get,
    ogg_messages,
    one_torch_thread,
    write_tiny_model_dir,
)

SEEDS = {"text_seed": 1, "audio_seed": 2}


async def converse(url: str, pcm: np.ndarray, query: dict, expect_samples: int) -> list:
    """Send all of `pcm` at once (no pacing), collect events until `expect_samples` of audio.
    (A frame's text follows its audio: send one frame more than needed to get it all.)"""
    client = await Client.connect(url, query=query, pace=False)
    events, samples = [], 0

    async def receive():
        nonlocal samples
        async for event in client.events():
            events.append(event)
            samples += len(event.pcm) if isinstance(event, AudioEvent) else 0
            if samples >= expect_samples:
                return

    receiver = asyncio.create_task(receive())
    await client.send_pcm(pcm)
    await asyncio.wait_for(receiver, HANG_GUARD_S)
    await client.close()
    return events


def test_a_conversation_end_to_end_matches_the_engine(tiny_parts, speech):
    mimi, lm, tok = tiny_parts
    n = len(speech) // FRAME
    speech = speech[: n * FRAME]
    sent = np.concatenate([speech, np.zeros(FRAME, np.float32)])  # + 1 frame: see `converse`
    unpaced = {"input_backlog": 10_000, "output_backlog": 10_000}  # process every frame
    with ServerThread(Engine(mimi, lm, tok, max_sessions=2), **unpaced) as server:
        events = asyncio.run(converse(server.url, sent, SEEDS, n * FRAME))
        health = server.wait_idle()
    assert not [e for e in events if isinstance(e, ErrorEvent)]
    received = np.concatenate([e.pcm for e in events if isinstance(e, AudioEvent)])[: (n - 1) * FRAME]
    texts = [e.text for e in events if isinstance(e, TextEvent)]
    assert len(received) == (n - 1) * FRAME  # one 80 ms answer per frame, after the first
    assert texts, "the tiny model speaks some text"
    assert health["frames"]["frames_in"] == n + 1 and health["frames"]["dropped_in"] == 0

    # The same Opus bytes, decoded here, through the engine alone with the same seeds.
    decoder, framer = OpusDecoder(), Framer()
    frames = framer.push(np.concatenate([decoder.append(m[1:]) for m in ogg_messages(speech)]))
    with Engine(mimi, lm, tok, max_sessions=2) as engine:
        engine.warmup()
        slot = engine.open_slot(SamplingOptions(**SEEDS))
        outs = [engine.step({slot: f})[slot] for f in frames]
    assert texts == [o.text for o in outs if o.text]
    encoder, decoder = OpusEncoder(), OpusDecoder()
    expected = np.concatenate([decoder.append(encoder.encode(o.pcm)) for o in outs if o.pcm is not None])
    np.testing.assert_allclose(received, expected, atol=1e-4)


async def first_audio(client: Client, pcm: np.ndarray) -> None:
    """Send a few frames and wait for audio back."""
    await client.send_pcm(pcm[: 4 * FRAME])
    async for event in client.events():
        assert not isinstance(event, ErrorEvent), event
        if isinstance(event, AudioEvent):
            return
    raise AssertionError("closed before any audio came back")


def test_three_at_once_a_fourth_is_busy_then_served(tiny_parts, speech):
    mimi, lm, tok = tiny_parts
    with ServerThread(Engine(mimi, lm, tok, max_sessions=3)) as server:

        async def scenario():
            clients = [await Client.connect(server.url) for _ in range(3)]
            await asyncio.wait_for(asyncio.gather(*(first_audio(c, speech) for c in clients)), HANG_GUARD_S)
            # The fourth: a 0x05 "server busy", then a normal close, with nothing sent by it.
            async with connect(f"{server.url}/api/chat", compression=None) as ws:
                message = await asyncio.wait_for(ws.recv(), HANG_GUARD_S)
                assert message[:1] == b"\x05" and b"busy" in message
                await asyncio.wait_for(ws.wait_closed(), HANG_GUARD_S)
                assert ws.close_code == 1000
            with pytest.raises(ServerError, match="busy"):
                await Client.connect(server.url)
            await clients[0].close()
            await asyncio.to_thread(server.wait_until, lambda h: h["slots"]["used"] == 2)
            again = await Client.connect(server.url)
            await asyncio.wait_for(first_audio(again, speech), HANG_GUARD_S)
            for c in [again, *clients[1:]]:
                await c.close()

        asyncio.run(scenario())
        server.wait_idle()


def test_a_client_written_like_kyutais_works_unchanged(tiny_parts, speech):
    """websockets + sphn only, as Kyutai's `moshi.client`: it sends audio at once without
    waiting for the handshake, and decodes whatever Ogg bytes come back."""
    import sphn

    with ServerThread(Engine(*tiny_parts, max_sessions=1)) as server:

        async def kyutai_client():
            writer, reader = sphn.OpusStreamWriter(24000), sphn.OpusStreamReader(24000)
            kinds, samples = [], 0
            async with connect(f"{server.url}/api/chat") as ws:  # deflate offered, as theirs
                for i in range(6):
                    await ws.send(b"\x01" + writer.append_pcm(speech[i * FRAME : (i + 1) * FRAME]))
                while samples < 3 * FRAME:
                    message = await asyncio.wait_for(ws.recv(), HANG_GUARD_S)
                    kinds.append(message[0])
                    if message[0] == 1:
                        samples += len(reader.append_bytes(message[1:]))
            return kinds

        kinds = asyncio.run(kyutai_client())
        assert kinds[0] == 0 and kinds.count(0) == 1 and set(kinds) <= {0, 1, 2}
        server.wait_idle()


def test_health_and_static_files_over_http(tiny_parts):
    with ServerThread(Engine(*tiny_parts, max_sessions=2), static_dir=WEB_DIR) as server:
        status, headers, body = http_get(server.port, "/api/health")
        health = json.loads(body)
        assert status == 200 and headers["content-type"] == "application/json"
        assert health["slots"] == {"total": 2, "used": 0, "free": 2}
        assert set(health["frames"]) == {"frames_in", "frames_out", "dropped_in", "dropped_out"}
        assert {"step_ms", "window", "model", "device"} <= set(health)
        assert http_get(server.port, "/")[0] == 200
        status, headers, _ = http_get(server.port, "/conversation.js")
        assert status == 200 and headers["content-type"].startswith("text/javascript")
        for path in ("/../README.md", "/%2e%2e/pyproject.toml", "/test/protocol.test.mjs", "/nope"):
            assert http_get(server.port, path)[0] == 404, path
    with ServerThread(Engine(*tiny_parts, max_sessions=1), static_dir=None) as server:
        assert http_get(server.port, "/")[0] == 404
        assert http_get(server.port, "/api/health")[0] == 200


def test_the_command_line_serves_a_model_directory(tmp_path, speech):
    config = write_tiny_model_dir(tmp_path / "tiny")
    argv = ["--config", str(config), "--device", "cpu", "--port", "0", "--static", "none"]
    argv += ["--max-sessions", "2", "--ssl-self-signed"]
    assert moshi_parser().parse_args(["serve", *argv]).max_sessions == 2  # `moshi serve` takes the same
    server = build_server(get_parser().parse_args(argv))
    assert server.engine.max_sessions == 2 and server.config.port == 0 and server.config.ssl
    insecure = ssl.create_default_context()  # as `moshi chat --insecure` would
    insecure.check_hostname, insecure.verify_mode = False, ssl.CERT_NONE

    async def scenario():
        async with server:
            url = f"wss://127.0.0.1:{server.port}"
            async with await Client.connect(url, ssl_context=insecure) as client:
                await asyncio.wait_for(first_audio(client, speech), HANG_GUARD_S)

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--max-sessions", "0"], "at least 1"),
        (["--static", "/nonexistent"], "no index.html"),
        (["--ssl", "/nonexistent"], "no cert.pem"),
    ],
)
def test_command_line_mistakes_are_user_errors(tmp_path, flags, message):
    config = write_tiny_model_dir(tmp_path / "tiny")
    args = get_parser().parse_args(["--config", str(config), "--device", "cpu", *flags])
    with pytest.raises(UserError, match=message):
        build_server(args)

"""`moshi chat --url`: the conversation runs on a server; this side moves audio and text.

The audio source blocks (a sound card callback queue, or a file paced in real time), so a
daemon thread reads it and hands frames to the event loop; one task sends them, another
plays and prints what comes back. When the input ends (a file), Moshi gets `DRAIN_SECONDS`
to finish before the connection is closed.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import threading
import time

import numpy as np

from ..audio import FRAME_SIZE
from ..stream.client import AudioEvent, Client, ErrorEvent, ServerError, TextEvent
from .audio_io import AudioIO
from .chat import Printer, Recorder
from .common import UserError

DRAIN_SECONDS = 2.0  # after the input ends, wait at most this long for Moshi's last audio
# Our sampling flags -> the query parameters of Kyutai's protocol (`protocol.QUERY_PARAMS`).
QUERY_OF_FLAG = {
    "temp": ("audio_temperature",),
    "top_k": ("audio_topk",),
    "temp_text": ("text_temperature",),
    "top_k_text": ("text_topk",),
    "seed": ("text_seed", "audio_seed"),
}


def chat_remote(args: argparse.Namespace, audio: AudioIO, printer: Printer, recorder: Recorder) -> None:
    asyncio.run(_talk(args, audio, printer, recorder))


def query(args: argparse.Namespace) -> dict[str, object]:
    """The sampling flags the user gave, as query parameters (the server's defaults otherwise)."""
    out: dict[str, object] = {}
    for flag, params in QUERY_OF_FLAG.items():
        if getattr(args, flag) is not None:
            out.update(dict.fromkeys(params, getattr(args, flag)))
    return out


def _ssl_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    if not (args.insecure and args.url.startswith("wss://")):
        return None
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def _talk(args: argparse.Namespace, audio: AudioIO, printer: Printer, recorder: Recorder) -> None:
    try:
        client = await Client.connect(
            args.url, query(args), auth_token=args.auth_token, ssl_context=_ssl_context(args)
        )
    except ServerError as e:
        raise UserError(f"{args.url}: {e}") from e
    except (OSError, TimeoutError) as e:
        raise UserError(f"cannot reach {args.url}: {e or type(e).__name__}") from e
    except ValueError as e:  # a malformed URL
        raise UserError(f"--url {args.url}: {e}") from e

    loop = asyncio.get_running_loop()
    frames: asyncio.Queue[np.ndarray | None] = asyncio.Queue()
    threading.Thread(target=_pump, args=(audio, loop, frames), daemon=True).start()
    counts = {"sent": 0, "received": 0}  # samples

    async def send() -> bool:
        """True when the input ended, False when the connection did first."""
        while (frame := await frames.get()) is not None:
            recorder.user.append(frame)
            try:
                await client.send_pcm(frame)
            except ConnectionError:
                return False
            counts["sent"] += len(frame)
        return True

    async def receive() -> None:
        async for event in client.events():
            if isinstance(event, AudioEvent):
                audio.write(event.pcm)
                recorder.moshi.append(event.pcm)
                counts["received"] += len(event.pcm)
            elif isinstance(event, TextEvent):
                printer.text(event.text)
            elif isinstance(event, ErrorEvent):
                raise UserError(f"the server says: {event.message}")
            printer.audio_problems(audio.counters())

    sender, receiver = asyncio.create_task(send()), asyncio.create_task(receive())
    try:
        await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
        if receiver.done() or not sender.result():  # the server went away (or sent an error)
            await asyncio.wait({receiver}, timeout=DRAIN_SECONDS)
            if receiver.done():
                receiver.result()
            raise _lost(client)
        deadline = time.monotonic() + DRAIN_SECONDS
        while (
            counts["received"] < counts["sent"] - FRAME_SIZE
            and time.monotonic() < deadline
            and not receiver.done()
        ):
            await asyncio.sleep(0.02)
        if receiver.done():
            receiver.result()
    finally:
        for task in (sender, receiver):
            task.cancel()
        await asyncio.gather(sender, receiver, return_exceptions=True)
        await client.close()


def _lost(client: Client) -> UserError:
    code = f", close code {client.close_code}" if client.close_code is not None else ""
    return UserError(
        f"the server ended the conversation after {client.seconds_sent:.1f} s of input "
        f"(the connection closed{code})"
    )


def _pump(audio: AudioIO, loop: asyncio.AbstractEventLoop, frames: asyncio.Queue[np.ndarray | None]) -> None:
    """Runs in a daemon thread: the audio source's frames onto the event loop, then None."""
    while True:
        frame = audio.read()
        try:
            loop.call_soon_threadsafe(frames.put_nowait, frame)
        except RuntimeError:  # the loop has closed (Ctrl-C)
            return
        if frame is None:
            return

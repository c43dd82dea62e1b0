"""`moshi chat`: with files instead of the sound card (local model, and a test server), and
with a fake `sounddevice` standing in for PortAudio (resampling, underruns, Ctrl-C)."""

import _thread
import asyncio
import sys
import threading
import time
import types

import numpy as np
import pytest
import soundfile as sf
import torch

from moshi.audio import resample
from moshi.cli.audio_io import MAX_BACKLOG, SoundCard

FRAME = 1920


def test_files_replace_the_sound_card(moshi, dialogue_model, wav, tmp_path):
    out, saved = tmp_path / "moshi.wav", tmp_path / "both.wav"
    r = moshi("chat", "--input-file", wav(seconds=0.7), "--output-file", out, "--save", saved,
              "--seed", "3", *dialogue_model)  # fmt: skip
    assert r.code == 0, r.err
    assert r.out.strip(), "the transcript is printed"
    n = -(-round(0.7 * 24000) // FRAME)
    pcm, sr = sf.read(out, dtype="float32")
    assert sr == 24000 and pcm.shape == (n * FRAME,)  # aligned with the input, as long
    both, _ = sf.read(saved, dtype="float32")
    assert both.ndim == 2 and both.shape[1] == 2 and len(both) >= len(pcm)
    np.testing.assert_allclose(both[: len(pcm), 1], pcm, atol=1e-4)  # Moshi on the right
    assert np.abs(both[:, 0]).max() > 0.05  # the user on the left


@pytest.fixture
def server(dialogue_model):
    """A server on the tiny model (token "secret"), in its own thread and event loop;
    yields its ws:// URL."""
    server_mod = pytest.importorskip("moshi.stream.server")
    from moshi.cli.common import model_files
    from moshi.cli.main import get_parser
    from moshi.stream.engine import Engine

    args = get_parser().parse_args(["chat", *dialogue_model])
    files = model_files(args)
    engine = Engine(files.load_mimi(), files.load_lm(dtype=torch.float32), files.load_tokenizer())
    config = server_mod.ServerConfig(port=0, auth_token="secret", input_backlog=1000, output_backlog=1000)
    loop = asyncio.new_event_loop()
    started, state = threading.Event(), {}

    async def serve():
        state["stop"] = asyncio.Event()
        async with server_mod.Server(engine, config) as s:
            state["port"] = s.port
            started.set()
            await state["stop"].wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert started.wait(60), "the test server did not start"
    yield f"ws://127.0.0.1:{state['port']}"
    loop.call_soon_threadsafe(state["stop"].set)
    thread.join(30)


def test_chat_through_a_server(moshi, server, wav, tmp_path):
    out, saved = tmp_path / "moshi.wav", tmp_path / "both.wav"
    r = moshi("chat", "--url", server, "--auth-token", "secret", "--input-file", wav(seconds=0.5),
              "--output-file", out, "--save", saved, "--seed", "1")  # fmt: skip
    assert r.code == 0, r.err
    pcm, sr = sf.read(out, dtype="float32")
    assert sr == 24000 and len(pcm) > FRAME, "Moshi's audio came back"
    assert sf.info(saved).channels == 2


def test_a_refusing_server_is_one_line(moshi, server, wav, tmp_path):
    r = moshi("chat", "--url", server, "--auth-token", "wrong", "--input-file", wav(),
              "--output-file", tmp_path / "o.wav")  # fmt: skip
    assert r.code == 1 and r.err.startswith(f"moshi chat: error: {server}") and "\n" not in r.err.strip()
    assert not (tmp_path / "o.wav").exists()
    r = moshi("chat", "--url", "ws://127.0.0.1:9", "--input-file", wav(), "--output-file", tmp_path / "o.wav")
    assert r.code == 1 and r.err.startswith("moshi chat: error: cannot reach") and "\n" not in r.err.strip()
    assert not (tmp_path / "o.wav").exists()


def test_the_server_going_away_is_one_line_and_keeps_the_recording(moshi, wav, tmp_path):
    """A server that ends the conversation after three frames: exit 1, one line, and what
    was recorded is saved."""
    from websockets.asyncio.server import serve

    state = {}

    async def handler(ws):
        await ws.send(b"\x00")
        received = 0
        async for _ in ws:
            received += 1
            if received == 3:
                await ws.close()

    async def serve_until_stopped():
        state["stop"] = asyncio.Event()
        async with serve(handler, "127.0.0.1", 0, compression=None) as server:
            state["port"] = server.sockets[0].getsockname()[1]
            started.set()
            await state["stop"].wait()

    loop, started = asyncio.new_event_loop(), threading.Event()
    thread = threading.Thread(target=loop.run_until_complete, args=(serve_until_stopped(),), daemon=True)
    thread.start()
    assert started.wait(10)
    out, saved = tmp_path / "moshi.wav", tmp_path / "both.wav"
    try:
        r = moshi("chat", "--url", f"ws://127.0.0.1:{state['port']}", "--input-file", wav(seconds=1.5),
                  "--output-file", out, "--save", saved)  # fmt: skip
    finally:
        loop.call_soon_threadsafe(state["stop"].set)
        thread.join(10)
    assert r.code == 1, r.err
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and "the server ended the conversation after" in lines[0], r.err
    assert str(saved) in lines[0] and sf.info(saved).frames > 0 and out.exists()


# -- a fake sounddevice --------------------------------------------------------------------------
class FakeSoundDevice(types.ModuleType):
    """Devices that only do 48 kHz; streams whose callbacks the test calls."""

    RATE = 48000

    def __init__(self):
        super().__init__("sounddevice")
        self.streams = {}
        self.on_start = None

        fake = self

        class Stream:
            def __init__(self, device=None, samplerate=None, channels=None, dtype=None, callback=None):
                self.samplerate, self.callback, self.active = samplerate, callback, False
                fake.streams[type(self).__name__] = self

            def start(self):
                self.active = True
                if fake.on_start and all(s.active for s in fake.streams.values()):
                    fake.on_start()

            def stop(self):
                self.active = False

            def close(self):
                pass

        self.InputStream = type("InputStream", (Stream,), {})
        self.OutputStream = type("OutputStream", (Stream,), {})

    def check_input_settings(self, **kwargs):
        if kwargs.get("samplerate") != self.RATE:
            raise ValueError("Invalid sample rate")

    check_output_settings = check_input_settings

    def query_devices(self, device=None, kind=None):
        return {"default_samplerate": float(self.RATE)} if kind else "0 Fake Card, ALSA (2 in, 2 out)"

    def mic(self, pcm):
        self.streams["InputStream"].callback(pcm[:, None].astype(np.float32), len(pcm), None, None)

    def speaker(self, n):
        out = np.full((n, 1), np.nan, dtype=np.float32)
        self.streams["OutputStream"].callback(out, n, None, None)
        return out[:, 0]


@pytest.fixture
def fake_sd(monkeypatch):
    fake = FakeSoundDevice()
    monkeypatch.setitem(sys.modules, "sounddevice", fake)
    return fake


def test_sound_card_frames_resamples_and_counts_problems(fake_sd, speech):
    card = SoundCard()
    card.start()
    at48 = resample(speech[: 24000 // 2], 24000, 48000)
    for i in range(0, len(at48), 1000):  # blocks that are not frames
        fake_sd.mic(at48[i : i + 1000])
    got = []
    while card._frames:
        got.append(card.read())
    assert card.dropped == 6 - MAX_BACKLOG and len(got) == MAX_BACKLOG  # 6 frames came, 4 kept
    assert all(f.shape == (FRAME,) and f.dtype == np.float32 for f in got)

    assert not np.isnan(fake_sd.speaker(500)).any() and card.underruns == 0  # nothing yet: silence
    card.write(speech[FRAME : 2 * FRAME])  # 80 ms of Moshi -> ~3840 samples at 48 kHz, but
    assert len(card._speaker) < 3840  # the resampler holds back a few (its filter's delay),
    assert not np.isnan(fake_sd.speaker(10)).any() and card.underruns == 0  # so: not yet
    card.write(speech[2 * FRAME : 3 * FRAME])
    queued = len(card._speaker)
    assert 3840 <= queued <= 2 * 3840
    played = fake_sd.speaker(queued)
    assert np.abs(played).max() > 0.01 and not np.isnan(played).any() and card.underruns == 0
    assert not np.isnan(fake_sd.speaker(10)).any()  # ran dry: silence, and counted
    assert card.underruns == 1
    card.close()
    assert card.read() is None


def test_list_devices(moshi, fake_sd):
    r = moshi("chat", "--list-devices")
    assert r.code == 0 and "Fake Card" in r.out


def test_no_sound_card_is_said_in_one_line(moshi, fake_sd, dialogue_model):
    fake_sd.query_devices = lambda device=None, kind=None: ()  # PortAudio sees no device
    r = moshi("chat", "--list-devices")
    assert r.code == 0 and "no sound card found" in r.out
    r = moshi("chat", *dialogue_model)
    lines = r.err.strip().splitlines()
    assert r.code == 1 and len(lines) == 1
    assert "no sound card found" in lines[0] and "--input-file" in lines[0]


def test_ctrl_c_ends_cleanly_and_saves(moshi, fake_sd, dialogue_model, speech, tmp_path):
    card_box = {}

    def talk():  # the sound card's thread: 0.5 s of speech at about real time, then Ctrl-C
        card = fake_sd.streams["InputStream"].callback.__self__
        card_box["card"] = card
        at48 = resample(speech[24000:36000], 24000, 48000)
        for i in range(0, len(at48), 3840):
            fake_sd.mic(at48[i : i + 3840])
            fake_sd.speaker(3840)
            time.sleep(0.04)
        deadline = time.monotonic() + 20
        while (card._frames or not card._speaker) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)
        _thread.interrupt_main()

    fake_sd.on_start = lambda: threading.Thread(target=talk, daemon=True).start()
    saved = tmp_path / "conversation.wav"
    r = moshi("chat", "--save", saved, *dialogue_model)
    assert r.code == 0, r.err
    both, sr = sf.read(saved, dtype="float32")
    assert sr == 24000 and both.shape[1] == 2
    user_frames = len(both) // FRAME
    assert 1 <= user_frames <= 6 and np.abs(both[:, 0]).max() > 0.05
    assert not card_box["card"]._streams[0].active  # the streams were stopped

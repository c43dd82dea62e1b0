"""`moshi chat` through a real sound stack: a PulseAudio daemon of the test's own (a null sink
for the speakers, a pipe source fed from a wav for the microphone), reached by PortAudio's
ALSA "pulse" device, so that sounddevice sees real devices. Moshi's voice is recorded from
the sink; the daemon stopped mid-conversation is a device unplugged."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.support.fixtures import FIXTURES, tiny_model_dir

RATE = 24000
pytestmark = pytest.mark.skipif(
    shutil.which("pulseaudio") is None and not os.environ.get("CI"),
    reason="needs Debian's pulseaudio and libasound2-plugins (./install.sh installs them as root)",
)


class Pulse:
    """A PulseAudio daemon in `root` with sink `moshi_out` and source `moshi_mic`."""

    def __init__(self, root: Path):
        root.mkdir(parents=True)
        self.env = {**os.environ, "XDG_RUNTIME_DIR": str(root), "HOME": str(root)}
        self.env.pop("PULSE_SERVER", None)
        self.fifo = root / "mic.fifo"
        os.mkfifo(self.fifo)
        self.proc = subprocess.Popen(
            ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--disallow-exit",
             "--load=module-native-protocol-unix", "--load=module-null-sink sink_name=moshi_out",
             f"--load=module-pipe-source source_name=moshi_mic file={self.fifo} format=float32le "
             f"rate={RATE} channels=1"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self._stop = threading.Event()
        self._feeder: threading.Thread | None = None
        deadline = time.monotonic() + 20
        while self.pactl("info").returncode != 0:
            assert self.proc.poll() is None and time.monotonic() < deadline, "pulseaudio did not start"
            time.sleep(0.1)
        self.pactl("set-default-sink", "moshi_out")
        self.pactl("set-default-source", "moshi_mic")

    def pactl(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["pactl", *args], env=self.env, capture_output=True, text=True)

    def wait_for_a_player(self, chat: subprocess.Popen) -> None:
        """Until a client plays into the sink (the chat has loaded its model and started)."""
        deadline = time.monotonic() + 60
        while not self.pactl("list", "short", "sink-inputs").stdout.strip():
            assert chat.poll() is None, chat.communicate()[1]
            assert time.monotonic() < deadline, "the chat never opened the speakers"
            time.sleep(0.1)

    def play_into_mic(self, pcm: np.ndarray) -> None:
        """Feed the microphone `pcm` at real time, then silence, until `stop`."""

        def feed() -> None:
            with open(self.fifo, "wb") as f:
                chunk, i = RATE // 50, 0
                while not self._stop.is_set():
                    piece = pcm[i : i + chunk] if i < len(pcm) else np.zeros(chunk, np.float32)
                    try:
                        f.write(np.ascontiguousarray(piece, np.float32).tobytes())
                        f.flush()
                    except OSError:
                        return
                    i += chunk
                    time.sleep(chunk / RATE)

        self._feeder = threading.Thread(target=feed, daemon=True)
        self._feeder.start()

    def stop(self) -> None:
        self._stop.set()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        with contextlib.suppress(OSError):  # unblock a feeder stuck opening the fifo
            os.close(os.open(self.fifo, os.O_RDONLY | os.O_NONBLOCK))


@pytest.fixture
def pulse(tmp_path):
    p = Pulse(tmp_path / "pulse")
    yield p
    p.stop()


def _chat(pulse: Pulse, config: Path, save: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "moshi.cli.main", "chat", "--config", str(config), "--device", "cpu",
           "--input-device", "pulse", "--output-device", "pulse", "--save", str(save)]  # fmt: skip
    env = {**pulse.env, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def question() -> np.ndarray:
    pcm, sr = sf.read(FIXTURES / "hello_24k.wav", dtype="float32")
    return pcm[: 3 * sr]


def test_a_conversation_through_pulseaudio(pulse, tmp_path, question):
    listed = subprocess.run([sys.executable, "-m", "moshi.cli.main", "chat", "--list-devices"],
                            env=pulse.env, capture_output=True, text=True)  # fmt: skip
    assert listed.returncode == 0 and "pulse" in listed.stdout, listed.stdout + listed.stderr
    config = tiny_model_dir(tmp_path / "model")
    recording = tmp_path / "sink.wav"
    recorder = subprocess.Popen(
        ["parecord", "--device=moshi_out.monitor", "--file-format=wav", str(recording)], env=pulse.env
    )
    pulse.play_into_mic(question)
    chat = _chat(pulse, config, tmp_path / "conversation.wav")
    pulse.wait_for_a_player(chat)
    time.sleep(4.0)
    chat.send_signal(signal.SIGINT)
    _, err = chat.communicate(timeout=30)
    recorder.send_signal(signal.SIGINT)
    recorder.wait(10)
    assert chat.returncode == 0, err
    both, sr = sf.read(tmp_path / "conversation.wav", dtype="float32")
    assert sr == RATE and both.shape[1] == 2 and len(both) >= 5 * 1920  # frames the model took
    user, moshi = both[:, 0], both[:, 1]
    assert np.abs(user).max() > 0.05  # the wav reached the model through the microphone
    assert np.abs(moshi).max() > 0.01
    heard, _ = sf.read(recording, dtype="float32")
    assert np.abs(heard).max() > 0.01  # Moshi's voice reached the speakers (the sink)


def test_the_sound_server_going_away_is_one_line_and_keeps_the_recording(pulse, tmp_path, question):
    config = tiny_model_dir(tmp_path / "model")
    pulse.play_into_mic(question)
    save = tmp_path / "conversation.wav"
    chat = _chat(pulse, config, save)
    pulse.wait_for_a_player(chat)
    time.sleep(3.0)
    pulse.stop()  # the device is gone
    stopped = time.monotonic()
    _, err = chat.communicate(timeout=30)
    assert chat.returncode == 1, err
    lines = [line for line in err.splitlines() if line.startswith("moshi chat: error")]
    assert len(lines) == 1 and "sound card stopped" in lines[0] and "Traceback" not in err, err
    assert time.monotonic() - stopped < 15
    both, _ = sf.read(save, dtype="float32")
    assert len(both) >= 2 * 1920  # what came before is saved

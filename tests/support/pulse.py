"""A PulseAudio daemon of a test's own, so that sounddevice (PortAudio's ALSA "pulse" device)
sees real devices: a null sink for the speakers (record it from `moshi_out.monitor`), and a
pipe source fed from a wav for the microphone."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

RATE = 24000
needs_pulseaudio = pytest.mark.skipif(
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

    def wait_for_a_player(self, proc: subprocess.Popen) -> None:
        """Until a client plays into the sink (`proc` has loaded its model and started)."""
        self._wait_for("sink-inputs", proc)

    def wait_for_a_listener(self, proc: subprocess.Popen) -> None:
        """Until a client records from the microphone."""
        self._wait_for("source-outputs", proc)

    def _wait_for(self, clients: str, proc: subprocess.Popen) -> None:
        deadline = time.monotonic() + 60
        while not self.pactl("list", "short", clients).stdout.strip():
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, f"no {clients} appeared"
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

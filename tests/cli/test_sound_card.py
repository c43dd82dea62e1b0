"""`moshi chat` through a real sound stack: a PulseAudio daemon of the test's own (a null sink
for the speakers, a pipe source fed from a wav for the microphone), reached by PortAudio's
ALSA "pulse" device, so that sounddevice sees real devices. Moshi's voice is recorded from
the sink; the daemon stopped mid-conversation is a device unplugged."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.support.fixtures import FIXTURES, tiny_model_dir
from tests.support.pulse import RATE, Pulse, needs_pulseaudio

pytestmark = needs_pulseaudio


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

"""Live speech through a real sound stack (tests/support/pulse.py: a PulseAudio daemon of the
test's own): `moshi transcribe --live` hears a wav played into a virtual microphone and
prints its text as it comes, until Ctrl-C; `moshi speak --play` plays into a null sink,
starting before the model has read all of the text."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import soundfile as sf

from tests.support.fixtures import SPEECH, TTS_TINY, tiny_model_dir
from tests.support.pulse import RATE, needs_pulseaudio

pytestmark = needs_pulseaudio


def _moshi(pulse, *args: object) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "moshi.cli.main", *map(str, args), "--device", "cpu"]
    env = {**pulse.env, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_live_transcription_from_a_microphone(pulse, stt_model):
    pcm, _ = sf.read(SPEECH, dtype="float32")
    pulse.play_into_mic(pcm)
    live = _moshi(pulse, "transcribe", "--live", "--input-device", "pulse", *stt_model[:2])
    pulse.wait_for_a_listener(live)
    time.sleep(4.0)  # (an input alone may take seconds to start delivering)
    live.send_signal(signal.SIGINT)
    out, err = live.communicate(timeout=60)
    assert live.returncode == 0, err
    assert len(out.split()) >= 5, out  # the tiny model says something at every word boundary
    seconds = float(re.search(r"\[live: ([\d.]+) s of audio, real-time factor [\d.]+ ", err).group(1))
    assert 0.5 <= seconds <= 10, err  # it heard the microphone for at most the time it listened
    assert re.search(r"lag [\d.]+ s at the end \(max [\d.]+ s\)", err) and "Traceback" not in err


def test_speak_plays_before_the_text_is_read(pulse, tmp_path):
    model = tiny_model_dir(tmp_path / "tts", TTS_TINY).parent
    shutil.copy(TTS_TINY / "voice.safetensors", model / "voice.safetensors")
    recording = tmp_path / "sink.wav"
    recorder = subprocess.Popen(
        ["parecord", "--device=moshi_out.monitor", "--file-format=wav", str(recording)], env=pulse.env
    )
    text = "hokopily qu zihogequ midaba sefaru"
    speak = _moshi(pulse, "speak", text, "--play", "--output-device", "pulse", "--temp", "0",
                   "--voice", model / "voice.safetensors", "--config", model / "config.json")  # fmt: skip
    _, err = speak.communicate(timeout=120)
    recorder.send_signal(signal.SIGINT)
    recorder.wait(10)
    assert speak.returncode == 0, err
    started = re.search(r"first audio after [\d.]+ s \(the model had started (\d+) of the (\d+) words\)", err)
    assert started, err
    assert int(started.group(1)) < int(started.group(2)) == 5  # audio came before the text was all read
    heard, rate = sf.read(recording, dtype="float32")
    assert rate == RATE or heard.size  # (parecord keeps the sink's own rate)
    assert np.abs(heard).max() > 0.01  # the speech reached the speakers

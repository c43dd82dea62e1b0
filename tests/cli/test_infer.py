"""`moshi infer` end to end on the tiny dialogue model."""

import json
import math

import numpy as np
import pytest
import soundfile as sf

from moshi.stream.engine import FrameOut
from moshi.stream.offline import QUIET_FRAMES, Dialogue

FRAME = 1920


def frames(seconds: float) -> int:
    return math.ceil(round(seconds * 24000) / FRAME)


def test_reply_audio_and_transcript(moshi, dialogue_model, wav, tmp_path):
    out = tmp_path / "out"
    r = moshi("infer", wav(seconds=0.7), "-o", out, "--max-tail", "0.4", "--seed", "1", *dialogue_model)
    assert r.code == 0, r.err
    pcm, sr = sf.read(out / "talk.wav", dtype="float32")
    # The tiny model never stops talking, so the whole tail is used: 5 frames.
    assert sr == 24000 and pcm.shape == ((frames(0.7) + 5) * FRAME,)
    assert np.abs(pcm).max() > 0
    doc = json.loads((out / "talk.json").read_text())
    assert set(doc) == {"text", "words"} and doc["words"]
    times = [t for w in doc["words"] for t in (w["start"], w["end"])]
    assert times == sorted(times) and times[-1] <= len(pcm) / 24000


def test_a_batch_of_formats_rates_and_lengths(moshi, dialogue_model, speech, tmp_path):
    """Three inputs through two slots: each reply is what that input gets alone (--seed)."""
    src = tmp_path / "in"
    src.mkdir()
    sf.write(src / "a.flac", np.stack([speech[:12000]] * 2, axis=1), 24000)  # 0.5 s stereo
    sf.write(src / "b.wav", speech[24000:40000:3], 8000)  # 0.67 s at 8 kHz
    sf.write(src / "c.ogg", speech[30000:42000], 24000)  # 0.5 s
    inputs = [src / "a.flac", src / "b.wav", src / "c.ogg"]
    common = ["--max-tail", "0.16", "--seed", "7", "--stereo", *dialogue_model]
    r = moshi("infer", *inputs, "-o", tmp_path / "batch", "--batch-size", "2", *common)
    assert r.code == 0, r.err
    for path, seconds in zip(inputs, (0.5, 2 / 3, 0.5), strict=True):
        pcm, _ = sf.read(tmp_path / "batch" / f"{path.stem}.wav", dtype="float32")
        assert pcm.shape == ((frames(seconds) + 2) * FRAME, 2)  # user left, Moshi right
        assert np.abs(pcm[: int(seconds * 24000) - 100, 0]).max() > 0.01  # the input is there
    alone = moshi("infer", inputs[1], "-o", tmp_path / "alone", *common)
    assert alone.code == 0, alone.err
    a = json.loads((tmp_path / "alone" / "b.json").read_text())
    b = json.loads((tmp_path / "batch" / "b.json").read_text())
    assert a == b
    pa, _ = sf.read(tmp_path / "alone" / "b.wav", dtype="float32")
    pb, _ = sf.read(tmp_path / "batch" / "b.wav", dtype="float32")
    np.testing.assert_allclose(pa, pb, atol=2e-3)


def test_no_tail_one_sample_and_silence(moshi, dialogue_model, tmp_path):
    sf.write(tmp_path / "one.wav", np.array([0.1]), 16000, subtype="FLOAT")
    sf.write(tmp_path / "silent.wav", np.zeros(4000), 24000)
    r = moshi("infer", tmp_path / "one.wav", tmp_path / "silent.wav", "-o", tmp_path / "out",
              "--max-tail", "0", *dialogue_model)  # fmt: skip
    assert r.code == 0, r.err
    assert sf.info(tmp_path / "out" / "one.wav").frames == FRAME
    assert sf.info(tmp_path / "out" / "silent.wav").frames == 3 * FRAME


def test_the_tail_stops_when_moshi_is_quiet():
    d = Dialogue.of(np.zeros(2 * FRAME, dtype=np.float32), max_tail_frames=100)
    talk, pad = FrameOut(np.zeros(FRAME), 10, " word"), FrameOut(np.zeros(FRAME), 3, None)
    d.take(FrameOut(None, None, None))
    for out in [talk, talk, talk, pad, talk]:  # 2 input frames, then 3 of tail
        d.take(out)
        assert not d.done
    for _ in range(QUIET_FRAMES - 1):
        d.take(pad)
        assert not d.done
    d.take(pad)
    assert d.done and len(d.moshi) == 5 + QUIET_FRAMES


@pytest.mark.parametrize("weights", [["--int8"], ["--dtype", "bfloat16"]])
def test_low_precision_weights_on_cpu(moshi, dialogue_model, wav, tmp_path, weights):
    """--int8 or --dtype bfloat16 (approximate, CPU) runs the same job: same length, some audio."""
    out = tmp_path / "out"
    r = moshi("infer", wav(seconds=0.5), "-o", out, "--max-tail", "0.4", *weights, *dialogue_model)
    assert r.code == 0, r.err
    pcm, _ = sf.read(out / "talk.wav", dtype="float32")
    assert pcm.shape == ((frames(0.5) + 5) * FRAME,) and np.abs(pcm).max() > 0


def test_int8_and_bfloat16_are_one_choice(moshi, dialogue_model, wav, tmp_path):
    both = ["--int8", "--dtype", "bfloat16"]
    r = moshi("infer", wav(seconds=0.5), "-o", tmp_path / "out", *both, *dialogue_model)
    assert r.code == 1 and "pick one" in r.err and "Traceback" not in r.err

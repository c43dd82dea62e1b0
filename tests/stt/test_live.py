"""Live speech-to-text (`LiveTranscriber`) on the tiny model: frame by frame, it gives exactly
what `transcribe(..., chunk_frames=1)` gives on the audio pushed; words come out as they are
recognised; and the real-time meter's verdicts."""

import pytest
import torch

from moshi.models import ModelFiles
from moshi.stt import LiveTranscriber, RealTimeMeter, transcribe
from moshi.stt.realtime import MAX_LAG_SECONDS, SLOW_WINDOW_FRAMES
from tests.support.fixtures import STT_CONFIG, STT_TINY, tiny_model_dir

FRAME = 1920


@pytest.fixture(scope="module")
def stt(tmp_path_factory):
    config = tiny_model_dir(tmp_path_factory.mktemp("m") / "stt", STT_TINY, stt_config=STT_CONFIG)
    files = ModelFiles.resolve(str(config.parent))
    return files.load_lm(dtype=torch.float32), files.load_mimi(), files.load_tokenizer()


@pytest.mark.parametrize("frames", [30, 7])  # 2.4 s (Mimi's attention ring fills), a cut
def test_frame_by_frame_is_exactly_the_offline_transcript(stt, speech, frames):
    """Stopping after any frame (Ctrl-C) gives the offline transcript of the audio heard."""
    lm, mimi, tok = stt
    pcm = speech[12000 : 12000 + frames * FRAME]
    pieces, during = [], []
    with LiveTranscriber(lm, mimi, tok, STT_CONFIG, vad=True) as live:
        for i in range(frames):
            heard = live.push(pcm[i * FRAME : (i + 1) * FRAME])
            pieces.append(heard.text)
            during += heard.words
        last = live.flush()
        got = live.transcript
    offline = transcribe(lm, mimi, pcm, tok, STT_CONFIG, vad=True, chunk_frames=1)
    assert got == offline  # words (text, start, end) and ends of turns
    assert during + last.words == got.words  # each word once, in order, as it completed
    assert "".join([*pieces, last.text]).split() == [w.text for w in got.words]
    assert len(during) >= frames // 3, "words come out while the audio comes in"


def test_several_frames_at_once_and_bad_pushes(stt, speech):
    lm, mimi, tok = stt
    pcm = speech[: 4 * FRAME]
    with LiveTranscriber(lm, mimi, tok, STT_CONFIG) as live:
        live.push(torch.from_numpy(pcm))
        with pytest.raises(ValueError, match=r"whole frames\), got shape \[100\]"):
            live.push(pcm[:100])
        live.flush()
        with pytest.raises(RuntimeError, match="before flush"):
            live.push(pcm[:FRAME])
    assert live.transcript == transcribe(lm, mimi, pcm, tok, STT_CONFIG, chunk_frames=1)
    assert live.transcript.end_of_turn is None and live.seconds == 4 * 0.08
    with pytest.raises(RuntimeError, match="inside `with"):
        LiveTranscriber(lm, mimi, tok, STT_CONFIG).push(pcm[:FRAME])


def test_the_meter_says_when_the_machine_is_too_slow():
    fast = RealTimeMeter(start=0.0)
    for i in range(50):  # 40 ms of compute per 80 ms frame, each frame done as it ends
        fast.frame(0.04, now=(i + 1) * 0.08 + 0.04)
    assert fast.too_slow() is None
    assert fast.rtf == pytest.approx(0.5) and fast.lag == pytest.approx(0.04)
    slow = RealTimeMeter(start=0.0)
    for i in range(SLOW_WINDOW_FRAMES - 1):
        slow.frame(0.1, now=(i + 1) * 0.1)
        assert slow.too_slow() is None  # not judged on fewer frames
    slow.frame(0.1, now=SLOW_WINDOW_FRAMES * 0.1)
    assert slow.too_slow() == "100 ms of compute per 80 ms frame"
    behind = RealTimeMeter(start=0.0)
    behind.frame(0.01, now=MAX_LAG_SECONDS + 0.5)  # e.g. the machine stalled
    assert behind.too_slow() == f"the text is {MAX_LAG_SECONDS + 0.42:.1f} s behind the audio"
    assert "real-time factor" in behind.summary() and "lag 2.42 s" in behind.summary()

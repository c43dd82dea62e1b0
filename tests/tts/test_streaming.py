"""Audio out as it is generated (through Mimi), text in as it arrives, batches."""

import pytest
import torch

from moshi.codec import load_mimi
from moshi.tts import SpeechStream, TextInput
from tests.support.fixtures import FIXTURES, TTS_TINY

VOICE = TTS_TINY / "voice.safetensors"
SCRIPT = ["hokopily qu zihogequ", "midaba sefaru"]


@pytest.fixture(scope="module")
def mimi():
    return load_mimi(FIXTURES / "mimi_tiny" / "weights.safetensors", FIXTURES / "mimi_tiny" / "config.json")


def test_audio_streams_out_frame_by_frame(tts, mimi):
    stream = SpeechStream(tts, mimi, SCRIPT, [VOICE], cfg=2.0)
    chunks, words_at_first_audio = [], None
    for chunk in stream:
        if words_at_first_audio is None:
            words_at_first_audio = len(stream.transcript)
        chunks.append(chunk)
    result = stream.result
    assert words_at_first_audio == 1  # the first audio comes long before the text is done
    assert len(result.transcript) == 5
    assert len(chunks) == result.audio_codes.shape[-1] == result.frames.shape[-1] - tts.delay_steps
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert all(c.pcm.shape == (mimi.frame_size,) for c in chunks)
    with mimi.streaming(1):  # the same as decoding the finished codes frame by frame
        expected = torch.cat(
            [mimi.decode(result.audio_codes[..., t : t + 1]) for t in range(len(chunks))], -1
        )
    got = torch.from_numpy(torch.cat([torch.from_numpy(c.pcm) for c in chunks]).numpy())
    assert torch.equal(got, expected[0, 0])
    assert torch.equal(result.frames, tts.generate(SCRIPT, [VOICE], cfg=2.0).frames)


def test_word_timings_are_in_seconds(tts):
    result = tts.generate(SCRIPT, [VOICE], cfg=2.0)
    words = result.words
    assert [w.word for w in words] == [w for w, _ in result.transcript]
    assert [w.start for w in words] == [step / 12.5 for _, step in result.transcript]
    assert all(w.start < w.end for w in words) and words[-1].end == result.end_step / 12.5


def test_text_given_in_full_up_front_is_the_script(tts):
    text = TextInput()
    text.write(SCRIPT[0])
    text.new_turn()
    text.write(SCRIPT[1])
    text.close()
    (result,) = tts.collect([f := tts.feeder(text)], list(tts.frames([f], [tts.conditions([VOICE], 2.0)])))
    assert torch.equal(result.frames, tts.generate(SCRIPT, [VOICE], cfg=2.0).frames)


def test_text_arriving_late_is_waited_for(tts):
    """The first word, then nothing for 20 steps: the model pads and does not end; the rest
    comes, then the end of the text: it is spoken, and only then generation ends."""
    text = TextInput()
    text.write("hokopily ")
    feeder = tts.feeder(text)
    frames = []
    for frame in tts.frames([feeder], [tts.conditions([VOICE], 2.0)], pace=False):
        frames.append(frame)
        if len(frames) == 20:
            assert feeder.machine.end_step is None and feeder.starved
            text.write("qu zihogequ")  # the last word is complete only once the text is
        if len(frames) == 24:
            text.close()
        assert len(frames) < 200
    (result,) = tts.collect([feeder], frames)
    steps = [s for _, s in result.transcript]
    assert [w for w, _ in result.transcript] == ["hokopily", "qu", "zihogequ"]
    assert steps[1] >= 20 + 2  # frame 20 is step 22 (max_delay 2): after the text came
    assert result.end_step is not None and result.end_step >= 24 + 2
    assert (result.frames[0, 0, 5:20] == 3).all()  # padding while waiting


def test_a_batch_gives_each_script_what_it_gives_alone(tts):
    scripts = [SCRIPT, ["qu"]]
    both = tts.generate_batch(scripts, [[VOICE], [VOICE, VOICE]], cfg=2.0)
    for script, voices, result in zip(scripts, [[VOICE], [VOICE, VOICE]], both, strict=True):
        alone = tts.generate(script, voices, cfg=2.0)
        assert torch.equal(result.frames, alone.frames)
        assert result.transcript == alone.transcript and result.end_step == alone.end_step

"""Speech-to-text as a library (`moshi.stt`) on the tiny speech-to-text model."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from moshi.lm import load_lm
from moshi.models import ModelFiles
from moshi.stt import SttTiming, Transcript, cues, transcribe, transcribe_batch
from tests.cli.conftest import STT_CONFIG, model_dir
from tests.helpers import FIXTURES

README = Path(__file__).parents[2] / "README.md"


@pytest.fixture(scope="module")
def stt_folder(tmp_path_factory) -> Path:
    config = model_dir(tmp_path_factory.mktemp("m") / "stt", "stt_lm_tiny", {"stt_config": STT_CONFIG})
    return config.parent


@pytest.fixture(scope="module")
def stt(stt_folder):
    files = ModelFiles.resolve(str(stt_folder))
    return files.load_lm(dtype=torch.float32), files.load_mimi(), files.load_tokenizer()


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    import soundfile as sf

    pcm, _ = sf.read(FIXTURES / "hello_24k.wav", dtype="float32")
    return pcm


def test_a_batch_gives_each_input_what_it_gets_alone(stt, speech):
    lm, mimi, tok = stt
    a, b = speech[12000:26400], speech[40000:47200]  # 0.6 s, 0.3 s
    batch = transcribe_batch(lm, mimi, [a, b], tok, STT_CONFIG, vad=True)
    for pcm, got in zip((a, b), batch, strict=True):
        alone = transcribe(lm, mimi, torch.from_numpy(pcm), tok, SttTiming.from_config(STT_CONFIG), vad=True)
        assert isinstance(got, Transcript) and got.words
        assert got == alone  # word texts and times (rounded to ms) and end-of-turn times
        assert got.end_of_turn is not None
        times = [t for w in got.words for t in (w.start, w.end)]
        assert times == sorted(times) and times[0] >= 0 and times[-1] <= len(pcm) / 24000


def test_subtitle_cues_of_the_tiny_model_have_a_length(stt, speech):
    """The tiny model says words during the silence around the input: their times are
    clamped to 0 or to the end, and their cues used to last 0 s."""
    lm, mimi, tok = stt
    t = transcribe(lm, mimi, speech[:24000], tok, STT_CONFIG)
    clamped = [w for w in t.words if w.start == w.end]
    assert clamped, "the case this test is about"
    assert all(c.end > c.start for c in cues(t))


def test_bad_inputs_are_value_errors(stt, speech):
    lm, mimi, tok = stt
    with pytest.raises(ValueError, match=r"shape \[T\], got shape \[1, 2400\]"):
        transcribe(lm, mimi, speech[None, :2400], tok)
    with pytest.raises(ValueError, match="at least one input"):
        transcribe_batch(lm, mimi, [], tok)
    mimi.set_num_codebooks(8)
    try:
        with pytest.raises(ValueError, match="reads 32 codebooks, Mimi makes 8"):
            transcribe(lm, mimi, speech[:2400], tok)
    finally:
        mimi.set_num_codebooks(32)
    tiny = FIXTURES / "moshi_lm_tiny"
    dialogue = load_lm(tiny / "weights.safetensors", tiny / "config.json")
    with pytest.raises(ValueError, match="expected a speech-to-text model"):
        transcribe(dialogue, mimi, speech[:2400], tok)


def test_the_readme_snippet_runs(stt_folder):
    """README's speech-to-text Python snippet, on the tiny model folder instead of the hub."""
    section = README.read_text().split("## Speech to text", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert '"kyutai/stt-1b-en_fr"' in code
    namespace: dict = {}
    exec(code.replace('"kyutai/stt-1b-en_fr"', repr(str(stt_folder))), namespace)
    assert isinstance(namespace["t"], Transcript) and len(namespace["both"]) == 2

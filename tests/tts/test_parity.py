"""The TTS against Kyutai's `TTSModel.generate` (tests/fixtures/tts_lm_tiny, tts_cfg_lm_tiny):
greedy, a two-turn script, one voice; CFG distilled into a condition, then real CFG."""

import pytest
import torch

from moshi.tts import ScriptBuilder
from tests.support.fixtures import TTS_CFG_TINY, TTS_TINY, fixture_io, fixture_meta
from tests.support.tts import make_tts

CASES = {
    "tts_lm_tiny": (TTS_TINY, "tts_lm", dict(guidance=1.0), 2.0),  # cfg as a condition
    "tts_cfg_lm_tiny": (TTS_CFG_TINY, "tts_cfg_lm", dict(guidance=2.0), None),  # real CFG
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_generation_matches_the_reference(name, request):
    folder, lm_fixture, options, cfg = CASES[name]
    meta, io = fixture_meta(name), fixture_io(name)
    tts = make_tts(request.getfixturevalue(lm_fixture), **options)
    result = tts.generate(meta["script"], voices=[folder / "voice.safetensors"], cfg=cfg)
    assert result.frames.shape == io["frames"].shape == (1, 9, 40)
    assert torch.equal(result.frames, io["frames"])
    assert result.transcript == [tuple(x) for x in meta["transcript"]]
    assert result.end_step == io["end_step"].item()
    assert [step for _, step in result.consumed] == io["consumption_steps"].tolist()
    T = result.frames.shape[-1]  # the text fed back at each step is the frames' text row
    assert result.frames[0, 0].tolist() == io["logged_text_tokens"][:T, 1].tolist()


@pytest.mark.parametrize("name", sorted(CASES))
def test_script_entries_match_the_reference(name, tokenizer):
    meta, io = fixture_meta(name), fixture_io(name)
    entries = ScriptBuilder(tokenizer.encode, multi_speaker=True, padding_between=1).script(meta["script"])
    assert [t for e in entries for t in e.tokens] == io["entry_tokens"].tolist()
    assert [len(e.tokens) for e in entries] == io["entry_lengths"].tolist()
    assert [e.padding for e in entries] == io["entry_padding"].tolist()


def test_audio_starts_after_the_delay(tts, tts_lm):
    """Audio tokens are the zero token (-1) for the first delay_steps frames, real after."""
    result = tts.generate(["hokopily qu"], voices=[TTS_TINY / "voice.safetensors"], cfg=2.0)
    audio = result.frames[0, 1:]
    assert (audio[:, : tts.delay_steps] == -1).all()
    assert (audio[:, tts.delay_steps :] >= 0).all() and (audio < tts_lm.config.card).all()
    assert result.audio_codes.shape == (1, 8, result.frames.shape[-1] - tts.delay_steps)


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_kept_session_restarts_exactly(name, request):
    """With `keep_session` (the default with CUDA graphs), generations reuse one generator
    session: each must still give the reference's frames, whatever ran before."""
    folder, lm_fixture, options, cfg = CASES[name]
    meta, io = fixture_meta(name), fixture_io(name)
    tts = make_tts(request.getfixturevalue(lm_fixture), keep_session=True, **options)
    voice = [folder / "voice.safetensors"]
    tts.generate(["qu"], voices=voice, cfg=cfg)
    tts.generate_batch([["qu"], ["hokopily"]], [voice, voice], cfg=cfg)  # another batch size
    for _ in range(2):
        assert torch.equal(tts.generate(meta["script"], voices=voice, cfg=cfg).frames, io["frames"])
    tts.close()
    assert tts._kept is None

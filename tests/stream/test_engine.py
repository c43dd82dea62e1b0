"""The engine's step(): slots batched together behave as if each ran alone."""

import numpy as np
import pytest
import torch

from moshi.lm.generator import Generator
from moshi.lm.sampling import SamplingOptions
from moshi.lm.text import TextTokenizer
from moshi.stream.engine import Engine, EngineBusy
from tests.support.fixtures import FIXTURES

FRAME = 1920
GREEDY = SamplingOptions(temp=0, temp_text=0)


def frames_of(pcm, n):
    return [pcm[i * FRAME : (i + 1) * FRAME] for i in range(n)]


def run(engine, slot, frames):
    outs = [engine.step({slot: f})[slot] for f in frames]
    return outs


def test_engine_matches_codec_and_generator_run_by_hand(tiny_parts, speech):
    mimi, lm, tok = tiny_parts
    frames = frames_of(speech, 12)
    with Engine(mimi, lm, tok, max_sessions=1) as engine:
        slot = engine.open_slot(GREEDY)
        outs = run(engine, slot, frames)
    assert outs[0].pcm is None and all(o.pcm.shape == (FRAME,) for o in outs[1:])
    # By hand: encode, restart the codec after the first frame, step, decode.
    gen = Generator(lm, temp=0, temp_text=0)
    expected_tokens, expected_pcm = [], []
    with mimi.streaming(1), gen.streaming(1):
        for i, f in enumerate(frames):
            codes = mimi.encode(torch.from_numpy(f)[None, None])
            if i == 0:
                mimi.reset_streaming()
            tokens = gen.step(codes)
            if tokens is not None:
                expected_tokens.append(int(tokens[0, 0, 0]))
                expected_pcm.append(mimi.decode(tokens[:, 1:])[0, 0].numpy())
    assert [o.text_token for o in outs[1:]] == expected_tokens
    np.testing.assert_allclose(np.stack([o.pcm for o in outs[1:]]), np.stack(expected_pcm), atol=1e-6)
    texts = [o.text for o in outs[1:]]
    assert all(t is None or isinstance(t, str) for t in texts)


def test_slots_do_not_disturb_each_other(tiny_parts, speech):
    """Slot 0 alone == slot 0 next to a busy slot 1 that joins late and skips ticks."""
    mimi, lm, tok = tiny_parts
    a, b = frames_of(speech, 14), frames_of(speech[::-1].copy(), 14)
    with Engine(mimi, lm, tok, max_sessions=2) as engine:
        s0 = engine.open_slot(GREEDY)
        alone = run(engine, s0, a)
        engine.close_slot(s0)
        s0, s1 = engine.open_slot(GREEDY), engine.open_slot(SamplingOptions(text_seed=1, audio_seed=2))
        together, fed = [], 0
        for i, f in enumerate(a):
            step = {s0: f}
            if i >= 3 and i % 4:  # slot 1 starts late and misses every 4th tick
                step[s1] = b[fed]
                fed += 1
            together.append(engine.step(step)[s0])
    assert [o.text_token for o in together] == [o.text_token for o in alone]
    for x, y in zip(together[1:], alone[1:], strict=True):
        np.testing.assert_allclose(x.pcm, y.pcm, atol=1e-5)


def test_a_paused_slot_continues_exactly(tiny_parts, speech):
    mimi, lm, tok = tiny_parts
    frames = frames_of(speech, 10)
    with Engine(mimi, lm, tok, max_sessions=2) as engine:
        s = engine.open_slot(GREEDY)
        straight = run(engine, s, frames)
        engine.close_slot(s)
        s, other = engine.open_slot(GREEDY), engine.open_slot(GREEDY)
        gappy = []
        for i, f in enumerate(frames):
            if i == 5:  # two ticks where only the other slot has audio
                engine.step({other: frames[0]})
                engine.step({other: frames[1]})
            gappy.append(engine.step({s: f})[s])
    assert [o.text_token for o in gappy] == [o.text_token for o in straight]


def test_reopened_slot_starts_fresh_and_busy_when_full(tiny_parts, speech):
    mimi, lm, tok = tiny_parts
    frames = frames_of(speech, 6)
    with Engine(mimi, lm, tok, max_sessions=2) as engine:
        engine.warmup(2)
        s = engine.open_slot(GREEDY)
        first = run(engine, s, frames)
        engine.open_slot()
        with pytest.raises(EngineBusy, match="2 slots"):
            engine.open_slot()
        stats = engine.close_slot(s)
        assert (stats.frames_in, stats.frames_out) == (6, 5)
        s2 = engine.open_slot(GREEDY)
        assert s2 == s
        second = run(engine, s2, frames)
        assert engine.step_percentiles()["p50"] > 0
    assert [o.text_token for o in first] == [o.text_token for o in second]


def test_step_rejects_bad_frames(tiny_parts):
    mimi, lm, tok = tiny_parts
    with Engine(mimi, lm, tok, max_sessions=1) as engine:
        with pytest.raises(ValueError, match="slot 0 is not open"):
            engine.step({0: np.zeros(FRAME, np.float32)})
        s = engine.open_slot()
        with pytest.raises(ValueError, match=r"\[1920\] samples, got \[100\]"):
            engine.step({s: np.zeros(100, np.float32)})
    with pytest.raises(RuntimeError, match="not started"):
        engine.step({s: np.zeros(FRAME, np.float32)})


def test_the_users_words_a_model_writes_down_come_back_as_heard(tiny_parts, speech):
    """A model with dialogue_config.user_text_delay_seconds writes the user's words between
    EOS and BOS: they are `heard`, and Moshi's token there is padding (never shown or saved)."""
    mimi, lm, _ = tiny_parts
    tok = TextTokenizer(FIXTURES / "tiny_spm_100.model", user_turns=True)
    script = [5, tok.user_turn_id, 5, 4, tok.moshi_turn_id, 4]
    pad = lm.config.text_padding_id
    with Engine(mimi, lm, tok, max_sessions=1) as engine:
        real_step = engine.generator.step

        def scripted(codes):
            tokens = real_step(codes)
            if tokens is not None:
                tokens[:, 0] = script[engine.steps - 1]
            return tokens

        engine.generator.step = scripted  # type: ignore[method-assign]
        slot = engine.open_slot(GREEDY)
        outs = run(engine, slot, frames_of(speech, len(script) + 1))[1:]
    assert [o.text_token for o in outs] == [5, pad, pad, pad, pad, 4]
    assert [o.text for o in outs] == [tok.piece(5), None, None, None, None, tok.piece(4)]
    assert [o.heard for o in outs] == [None, None, tok.piece(5), tok.piece(4), None, None]
    # a model that does not: every token is Moshi's
    plain = TextTokenizer(FIXTURES / "tiny_spm_100.model")
    with Engine(mimi, lm, plain, max_sessions=1) as engine:
        slot = engine.open_slot(GREEDY)
        assert all(o.heard is None for o in run(engine, slot, frames_of(speech, 4)))

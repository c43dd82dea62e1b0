"""Generation sessions: batch slots, seeds, resets, pauses, long conversations, bad input."""

import pytest
import torch

from moshi.lm.generator import Generator
from moshi.lm.guidance import Guidance
from moshi.lm.sampling import SamplingOptions


def _steps(gen, codes):
    """Run every step of codes [B, K, T]; returns [B, 1 + dep_q, T] (-1 where no frame)."""
    outs = []
    for t in range(codes.shape[-1]):
        out = gen.step(codes[..., t : t + 1])
        outs.append(torch.full((codes.shape[0], 1 + gen.model.config.dep_q, 1), -1) if out is None else out)
    return torch.cat(outs, -1)


@pytest.mark.parametrize("greedy", [True, False])
def test_two_conversations_in_one_batch_equal_each_alone(moshi_lm, moshi_io, greedy):
    temp = 0 if greedy else 0.8
    codes = moshi_io["user_codes"][..., :20]
    gen = Generator(moshi_lm, temp=temp, temp_text=temp, seed=1234)
    with gen.streaming(2):
        both = _steps(gen, codes)
    for b in range(2):
        with gen.streaming(1):
            alone = _steps(gen, codes[b : b + 1])
        assert torch.equal(both[b : b + 1], alone)


def test_same_seed_same_tokens_other_seed_other_tokens(moshi_lm, moshi_io):
    codes = moshi_io["user_codes"][:1, :, :20]
    runs = []
    for seed in (7, 7, 8):
        gen = Generator(moshi_lm, temp=1.0, temp_text=1.0, top_k=0, top_k_text=0, seed=seed)
        with gen.streaming(1):
            runs.append(_steps(gen, codes))
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


def test_per_item_options(moshi_lm, moshi_io):
    """One slot greedy, the other sampled: the greedy one matches a greedy run alone."""
    codes = moshi_io["user_codes"][..., :15]
    gen = Generator(moshi_lm, temp=0.9, temp_text=0.9, seed=3)
    with gen.streaming(2):
        gen.set_options(SamplingOptions(temp=0, temp_text=0), item=0)
        both = _steps(gen, codes)
    greedy = Generator(moshi_lm, temp=0, temp_text=0)
    with greedy.streaming(1):
        alone = _steps(greedy, codes[:1])
    assert torch.equal(both[:1], alone)


def test_reset_one_slot_restarts_it_and_leaves_the_other(moshi_lm, moshi_io):
    codes = moshi_io["user_codes"]
    gen = Generator(moshi_lm, temp=0, temp_text=0)
    with gen.streaming(2):
        plain = _steps(gen, codes[..., :30])
    with gen.streaming(2):
        first = _steps(gen, codes[..., :10])
        gen.reset_streaming(torch.tensor([False, True]))
        second = _steps(gen, codes[..., 10:30])
    with gen.streaming(1):
        fresh = _steps(gen, codes[1:, :, 10:30])
    mixed = torch.cat([first, second], -1)
    assert torch.equal(mixed[0], plain[0])
    assert torch.equal(mixed[1:, :, 10:], fresh)
    assert mixed[1, 0, 10] == -1  # a restarted slot has no frame on its first step


def test_paused_slot_resumes_where_it_stopped(moshi_lm, moshi_io):
    codes = moshi_io["user_codes"]
    gen = Generator(moshi_lm, temp=0, temp_text=0)
    with gen.streaming(2):
        plain = _steps(gen, codes[..., :12])
    with gen.streaming(2):
        _steps(gen, codes[..., :6])
        gen.set_exec_mask(torch.tensor([True, False]))
        paused = gen.step(torch.cat([codes[:1, :, 6:7], torch.zeros_like(codes[1:, :, :1])]))
        assert paused[1].eq(-1).all() and torch.equal(paused[0], plain[0, :, 6:7])
        gen.set_exec_mask(None)
        both = gen.step(torch.cat([codes[:1, :, 7:8], codes[1:, :, 6:7]]))
    assert torch.equal(both[0], plain[0, :, 7:8])
    assert torch.equal(both[1], plain[1, :, 6:7])


def test_ten_times_the_context_with_constant_memory(moshi_lm):
    ctx = moshi_lm.config.context
    gen = Generator(moshi_lm, temp=0.8, temp_text=0.7, seed=0)
    codes = torch.randint(0, 64, (2, 8, 10 * ctx))
    with gen.streaming(2):
        caches = [m.state for m in moshi_lm.modules() if getattr(m, "state", None) is not None]
        sizes = [c.keys.shape for c in caches]
        out = _steps(gen, codes)
        assert [c.keys.shape for c in caches] == sizes
        positions = torch.stack([c.positions for c in caches])
    assert positions.max() == 10 * ctx - 1  # absolute positions keep growing
    assert out[:, :, 1:].min() >= 0 and out[:, 1:].max() < 64


def test_step_outside_streaming_is_a_clear_error(moshi_lm):
    gen = Generator(moshi_lm)
    with pytest.raises(RuntimeError, match="streaming"):
        gen.step(torch.zeros(1, 8, 1, dtype=torch.long))


@pytest.mark.parametrize(
    "codes, match",
    [
        (torch.zeros(1, 7, 1, dtype=torch.long), r"\[B=1, 8, 1\], got \[1, 7, 1\]"),
        (torch.zeros(1, 8, 2, dtype=torch.long), r"\[B=1, 8, 1\], got \[1, 8, 2\]"),
        (torch.zeros(2, 8, 1, dtype=torch.long), r"\[B=1, 8, 1\], got \[2, 8, 1\]"),
        (torch.zeros(8, 1, dtype=torch.long), r"got \[8, 1\]"),
        (torch.full((1, 8, 1), 64), r"\[0, 64\), got values in \[64, 64\]"),
        (torch.full((1, 8, 1), -1), r"\[0, 64\)"),
    ],
)
def test_bad_user_codes(moshi_lm, codes, match):
    gen = Generator(moshi_lm)
    with gen.streaming(1), pytest.raises(ValueError, match=match):
        gen.step(codes)


def test_float_user_codes_are_a_type_error(moshi_lm):
    gen = Generator(moshi_lm)
    with gen.streaming(1), pytest.raises(TypeError, match="int64"):
        gen.step(torch.zeros(1, 8, 1))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"temp": -0.1}, "temp must be"),
        ({"temp_text": 100.0}, "temp_text must be"),
        ({"top_k": -1}, "top_k must be"),
        ({"top_k_text": 2.5}, "top_k_text must be"),
        ({"text_seed": -3}, "text_seed must be"),
    ],
)
def test_sampling_options_are_validated(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SamplingOptions(**kwargs)


def test_stt_has_no_depformer_and_returns_text_only(stt_lm, stt_io):
    gen = Generator(stt_lm, temp=0, temp_text=0)
    with gen.streaming(2):
        out = gen.step(stt_io["audio_codes"][..., :1])
    assert out.shape == (2, 1, 1)


def test_outputs_are_ordinary_tensors(moshi_lm, stt_lm):
    """On a CPU the step runs in inference mode; what it returns can still be written to."""
    gen = Generator(moshi_lm, temp=0.0, temp_text=0.0)
    with gen.streaming(1):
        outs = [gen.step(torch.zeros(1, 8, 1, dtype=torch.long)) for _ in range(3)]
    assert outs[-1] is not None and not outs[-1].is_inference()
    outs[-1].add_(1)
    stt = Generator(stt_lm, temp=0.0, temp_text=0.0)
    with stt.streaming(1):
        _, heads = stt.step_with_extra_heads(torch.zeros(1, 32, 1, dtype=torch.long))
    assert heads and not any(h.is_inference() for h in heads)


def test_sampling_keywords_make_the_options():
    options = SamplingOptions(temp=0.5, top_k_text=3, text_seed=9, audio_seed=9)
    assert SamplingOptions().replace(temp=0.5, top_k_text=3, seed=9) == options
    assert SamplingOptions().replace(seed=9, audio_seed=1).audio_seed == 1
    with pytest.raises(ValueError, match=r"temp must be a number in \[0, 5.0\], got True"):
        SamplingOptions(temp=True)


def test_options_are_given_once(moshi_lm):
    options = SamplingOptions(temp=0.5, text_seed=9, audio_seed=9)
    assert Generator(moshi_lm, temp=0.5, seed=9).options == options
    assert Generator(moshi_lm, options).options is options
    with pytest.raises(ValueError, match="not both"):
        Generator(moshi_lm, options, temp=0.1)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"coef": -1.0}, r"coef must be a number in \[0, 100.0\], got -1.0"),
        ({"coef": True}, "got True"),
        ({"guide_text": 1}, "guide_text must be a bool, got 1"),
    ],
)
def test_guidance_is_validated(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Guidance(**kwargs)


def test_a_bad_exec_mask_names_the_shape(moshi_lm):
    gen = Generator(moshi_lm)
    with gen.streaming(2), pytest.raises(ValueError, match=r"shape \[B=2\], got torch.bool \[3\]"):
        gen.set_exec_mask(torch.ones(3, dtype=torch.bool))


@pytest.mark.parametrize("step_first", [True, False])
def test_whole_sequence_forward_and_generator_steps_in_either_order(moshi_lm, step_first):
    """The CPU step's inference mode leaves nothing behind that autograd cannot use: `lm(codes)`
    (autograd on) works after a generator step, and a step works after it."""
    from moshi.lm import layers

    layers._norm_constants.cache_clear()  # made afresh, by whichever runs first
    cfg = moshi_lm.config
    codes = torch.zeros(1, cfg.num_streams, 4, dtype=torch.long)

    def forward():
        out = moshi_lm(codes)
        assert out.logits.requires_grad and not out.logits.is_inference()

    def steps():
        gen = Generator(moshi_lm, temp=0.0, temp_text=0.0)
        with gen.streaming(1):
            for _ in range(3):
                gen.step(torch.zeros(1, cfg.n_q - cfg.dep_q, 1, dtype=torch.long))

    for run in (steps, forward) if step_first else (forward, steps):
        run()
    forward()

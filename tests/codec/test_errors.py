"""Bad input gets a ValueError/TypeError that names what was expected."""

import pytest
import torch

FRAME = 1920


@pytest.mark.parametrize(
    "pcm, match",
    [
        (torch.zeros(1920), r"\[B, 1, T\]"),
        (torch.zeros(1, 1920), r"\[B, 1, T\]"),
        (torch.zeros(1, 2, 1920), r"\[B, 1, T\], got \[1, 2, 1920\]"),
        (torch.zeros(1, 1, 1, 1920), r"\[B, 1, T\]"),
    ],
)
def test_encode_rejects_bad_shapes(tiny_mimi, pcm, match):
    with pytest.raises(ValueError, match=match):
        tiny_mimi.encode(pcm)


def test_encode_rejects_integer_pcm(tiny_mimi):
    with pytest.raises(TypeError, match="float"):
        tiny_mimi.encode(torch.zeros(1, 1, FRAME, dtype=torch.int16))


@pytest.mark.parametrize("length", [0, 100, FRAME + 1, FRAME // 2])
def test_streaming_encode_needs_whole_frames(tiny_mimi, length):
    with tiny_mimi.streaming(1), pytest.raises(ValueError, match=f"multiple of {FRAME}, got {length}"):
        tiny_mimi.encode(torch.zeros(1, 1, length))


def test_streaming_batch_must_match(tiny_mimi):
    with tiny_mimi.streaming(2), pytest.raises(ValueError, match="batch size 2, got a batch of 3"):
        tiny_mimi.encode(torch.zeros(3, 1, FRAME))


def test_decode_rejects_out_of_range_codes(tiny_mimi):
    codes = torch.zeros(1, 8, 2, dtype=torch.long)
    codes[0, 3, 1] = 64  # tiny codebooks have 64 entries
    with pytest.raises(ValueError, match=r"\[0, 64\), got values in \[0, 64\]"):
        tiny_mimi.decode(codes)
    codes[0, 3, 1] = -1
    with pytest.raises(ValueError, match=r"\[0, 64\)"):
        tiny_mimi.decode(codes)


def test_decode_rejects_too_many_codebooks(tiny_mimi):
    with pytest.raises(ValueError, match="33 codebooks, expected 1 to 32"):
        tiny_mimi.decode(torch.zeros(1, 33, 2, dtype=torch.long))


@pytest.mark.parametrize(
    "codes", [torch.zeros(8, 2, dtype=torch.long), torch.zeros(1, 1, 8, 2, dtype=torch.long)]
)
def test_decode_rejects_wrong_rank(tiny_mimi, codes):
    with pytest.raises(ValueError, match=r"\[B, K, F\]"):
        tiny_mimi.decode(codes)


def test_decode_rejects_float_codes(tiny_mimi):
    with pytest.raises(TypeError, match="int64"):
        tiny_mimi.decode(torch.zeros(1, 8, 2))


def test_num_codebooks_bounds(tiny_mimi):
    for n in (0, 33):
        with pytest.raises(ValueError, match=r"\[1, 32\]"):
            tiny_mimi.set_num_codebooks(n)


def test_reset_outside_streaming_is_an_error(tiny_mimi):
    with pytest.raises(RuntimeError, match="streaming"):
        tiny_mimi.reset_streaming()


def test_reset_mask_shape_is_checked(tiny_mimi):
    with tiny_mimi.streaming(2), pytest.raises(ValueError, match=r"\[B=2\]"):
        tiny_mimi.reset_streaming(torch.tensor([True, False, True]))

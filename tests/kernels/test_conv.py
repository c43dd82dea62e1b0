"""The matmul convolutions equal PyTorch's, alone and inside the streaming conv modules."""

import pytest
import torch
import torch.nn.functional as F

from moshi.codec.conv import CausalConv1d, CausalConvTranspose1d
from moshi.kernels import conv as fast
from moshi.nn.streaming import streaming

# (c_in, c_out, kernel, stride, dilation), the last three: 1x1, dilated + strided, stride > kernel
CONVS = [(3, 5, 7, 1, 1), (4, 6, 3, 1, 2), (4, 6, 3, 1, 9), (8, 4, 8, 4, 1), (5, 7, 16, 8, 1)]
CONVS += [(6, 3, 1, 1, 1), (2, 2, 4, 2, 3), (3, 3, 2, 5, 1)]
# (c_in, c_out, kernel, stride): kernel a multiple of the stride or not, smaller than it, stride 1
CONVS_TR = [(4, 6, 16, 8), (6, 4, 12, 6), (3, 5, 10, 5), (5, 3, 7, 3), (4, 4, 3, 3), (3, 2, 2, 4)]
CONVS_TR += [(2, 3, 5, 1)]


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("c_in,c_out,kernel,stride,dilation", CONVS)
@pytest.mark.parametrize("length", [1, 2, 17, 64])
def test_conv1d_equals_torch(batch, c_in, c_out, kernel, stride, dilation, length):
    x = torch.randn(batch, c_in, (kernel - 1) * dilation + length)
    w, b = torch.randn(c_out, c_in, kernel), torch.randn(c_out)
    for bias in (b, None):
        expected = F.conv1d(x, w, bias, stride, 0, dilation)
        torch.testing.assert_close(fast.conv1d(x, w, bias, stride, dilation), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("c_in,c_out,kernel,stride", CONVS_TR)
@pytest.mark.parametrize("length", [1, 2, 13])
def test_conv_transpose1d_equals_torch(batch, c_in, c_out, kernel, stride, length):
    x = torch.randn(batch, c_in, length)
    w, b = torch.randn(c_in, c_out, kernel), torch.randn(c_out)
    for bias in (b, None):
        expected = F.conv_transpose1d(x, w, bias, stride)
        got = fast.conv_transpose1d(x, w, bias, stride)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize(
    "c_in,c_out,kernel,dilation", [(64, 1, 3, 1), (5, 1, 7, 2), (4, 3, 3, 1), (2, 1, 1, 1)]
)
@pytest.mark.parametrize("length", [1, 17, 1920])
def test_conv1d_taps_equals_torch(batch, c_in, c_out, kernel, dilation, length):
    x = torch.randn(batch, c_in, (kernel - 1) * dilation + length)
    w, b = torch.randn(c_out, c_in, kernel), torch.randn(c_out)
    for bias in (b, None):
        expected = F.conv1d(x, w, bias, 1, 0, dilation)
        torch.testing.assert_close(fast.conv1d_taps(x, w, bias, dilation), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("channels,kernel,stride", [(8, 4, 2), (3, 5, 2), (4, 3, 3), (2, 2, 4)])
@pytest.mark.parametrize("length", [1, 2, 9])
def test_depthwise_conv_transpose1d_equals_torch(batch, channels, kernel, stride, length):
    x = torch.randn(batch, channels, length)
    w, b = torch.randn(channels, 1, kernel), torch.randn(channels)
    for bias in (b, None):
        expected = F.conv_transpose1d(x, w, bias, stride, groups=channels)
        got = fast.depthwise_conv_transpose1d(x, w, bias, stride)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_the_rules_for_few_channels_and_steps():
    assert fast.has_taps_shape(torch.nn.Conv1d(64, 1, 3))  # Mimi's last conv, to the waveform
    assert fast.has_taps_shape(torch.nn.Conv1d(16, 8, 3))  # the small codec's at 24 kHz
    assert not fast.has_taps_shape(torch.nn.Conv1d(64, fast.TAPS_MAX_CHANNELS + 1, 3))
    assert not fast.has_taps_shape(torch.nn.Conv1d(16, 8, 1))  # 1x1: native
    assert not fast.has_taps_shape(torch.nn.Conv1d(64, 1, 4, stride=2))
    upsample = torch.nn.ConvTranspose1d(8, 8, 4, stride=2, groups=8)
    assert fast.prefers_broadcast(upsample, torch.zeros(1, 8, fast.DEPTHWISE_MAX_STEPS))
    assert not fast.prefers_broadcast(upsample, torch.zeros(1, 8, fast.DEPTHWISE_MAX_STEPS + 1))
    assert not fast.prefers_broadcast(
        torch.nn.ConvTranspose1d(8, 8, 4, stride=2, groups=4), torch.zeros(1, 8, 1)
    )


def test_the_rule_reads_shapes_only():
    big = torch.nn.Conv1d(1024, 512, 3)  # 1.5M weights
    small = torch.nn.Conv1d(64, 32, 3)
    depthwise = torch.nn.ConvTranspose1d(1024, 1024, 2048, groups=1024)  # 2M weights, grouped
    x = torch.zeros(1, 1, 1)
    assert fast.prefers_matmul(big, x)
    assert not fast.prefers_matmul(small, x)
    assert not fast.prefers_matmul(depthwise, x)
    assert not fast.prefers_matmul(big, x.to("meta"))


def test_mid_size_weights_take_the_product_in_streaming_calls_only():
    mid = torch.nn.Conv1d(128, 256, 16, stride=8)  # 524k weights: the small codec's last down
    steps = fast.STREAMING_MAX_STEPS
    assert fast.prefers_matmul(mid, torch.zeros(1, 128, 15 * 8 + 16))  # 16 steps out
    assert not fast.prefers_matmul(mid, torch.zeros(1, 128, steps * 8 + 16))  # offline: native
    assert not fast.prefers_matmul(torch.nn.Conv1d(512, 512, 1), torch.zeros(1, 512, 2))  # 1x1
    assert not fast.prefers_matmul(torch.nn.Conv1d(64, 32, 3), torch.zeros(1, 64, 4))  # small
    up = torch.nn.ConvTranspose1d(256, 128, 16, stride=8)  # steps in
    assert fast.prefers_matmul(up, torch.zeros(1, 256, steps))
    assert not fast.prefers_matmul(up, torch.zeros(1, 256, steps + 1))


@pytest.fixture
def matmul_everywhere(monkeypatch):
    """Send every groups-1 conv down the matmul path, however small."""
    monkeypatch.setattr(fast, "MATMUL_MIN_WEIGHTS", 0)


def _stream(module, x, chunk):
    with streaming(module, x.shape[0]):
        return torch.cat([module(x[..., i : i + chunk]) for i in range(0, x.shape[-1], chunk)], -1)


@pytest.mark.parametrize("kernel,stride,dilation", [(7, 1, 1), (3, 1, 2), (8, 4, 1), (16, 8, 1), (1, 1, 1)])
@pytest.mark.parametrize("chunk", [8, 16, 24])
@pytest.mark.parametrize("pad_mode", ["constant", "replicate"])
def test_causal_conv_fast_path(matmul_everywhere, kernel, stride, dilation, chunk, pad_mode):
    conv = CausalConv1d(3, 5, kernel, stride=stride, dilation=dilation, pad_mode=pad_mode)
    x = torch.randn(2, 3, 48)
    with torch.no_grad():
        plain = conv.conv(conv.pad(x))  # the native op on the padded input
        torch.testing.assert_close(conv(x), plain, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(_stream(conv, x, chunk), plain, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kernel,stride", [(16, 8), (4, 2), (10, 5), (6, 2), (3, 3), (7, 3)])
@pytest.mark.parametrize("chunk", [1, 2, 3])
def test_causal_conv_transpose_fast_path(matmul_everywhere, kernel, stride, chunk):
    conv = CausalConvTranspose1d(4, 3, kernel, stride=stride)
    x = torch.randn(2, 4, 12)
    with torch.no_grad():
        plain = conv.convtr(x)[..., : 12 * stride]
        torch.testing.assert_close(conv(x), plain, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(_stream(conv, x, chunk), plain, rtol=1e-5, atol=1e-6)


def test_grouped_conv_transpose_keeps_the_native_path(matmul_everywhere):
    conv = CausalConvTranspose1d(4, 4, 4, stride=2, groups=4, bias=False)
    x = torch.randn(2, 4, 6)
    with torch.no_grad():
        assert torch.equal(conv(x), conv.convtr(x)[..., :12])


@pytest.mark.parametrize("chunk", [1, 2, 3])
def test_streamed_depthwise_conv_transpose_and_one_channel_conv(chunk):
    """Streaming calls of a few steps take the broadcast upsampling; a conv to one channel
    its taps: both equal the native ops run offline."""
    up = CausalConvTranspose1d(4, 4, 4, stride=2, groups=4, bias=False)
    out = CausalConv1d(4, 1, 3)
    x = torch.randn(2, 4, 12)
    with torch.no_grad():
        plain = F.conv_transpose1d(x, up.convtr.weight, None, 2, groups=4)[..., :24]
        torch.testing.assert_close(_stream(up, x, chunk), plain, rtol=1e-5, atol=1e-6)
        plain = F.conv1d(out.pad(x), out.conv.weight, out.conv.bias)
        torch.testing.assert_close(_stream(out, x, chunk), plain, rtol=1e-5, atol=1e-6)

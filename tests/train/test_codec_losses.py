"""The codec's band-envelope loss: STOI's measure, differentiable."""

import torch

from moshi.audio import read_audio
from moshi.train.codec.losses import EnvelopeLoss
from tests.support.fixtures import FIXTURES


def speech() -> torch.Tensor:
    """[1, 1, T]: a spoken sentence at 24 kHz."""
    return torch.from_numpy(read_audio(FIXTURES / "hello_24k.wav"))[None, None]


def test_the_original_at_any_level_loses_nothing():
    loss, y = EnvelopeLoss(24000), speech()
    assert float(loss(y, y)) < 1e-4
    assert float(loss(0.25 * y, y)) < 1e-4


def test_noise_costs_more_the_louder_it_is():
    loss, y = EnvelopeLoss(24000), speech()
    noise = torch.randn(y.shape, generator=torch.Generator().manual_seed(0))
    level = float(y.abs().max())
    quiet, loud = (float(loss(y + level * scale * noise, y)) for scale in (0.01, 0.1))
    assert 0.01 < quiet < loud < 1.0


def test_a_smeared_envelope_costs_more_than_a_delay_of_a_few_samples():
    loss, y = EnvelopeLoss(24000), speech()
    smeared = torch.nn.functional.avg_pool1d(y.abs(), 2401, 1, 1200) * torch.sign(torch.randn_like(y))
    assert float(loss(torch.roll(y, 24), y)) < 0.05 < float(loss(smeared, y))


def test_gradients_reach_the_reconstruction_and_not_the_original():
    loss, y = EnvelopeLoss(24000), speech()
    x = (0.5 * y + 0.01 * torch.randn_like(y)).requires_grad_(True)
    target = y.clone().requires_grad_(True)
    loss(x, target).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert target.grad is None or not target.grad.abs().sum()


def test_a_crop_shorter_than_a_segment_is_one_segment():
    loss, y = EnvelopeLoss(24000), speech()[..., 4000:8000]
    assert float(loss(y, y)) < 1e-4 < float(loss(torch.roll(y, 1200), y))

"""The split RVQ's training behaviour (moshi/codec/quantizer.py behind `self.training`):
eval-mode forward equals inference, EMA statistics, seeding, dead codes, dropout, rate."""

import copy
import dataclasses

import pytest
import torch

from moshi.codec import load_mimi
from moshi.codec.quantizer import Codebook, VQTraining
from tests.support.fixtures import FIXTURES

TINY = FIXTURES / "mimi_tiny"


@pytest.fixture
def mimi():
    return load_mimi(TINY / "weights.safetensors", TINY / "config.json", num_codebooks=8)


def test_eval_forward_is_inference(mimi):
    pcm = torch.randn(2, 1, 3 * mimi.frame_size)
    with torch.no_grad():
        out, q = mimi(pcm, num_codebooks=8)
    codes = mimi.encode(pcm)
    assert torch.equal(q.codes, codes)
    torch.testing.assert_close(q.latent, mimi.decode_latent(codes), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out, mimi.decode(codes), rtol=1e-4, atol=1e-4)


def test_eval_forward_leaves_codebooks_alone(mimi):
    before = {k: v.clone() for k, v in mimi.state_dict().items()}
    mimi(torch.randn(1, 1, mimi.frame_size))
    assert all(torch.equal(before[k], v) for k, v in mimi.state_dict().items())


def test_ema_update_by_hand():
    cb = Codebook(4, 2)
    cb.embedding_sum.copy_(torch.arange(8.0).view(4, 2))
    cb.cluster_usage.fill_(2.0)
    cb.refresh()
    x = torch.tensor([[1.0, 1.0], [3.0, 5.0], [1.0, 3.0]])
    idx = torch.tensor([0, 1, 0])
    opts = VQTraining(ema_decay=0.5, dead_usage_ratio=0.0)
    cb.learn(x, idx, opts)
    torch.testing.assert_close(cb.cluster_usage, torch.tensor([2.0, 1.5, 1.0, 1.0]))
    expected_sum = 0.5 * torch.arange(8.0).view(4, 2) + 0.5 * torch.tensor(
        [[2.0, 4.0], [3.0, 5.0], [0, 0], [0, 0]]
    )
    torch.testing.assert_close(cb.embedding_sum, expected_sum)
    torch.testing.assert_close(cb.centroids, expected_sum / cb.cluster_usage[:, None])


def test_dead_codes_are_reseeded_from_the_batch():
    torch.manual_seed(0)
    cb = Codebook(8, 3)
    cb.seed(torch.randn(100, 3))
    assert cb.initialized
    cb.embedding_sum[2:] *= 1e-3 / cb.cluster_usage[2:, None]  # codes 2..7: same centroids, dead
    cb.cluster_usage[2:] = 1e-3
    x = torch.randn(50, 3) + 10.0  # far away from every centroid
    idx = cb.encode(x)
    cb.learn(x, idx, VQTraining(ema_decay=0.9))
    dead = [i for i in range(2, 8) if i not in idx.tolist()]
    assert len(dead) >= 3
    for c in cb.centroids[dead]:
        assert (x - c).abs().max(dim=1).values.min() < 1e-5, "a re-seeded code is a batch vector"
    assert len(set(cb.encode(x).tolist())) > 1


def test_first_training_batch_seeds_codebooks(mimi):
    for codebook in mimi.modules():
        if isinstance(codebook, Codebook):
            codebook._initialized.zero_()
    mimi.train()
    _, q = mimi(torch.randn(2, 1, 4 * mimi.frame_size), 4, VQTraining(quantizer_dropout=False))
    used = [
        cb.initialized for cb in [*mimi.quantizer.rvq_first.codebooks, *mimi.quantizer.rvq_rest.codebooks]
    ]
    assert used[:4] == [True] * 4 and not any(used[4:])
    assert q.codes.shape == (2, 4, 4)


def test_dropout_keeps_a_prefix_of_codebooks_per_item(mimi):
    mimi.train()
    torch.manual_seed(0)
    before = copy.deepcopy(mimi.quantizer)  # the forward updates the codebooks
    latent = torch.randn(16, 32, 2)
    q = mimi.quantizer(latent, 8, VQTraining(quantizer_dropout=True, quantize_rate=1.0))
    counts = []
    for b in range(16):
        matches = [
            k
            for k in range(1, 9)
            if torch.allclose(q.latent[b], before.decode(q.codes[b : b + 1, :k])[0], atol=1e-5)
        ]
        assert matches, f"item {b} is not the decoding of a prefix of its codes"
        counts.append(matches[0])
    assert len(set(counts)) > 2, counts


def test_quantize_rate_zero_passes_the_latent(mimi):
    mimi.train()
    latent = torch.randn(3, 32, 2)
    q = mimi.quantizer(latent, 8, VQTraining(quantize_rate=0.0))
    assert torch.equal(q.latent, latent)


def test_straight_through_and_commitment_gradients(mimi):
    mimi.train()
    latent = torch.randn(2, 32, 3, requires_grad=True)
    q = mimi.quantizer(latent, 8, VQTraining(quantizer_dropout=False))
    (grad,) = torch.autograd.grad(q.latent.sum(), latent, retain_graph=True)
    assert grad.abs().sum() > 0
    (grad_commit,) = torch.autograd.grad(q.commitment, latent)
    assert q.commitment > 0 and grad_commit.abs().sum() > 0


def test_options_are_checked():
    with pytest.raises(ValueError, match="quantize_rate"):
        VQTraining(quantize_rate=1.5)
    with pytest.raises(ValueError, match="ema_decay"):
        dataclasses.replace(VQTraining(), ema_decay=1.0)

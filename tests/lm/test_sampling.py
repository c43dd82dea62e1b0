import pytest
import torch

from moshi.lm.sampling import make_generator, sample


def test_temperature_zero_is_argmax():
    logits = torch.randn(3, 50)
    gens = [make_generator(0, torch.device("cpu")) for _ in range(3)]
    assert torch.equal(sample(logits, [0.0] * 3, [10] * 3, gens), logits.argmax(-1))


def test_draws_follow_the_softmax():
    """The exponential race picks index i with probability softmax(logits / temp)_i."""
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    gen = [make_generator(123, torch.device("cpu"))]
    counts = torch.zeros(4)
    n = 4000
    for _ in range(n):
        counts[sample(logits, [1.0], [0], gen)] += 1
    expected = torch.softmax(logits[0], -1)
    assert (counts / n - expected).abs().max() < 0.03


def test_top_k_never_leaves_the_k_most_likely():
    logits = torch.randn(2, 100)
    gens = [make_generator(s, torch.device("cpu")) for s in (1, 2)]
    top3 = logits.topk(3).indices
    for _ in range(200):
        tok = sample(logits, [5.0, 5.0], [3, 3], gens)
        assert all(tok[b] in top3[b] for b in range(2))


@pytest.mark.parametrize("ks", [(5, 0), (0, 5), (7, 30)])
def test_an_items_draws_do_not_depend_on_its_neighbours(ks):
    logits = torch.randn(2, 64)
    alone = sample(logits[:1], [0.9], [ks[0]], [make_generator(9, torch.device("cpu"))])
    both = sample(
        logits,
        [0.9, 0.5],
        list(ks),
        [make_generator(9, torch.device("cpu")), make_generator(10, torch.device("cpu"))],
    )
    assert both[0] == alone[0]

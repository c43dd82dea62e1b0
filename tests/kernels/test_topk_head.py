"""TopKHead: the candidates always hold the float32 product's top k, with its logits, and
the generator samples the same text tokens with it as from all the logits."""

import pytest
import torch
import torch.nn.functional as F

from moshi.kernels import topk_head
from moshi.kernels.topk_head import MIN_ROWS, TopKHead, weight_key
from moshi.lm import LMConfig, LMModel
from moshi.lm.generator import Generator


@pytest.fixture(params=["native", "fallback"])
def product(request, monkeypatch):
    """Both ways of computing the bfloat16 product (oneDNN's packed one where the CPU has
    bfloat16 instructions, F.linear elsewhere)."""
    if request.param == "fallback":
        monkeypatch.setattr(topk_head, "bfloat16_products_available", lambda: False)
    elif not topk_head.bfloat16_products_available():
        pytest.skip("this CPU has no native bfloat16 products")  # the fallback still runs
    return request.param


def weights(kind: str, V: int = 6000, D: int = 64) -> torch.Tensor:
    g = torch.Generator().manual_seed(V + D)
    w = torch.randn(V, D, generator=g) * 0.05
    if kind == "norms":  # rows of very different sizes
        w *= torch.logspace(-3, 1, V)[torch.randperm(V, generator=g)][:, None]
    elif kind == "near_ties":  # pairs of rows a rounding error apart
        w[1::2] = w[0::2] + 1e-7 * torch.randn(V // 2, D, generator=g)
    elif kind == "dominant":  # a few rows far above the rest
        w[:5] *= 50
    elif kind == "clustered":  # rows closer to each other than bfloat16 can tell apart
        w = w[:1] + 0.005 * w
    return w


def check_candidates(head: TopKHead, w: torch.Tensor, x: torch.Tensor, k: int) -> torch.Tensor:
    logits, rows = head.candidates(x, k)
    full = F.linear(x, w)
    assert rows.numel() >= max(k, min(MIN_ROWS, w.shape[0])) and rows.unique().numel() == rows.numel()
    torch.testing.assert_close(logits, full[:, rows], rtol=1e-6, atol=1e-6)
    for b in range(x.shape[0]):
        true_top = set(full[b].topk(k).indices.tolist())
        assert true_top <= set(rows.tolist())
        # The candidates' top k have the full product's top-k values.
        torch.testing.assert_close(logits[b].topk(k).values, full[b].topk(k).values, rtol=1e-6, atol=1e-6)
    return rows


@pytest.mark.parametrize("kind", ["gaussian", "norms", "near_ties", "dominant", "clustered"])
@pytest.mark.parametrize("k", [1, 25, 250, 1400])
def test_candidates_hold_the_top_k(product, kind, k):
    w = weights(kind)
    head = TopKHead(w)
    g = torch.Generator().manual_seed(k)
    for scale in (0.01, 1.0, 300.0):
        x = torch.randn(3, w.shape[1], generator=g) * scale
        x[0, 0] = 50 * scale  # an outlier feature
        check_candidates(head, w, x, k)
        check_candidates(head, w, x[:1], k)


def test_few_candidates_when_the_scores_spread(product):
    w = weights("gaussian", V=32000, D=512)
    head = TopKHead(w)
    rows = check_candidates(head, w, torch.randn(1, 512), 25)
    assert rows.numel() == MIN_ROWS  # 64 rows of float32 weights read, not 32000


def test_rejects_bad_input_and_notices_changed_weights(product):
    w = weights("gaussian")
    head = TopKHead(w)
    with pytest.raises(ValueError, match=r"expected float32 x \[B, 64\]"):
        head.candidates(torch.randn(1, 63), 5)
    with pytest.raises(ValueError, match="1 <= k <= 6000"):
        head.candidates(torch.randn(1, 64), 0)
    with pytest.raises(ValueError, match="float32 CPU weight"):
        TopKHead(w.bfloat16())
    key = weight_key(w)  # how the Generator notices that its head is stale
    assert weight_key(w) == key
    with torch.no_grad():
        w.mul_(2)
    assert weight_key(w) != key


def test_build_only_where_it_pays(monkeypatch):
    # Whether it pays is patched, not the CPU: the head itself still takes the product this
    # CPU can do (oneDNN's packed bfloat16 needs AVX-512 or AVX-NE-CONVERT).
    monkeypatch.setattr(TopKHead, "pays_here", staticmethod(lambda: True))
    assert TopKHead.build(torch.randn(100, 16)) is None  # a small vocabulary
    assert TopKHead.build(torch.randn(8000, 16).bfloat16()) is None
    assert TopKHead.build(torch.randn(8000, 16)) is not None
    monkeypatch.setattr(TopKHead, "pays_here", staticmethod(lambda: False))
    assert TopKHead.build(torch.randn(8000, 16)) is None  # slower than float32 there


def big_vocab_lm() -> LMModel:
    torch.manual_seed(3)
    cfg = LMConfig(
        dim=64,
        num_heads=4,
        num_layers=2,
        text_card=8000,
        card=64,
        n_q=4,
        dep_q=2,
        depformer_dim=32,
        depformer_num_heads=2,
        depformer_num_layers=1,
        depformer_dim_feedforward=64,
        context=20,
        delays=(0, 0, 1, 0, 1),
    )
    model = LMModel(cfg)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.3)
    return model.eval()


@pytest.mark.parametrize("temp_text,top_k_text", [(0.7, 25), (0.0, 25), (1.0, 300)])
def test_generator_draws_the_same_text_with_the_head(monkeypatch, temp_text, top_k_text):
    monkeypatch.setattr(TopKHead, "pays_here", staticmethod(lambda: True))
    model = big_vocab_lm()
    user = torch.randint(0, 64, (2, 2, 30))
    runs = {}
    for screened in (True, False):
        gen = Generator(model, temp=0.8, temp_text=temp_text, top_k=20, top_k_text=top_k_text, seed=5)
        if not screened:
            monkeypatch.setattr(gen, "_text_head_for", lambda: None)
        with gen.streaming(2):
            runs[screened] = [gen.step(user[..., t : t + 1]) for t in range(30)]
        assert (gen._text_head is not None) == screened
    texts = torch.cat([r[:, 0] for r in runs[True][1:]], -1)
    assert len(texts.unique()) > 3  # varied text, not one token over and over
    for a, b in zip(runs[True][1:], runs[False][1:], strict=True):
        assert torch.equal(a, b)

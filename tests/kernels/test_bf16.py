"""Bf16Linear is bfloat16's definition of the product (bf16 inputs and weights, float32 sums,
a bfloat16 result), packed for oneDNN or not."""

import pytest
import torch
import torch.nn.functional as F

from moshi.kernels import bf16
from tests.support.fixtures import rel_err

LINEAR_TOL = 0.01  # one product against float32: inputs, weights and result rounded to bfloat16


@pytest.mark.parametrize("packed", [True, False])
@pytest.mark.parametrize("rows", [1, 2, 17])
@pytest.mark.parametrize("n,k", [(64, 32), (1536, 512)])
def test_bf16_linear_is_bfloat16s_product(monkeypatch, packed, rows, n, k):
    if packed and not bf16.bfloat16_products_available():
        pytest.skip("no native bfloat16 products on this CPU")
    monkeypatch.setattr(bf16, "bfloat16_products_available", lambda: packed)
    w, x = torch.randn(n, k) / k**0.5, torch.randn(3, rows, k)
    layer = bf16.Bf16Linear(w)
    assert layer.packed == packed
    with torch.no_grad():
        y = layer(x)
    assert y.shape == (3, rows, n) and y.dtype == torch.float32
    own = F.linear(x.bfloat16().double(), w.bfloat16().double())  # exact sums of the rounded inputs
    torch.testing.assert_close(y.double(), own, rtol=2**-7, atol=2**-7 * own.abs().max().item())
    assert rel_err(y, F.linear(x, w)) < LINEAR_TOL

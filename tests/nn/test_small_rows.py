"""Every formulation of the small-row product equals F.linear within float rounding, the
chooser picks one of them and remembers it, and autograd paths stay on F.linear."""

import pytest
import torch
import torch.nn.functional as F

from moshi.lm.layers import Gating
from moshi.nn import small_rows
from moshi.nn.attention import Attention
from moshi.nn.linear import apply_linear, linear

TOLERANCE = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.bfloat16: dict(rtol=2e-2, atol=2e-2)}


@pytest.fixture(autouse=True)
def fresh_choices():
    yield
    small_rows.force(None)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("n,k", [(64, 32), (96, 512), (700, 256)])
@pytest.mark.parametrize("rows", [1, 2, 3, 8])
@pytest.mark.parametrize("form", sorted(small_rows.FORMS))
def test_each_form_equals_f_linear(form, rows, n, k, dtype):
    w, x = torch.randn(n, k, dtype=dtype) / k**0.5, torch.randn(rows, k, dtype=dtype)
    exact = F.linear(x.double(), w.double())
    ours = small_rows.FORMS[form](x, w)
    assert ours.shape == (rows, n) and ours.dtype == dtype
    torch.testing.assert_close(ours.double(), exact, **TOLERANCE[dtype])
    torch.testing.assert_close(ours, F.linear(x, w), **TOLERANCE[dtype])


def test_rows_of_a_stacked_weight():
    """A `HostRows` view (rows of the depformer's stacked projections) is a narrowed weight."""
    stacked, x = torch.randn(3 * 48, 32), torch.randn(2, 32)
    w = stacked.narrow(0, 48, 48)
    for form in small_rows.FORMS.values():
        torch.testing.assert_close(form(x, w), F.linear(x, w))


def test_apply_linear_chooses_once_and_keeps_shapes():
    w, x = torch.randn(40, 24), torch.randn(2, 1, 24)
    with torch.no_grad():
        y = apply_linear(w, x)
        key = (w.shape, w.stride(), w.dtype, 2, torch.get_num_threads())
        assert small_rows._chosen[key] in small_rows.FORMS.values()
        assert y.shape == (2, 1, 40)
        torch.testing.assert_close(y, F.linear(x, w))
        assert not small_rows.applies(x[0]) and not small_rows.applies(x[0, 0])  # one row: F.linear
        torch.testing.assert_close(apply_linear(w, x[0, 0]), F.linear(x[0, 0], w))  # x [K]


@pytest.mark.parametrize("form", sorted(small_rows.FORMS))
def test_forced_form_runs_the_modules(form):
    """Each form through the modules that use it: attention and the gated FFN, same outputs."""
    small_rows.force(form)
    torch.manual_seed(0)
    attention, ffn = Attention(32, 4, context=8, rope_max_period=10_000.0), Gating(32, 48)
    torch.nn.init.normal_(attention.in_proj_weight, std=0.1)
    x = torch.randn(1, 2, 32)
    with torch.no_grad():
        exact = (attention(x), linear(ffn.linear_in, x))
        with torch.inference_mode():
            ours = (attention(x), linear(ffn.linear_in, x))
    small_rows.force("linear")
    with torch.no_grad():
        plain = (attention(x), linear(ffn.linear_in, x))
    torch.testing.assert_close(ours, plain)
    torch.testing.assert_close(exact, plain)


def test_autograd_stays_on_f_linear(monkeypatch):
    """With autograd on (training), products never go through the chooser."""
    monkeypatch.setattr(small_rows, "product", lambda x, w: pytest.fail("chooser used with autograd on"))
    ffn = Gating(16, 24)
    x = torch.randn(1, 2, 16, requires_grad=True)
    ffn(x).sum().backward()
    assert x.grad is not None and ffn.linear_in.weight.grad is not None


def test_force_names_the_forms():
    with pytest.raises(ValueError, match="must be one of"):
        small_rows.force("fast")

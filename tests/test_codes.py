"""Code specs, priors, layouts, and the information losses against closed forms."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from infogan.codes import (Categorical, CodeSpec, Gaussian, Uniform, categorical_nll,
                           gaussian_nll, mse)
from infogan.errors import InfoganError


def test_parse_all_types_and_lambdas():
    s = CodeSpec.parse("c1=cat:10, c2=unif:-1:1@0.1,c3=gauss@0.5,w=unif")
    assert s.codes == (Categorical("c1", 10, 1.0), Uniform("c2", -1.0, 1.0, 0.1),
                       Gaussian("c3", 0.5), Uniform("w", -1.0, 1.0, 1.0))
    assert s.names == ["c1", "c2", "c3", "w"]
    assert s.g_dim == 10 + 3
    assert s.q_dim == 10 + 3 * 2          # learned std: mean and log-std per continuous code
    assert CodeSpec.parse("c=unif:0:3", "mse").q_dim == 1


def test_spec_string_round_trip():
    text = "digit=cat:7@2,rot=unif:-0.5:2@0.1,width=gauss@0.1"
    s = CodeSpec.parse(text)
    assert CodeSpec.parse(str(s)) == s
    assert str(s) == text


@pytest.mark.parametrize("bad, words", [
    ("c1=cat:1", "K >= 2"),
    ("c1=cat:0", "K >= 2"),
    ("c1=cat:x", "integer K"),
    ("c1=unif:1:1", "empty or reversed"),
    ("c1=unif:2:-1", "empty or reversed"),
    ("c1=unif:0", "unif:LOW:HIGH"),
    ("c1=beta:2", "unknown code type"),
    ("c1=gauss:3", "no arguments"),
    ("c1=cat:10@-1", "lambda must be >= 0"),
    ("c1=cat:10@abc", "not a number"),
    ("1c=cat:10", "NAME=TYPE"),
    ("c1=cat:10,c1=gauss", "used twice"),
    ("", "names no code"),
    ("c1=unif:a:1", "not a number"),
])
def test_bad_specs_are_one_line_errors(bad, words):
    with pytest.raises(InfoganError, match=words) as e:
        CodeSpec.parse(bad)
    assert "\n" not in str(e.value)


def test_unknown_continuous_loss():
    with pytest.raises(InfoganError, match="nll, nll-fixed, mse"):
        CodeSpec.parse("c=gauss", "l1")


def test_entropies_closed_form():
    assert Categorical("c", 10).entropy() == pytest.approx(math.log(10))
    assert Uniform("u", -1, 1).entropy() == pytest.approx(math.log(2))
    assert Uniform("u", 0, 5).entropy() == pytest.approx(math.log(5))
    assert Gaussian("g").entropy() == pytest.approx(0.5 * math.log(2 * math.pi * math.e))


def test_priors_sample_their_own_distribution():
    g = torch.Generator().manual_seed(0)
    s = CodeSpec.parse("c=cat:4,u=unif:-3:5,n=gauss")
    c = s.sample(40000, g)
    assert c["c"].dtype == torch.int64 and c["u"].dtype == torch.float32
    counts = torch.bincount(c["c"], minlength=4).float() / 40000
    assert_close(counts, torch.full((4,), 0.25), atol=0.01, rtol=0)
    assert c["u"].min() >= -3 and c["u"].max() < 5
    assert_close(c["u"].mean(), torch.tensor(1.0), atol=0.05, rtol=0)
    assert_close(c["u"].var(), torch.tensor(64 / 12), atol=0.1, rtol=0)   # (b - a)^2 / 12
    assert_close(c["n"].mean(), torch.tensor(0.0), atol=0.03, rtol=0)
    assert_close(c["n"].std(), torch.tensor(1.0), atol=0.03, rtol=0)


def test_fixed_codes_do_not_shift_the_others():
    s = CodeSpec.parse("c=cat:10,u=unif")
    a = s.sample(8, torch.Generator().manual_seed(1))
    b = s.sample(8, torch.Generator().manual_seed(1), fixed={"c": 3})
    assert (b["c"] == 3).all()
    assert_close(a["u"], b["u"])


def test_fixed_code_errors():
    s = CodeSpec.parse("c=cat:10,u=unif")
    with pytest.raises(InfoganError, match="out of range"):
        s.sample(2, fixed={"c": 10})
    with pytest.raises(InfoganError, match="out of range"):
        s.sample(2, fixed={"c": 2.5})
    with pytest.raises(InfoganError, match="unknown code 'x'.*c, u"):
        s.sample(2, fixed={"x": 1})


def test_generator_input_layout():
    s = CodeSpec.parse("c=cat:3,u=unif,k=cat:2")
    g = s.to_g_input({"c": torch.tensor([2, 0]), "u": torch.tensor([0.5, -1.0]),
                      "k": torch.tensor([1, 0])})
    assert_close(g, torch.tensor([[0, 0, 1, 0.5, 0, 1], [1, 0, 0, -1.0, 1, 0]]))


def test_uniform_logits_give_ln_k():
    for k in (2, 10, 37):
        logits = torch.zeros(5, k)
        assert_close(categorical_nll(logits, torch.arange(5) % k), torch.tensor(math.log(k)))


def test_cross_entropy_is_on_logits_and_can_reach_zero():
    # PyTorch-GAN #84: softmax before CrossEntropyLoss floors the loss near 1.46 for K = 10.
    target = torch.arange(10)
    logits = 30.0 * torch.eye(10)
    assert categorical_nll(logits, target) < 1e-6


def test_gaussian_nll_closed_forms():
    c = torch.tensor([0.3, -0.7, 1.5])
    assert_close(gaussian_nll(c, torch.zeros(3), c), torch.tensor(0.5 * math.log(2 * math.pi)))
    mu, sigma = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([0.5, 1.0, 2.0])
    expect = (0.5 * math.log(2 * math.pi) + sigma.log() + (c - mu) ** 2 / (2 * sigma**2)).mean()
    assert_close(gaussian_nll(mu, sigma.log(), c), expect)
    assert_close(mse(mu, c), ((c - mu) ** 2).mean())


def test_info_losses_weights_and_bounds():
    s = CodeSpec.parse("c=cat:4@2,u=unif:-1:1@0.1")
    n = 6
    q = torch.zeros(n, s.q_dim)                  # uniform logits, mean 0, log-std 0
    codes = {"c": torch.arange(n) % 4, "u": torch.zeros(n)}
    total, losses, bounds = s.info_losses(q, codes)
    assert_close(losses["c"], torch.tensor(math.log(4)))
    assert_close(losses["u"], torch.tensor(0.5 * math.log(2 * math.pi)))
    assert_close(total, 2 * losses["c"] + 0.1 * losses["u"])
    assert_close(bounds["c"], torch.tensor(0.0), atol=1e-6, rtol=0)   # ln 4 - ln 4
    assert_close(bounds["u"], torch.tensor(math.log(2) - 0.5 * math.log(2 * math.pi)))


def test_log_std_is_clamped():
    s = CodeSpec.parse("u=gauss")
    q = torch.tensor([[0.0, -100.0], [0.0, 100.0]])
    parts = s.split_q(q)["u"]
    assert_close(parts["log_std"], torch.tensor([-5.0, 2.0]))


def test_fixed_std_and_mse_modes():
    codes = {"u": torch.tensor([1.0, -1.0])}
    q = torch.tensor([[0.0], [0.0]])
    _, l_fix, _ = CodeSpec.parse("u=unif", "nll-fixed").info_losses(q, codes)
    _, l_mse, b_mse = CodeSpec.parse("u=unif", "mse").info_losses(q, codes)
    assert_close(l_fix["u"], torch.tensor(0.5 * math.log(2 * math.pi) + 0.5))
    assert_close(l_mse["u"], torch.tensor(1.0))
    assert_close(b_mse["u"], torch.tensor(math.log(2) - 0.5 * math.log(2 * math.pi) - 0.5))


def test_info_loss_has_gradient_to_q_output():
    # torchgan #100: a penalty rebuilt from Python floats carries no gradient.
    s = CodeSpec.parse("c=cat:3,u=unif,g=gauss")
    q = torch.randn(4, s.q_dim, requires_grad=True)
    total, _, _ = s.info_losses(q, s.sample(4, torch.Generator().manual_seed(0)))
    total.backward()
    assert q.grad is not None and (q.grad.abs().sum(0) > 0).all()


def test_split_q_checks_width():
    with pytest.raises(InfoganError, match="width"):
        CodeSpec.parse("c=cat:3").split_q(torch.zeros(2, 4))

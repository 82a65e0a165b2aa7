"""SameConv2d's hand-written backward against autograd's, in float64 and in bf16."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from infogan.nets import Flatten, Reshape, use_channels_last
from infogan.ops import SameConv2d, _SameConvFn, is_channels_last, relayout, swap01


@pytest.mark.parametrize("nhwc", [False, True])
@pytest.mark.parametrize("k", [3, 4])
def test_gradcheck_float64(k, nhwc):
    torch.manual_seed(0)
    fmt = torch.channels_last if nhwc else torch.contiguous_format
    x = torch.randn(2, 3, 5, 6, dtype=torch.float64).contiguous(memory_format=fmt).requires_grad_()
    w = torch.randn(4, 3, k, k, dtype=torch.float64).contiguous(memory_format=fmt).requires_grad_()
    b = torch.randn(4, dtype=torch.float64, requires_grad=True)
    assert is_channels_last(x) == nhwc
    total = k - 1
    pad = (total // 2, total - total // 2, total // 2, total - total // 2)
    assert torch.autograd.gradcheck(lambda x, w, b: _SameConvFn.apply(x, w, b, pad), (x, w, b))


def test_fp32_keeps_autograds_backward():
    conv = SameConv2d(3, 4, 4)
    y = conv(torch.randn(1, 3, 7, 7, requires_grad=True))
    assert "SameConvFn" not in type(y.grad_fn).__name__
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = conv(torch.randn(1, 3, 7, 7, requires_grad=True))
    assert "SameConvFn" in type(y.grad_fn).__name__


def test_forward_is_tensorflow_same_padding():
    torch.manual_seed(0)
    conv = SameConv2d(3, 5, 4)
    x = torch.randn(2, 3, 7, 7)
    assert_close(conv(x), F.conv2d(F.pad(x, (1, 2, 1, 2)), conv.weight, conv.bias))
    assert conv(x).shape == (2, 5, 7, 7)


@pytest.mark.parametrize("channels_last", [False, True])
def test_bf16_autocast_gradients_match_the_reference(channels_last):
    torch.manual_seed(0)
    fast, ref = SameConv2d(64, 32, 4), SameConv2d(64, 32, 4, fast_backward=False)
    ref.load_state_dict(fast.state_dict())
    x = torch.randn(8, 64, 7, 7)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
        fast, ref = fast.to(memory_format=torch.channels_last), ref.to(memory_format=torch.channels_last)
    grads = []
    for m in (fast, ref):
        xi = x.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = m(xi)
        (y.float() ** 2).mean().backward()
        grads.append((y.detach().float(), xi.grad, m.weight.grad, m.bias.grad))
        assert xi.grad.dtype == torch.float32 and m.weight.grad.dtype == torch.float32
    for a, b in zip(*grads):
        assert_close(a, b, rtol=2e-2, atol=2e-2 * b.abs().max().item())


@pytest.mark.parametrize("nhwc", [False, True])
@pytest.mark.parametrize("flip", [False, True])
def test_swap01_is_a_transpose_in_the_same_layout(nhwc, flip):
    x = torch.randn(3, 5, 4, 2)
    if nhwc:
        x = x.contiguous(memory_format=torch.channels_last)
    want = (x.flip(2, 3) if flip else x).transpose(0, 1)
    got = swap01(x, flip=flip)
    assert torch.equal(got, want)
    assert is_channels_last(got) == nhwc and (nhwc or got.is_contiguous())


def test_relayout_returns_the_gradient_in_the_inputs_layout():
    x = torch.randn(2, 3, 4, 5).contiguous(memory_format=torch.channels_last).requires_grad_()
    y = relayout(x, torch.contiguous_format)
    assert y.is_contiguous() and torch.equal(y, x)
    y.backward(torch.arange(y.numel(), dtype=torch.float32).view_as(y))
    assert is_channels_last(x.grad)
    assert torch.equal(x.grad, torch.arange(y.numel(), dtype=torch.float32).view_as(y))
    same = torch.randn(2, 3, 4, 5)
    assert relayout(same, torch.contiguous_format) is same


def test_flatten_and_reshape_keep_chw_order_in_nhwc():
    x = torch.randn(2, 3, 4, 5)
    flat = Flatten()(x.contiguous(memory_format=torch.channels_last))
    assert torch.equal(flat, x.flatten(1))
    r = torch.nn.Sequential(Reshape(3, 4, 5))
    use_channels_last(r)
    back = r(flat)
    assert torch.equal(back, x) and is_channels_last(back)

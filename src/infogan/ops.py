"""A stride-1 convolution with TensorFlow "same" padding and a faster backward pass on CPU.

Why: in the tutorial preset two 4x4 stride-1 convolutions (G's 512->128 and D's 128->256 on 7x7
maps) carry most of the FLOPs, and oneDNN's backward-weights kernel for them runs at about a
third of the speed of its forward kernel on this CPU (bench/RESULTS.md). Both gradients are
themselves forward convolutions, which run fast:

    y      = conv(pad(x, (l, r, t, b)), w)                         stride 1, kernel K
    dL/dx  = conv(pad(dy, (K-1-l, K-1-r, K-1-t, K-1-b)), flip(w)^T)  (flip: both spatial axes,
                                                                     ^T: swap in/out channels)
    dL/dw  = conv(pad(x)^T, dy^T)^T                                (^T: swap batch and channels;
                                                                     batch becomes the reduced axis)
    dL/db  = sum of dy over batch and space

Same function as `nn.Conv2d` after `nn.ZeroPad2d`, to rounding (tests/test_ops.py checks it
with gradcheck in float64, in both layouts).

The layout helpers below (`relayout`, `swap01`, `is_channels_last`) keep the channels-last
(NHWC) path free of slow layout conversions; see README, "Speed".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    kind = x.device.type
    if torch.is_autocast_enabled(kind):
        return torch.get_autocast_dtype(kind)
    return x.dtype


class _SameConvFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, pad):
        dt = _compute_dtype(x)
        xp = F.pad(x.to(dt), pad)
        w = weight.to(dt)
        ctx.save_for_backward(xp, w)
        ctx.pad, ctx.dtypes, ctx.has_bias = pad, (x.dtype, weight.dtype), bias is not None
        return F.conv2d(xp, w, None if bias is None else bias.to(dt))

    @staticmethod
    def backward(ctx, gy):
        xp, w = ctx.saved_tensors
        l, r, t, b = ctx.pad
        k_h, k_w = w.shape[2:]
        x_dtype, w_dtype = ctx.dtypes
        gy = gy.to(w.dtype)
        if is_channels_last(xp):
            gy = gy.contiguous(memory_format=torch.channels_last)
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            g = F.pad(gy, (k_w - 1 - l, k_w - 1 - r, k_h - 1 - t, k_h - 1 - b))
            gx = F.conv2d(g, swap01(w, flip=True)).to(x_dtype)
        if ctx.needs_input_grad[1]:
            a, k = swap01(xp), swap01(gy)                # (Ci, B, Hp, Wp), (Co, B, H, W)
            gw = swap01(F.conv2d(a, k)).to(w_dtype)      # (Co, Ci, K, K)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = gy.sum((0, 2, 3), dtype=torch.float32).to(w_dtype)
        return gx, gw, gb, None


def swap01(x: torch.Tensor, flip: bool = False) -> torch.Tensor:
    """x.transpose(0, 1) (and, with `flip`, reversed along both spatial axes), copied into the
    same layout as x (NCHW or NHWC).

    For NHWC the one-step copy is a slow general permutation in PyTorch's copy kernel (11 ms for
    G's 64x512x10x10 input here); three block-wise copies do it in about 1.5 ms."""
    if not is_channels_last(x):
        x = x.flip(2, 3) if flip else x
        return x.transpose(0, 1).contiguous()
    n0, n1, h, w = x.shape
    m = x.permute(0, 2, 3, 1).reshape(n0, h * w, n1).transpose(0, 1)   # (HW, n0, n1) view
    m = m.flip(0) if flip else m.contiguous()       # reversing HW flips both spatial axes
    m = m.transpose(1, 2).contiguous()                        # (HW, n1, n0)
    m = m.transpose(0, 1).contiguous()                        # (n1, HW, n0)
    return m.view(n1, h, w, n0).permute(0, 3, 1, 2)           # NHWC memory of (n1, n0, h, w)


def is_channels_last(x: torch.Tensor) -> bool:
    """True for a 4-d tensor laid out NHWC (and not also NCHW, as 1x1 maps are)."""
    return x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


class _Relayout(torch.autograd.Function):
    """x in another memory format, with the gradient handed back in x's own format (a plain
    `.contiguous()` passes the gradient through unchanged, so the layer before would receive
    it in the wrong layout and convert it in a slow path)."""

    @staticmethod
    def forward(ctx, x, fmt):
        ctx.fmt_in = torch.channels_last if is_channels_last(x) else torch.contiguous_format
        return x.contiguous(memory_format=fmt)

    @staticmethod
    def backward(ctx, g):
        return g.contiguous(memory_format=ctx.fmt_in), None


def relayout(x: torch.Tensor, fmt: torch.memory_format) -> torch.Tensor:
    """`x.contiguous(memory_format=fmt)`, with the gradient returned in x's layout."""
    if x.is_contiguous(memory_format=fmt):
        return x
    return _Relayout.apply(x, fmt)


class SameConv2d(nn.Conv2d):
    """Stride-1 convolution padded as TensorFlow's "same" (the extra row/column goes after).

    Parameters and state-dict keys are those of `nn.Conv2d`. `fast_backward=False` runs the
    plain `F.pad` + `F.conv2d` (autograd's own backward), kept as the reference.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 fast_backward: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, stride=1, padding=0, bias=bias)
        total = kernel_size - 1
        before = total // 2
        self.same_pad = (before, total - before, before, total - before)  # (l, r, t, b)
        self.fast_backward = fast_backward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The rewrite pays off for bf16 on the CPU (oneDNN's bf16 backward-weights kernel is
        # the slow one); fp32, and CUDA (whose cuDNN kernels were never measured slow), keep
        # autograd's own backward, the reference arithmetic.
        if (self.fast_backward and x.is_cpu and torch.is_grad_enabled()
                and _compute_dtype(x) in (torch.bfloat16, torch.float16)):
            return _SameConvFn.apply(x, self.weight, self.bias, self.same_pad)
        return F.conv2d(F.pad(x, self.same_pad), self.weight, self.bias)

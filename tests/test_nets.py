"""Network shapes, layer facts of the tutorial preset, initialisation."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from infogan.codes import CodeSpec
from infogan.errors import InfoganError
from infogan.nets import Discriminator, Generator, build_models

SPECS = ["c1=cat:10", "c1=cat:10,c2=unif:-1:1@0.1,c3=unif:-1:1@0.1", "a=cat:3,b=gauss,c=cat:20"]


@pytest.mark.parametrize("preset", ["tutorial", "paper"])
@pytest.mark.parametrize("spec_text", SPECS)
@pytest.mark.parametrize("cont_loss", ["nll", "mse"])
def test_shapes(preset, spec_text, cont_loss):
    spec = CodeSpec.parse(spec_text, cont_loss)
    G, D = build_models(preset, (1, 28, 28), spec)
    assert G.in_dim == 62 + spec.g_dim
    x = G(torch.randn(3, G.in_dim))
    assert x.shape == (3, 1, 28, 28)
    assert x.min() >= -1 and x.max() <= 1
    d, q = D(x)
    assert d.shape == (3,) and q.shape == (3, spec.q_dim)
    assert D.encode(x).shape == (3, spec.q_dim)


def test_other_image_sizes_and_channels():
    spec = CodeSpec.parse("c=cat:10")
    G, D = build_models("tutorial", (3, 32, 32), spec)
    x = G(torch.randn(2, G.in_dim))
    assert x.shape == (2, 3, 32, 32)
    assert D(x)[1].shape == (2, 10)
    with pytest.raises(InfoganError, match="multiples of 4"):
        build_models("tutorial", (1, 30, 30), spec)


def test_unknown_preset():
    with pytest.raises(InfoganError, match="unknown preset 'dcgan'.*tutorial, paper"):
        build_models("dcgan", (1, 28, 28), CodeSpec.parse("c=cat:10"))


def _shapes(seq: nn.Sequential, x):
    out = []
    for layer in seq:
        x = layer(x)
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            name = "Conv2d" if isinstance(layer, nn.Conv2d) else type(layer).__name__
            out.append((name, tuple(x.shape[1:])))
    return out


def test_tutorial_layers_match_the_seed():
    spec = CodeSpec.parse("c1=cat:10")
    G = Generator("tutorial", (1, 28, 28), spec, 62)
    D = Discriminator("tutorial", (1, 28, 28), spec)
    # Keras "same" output sizes, layer by layer (SEED_NOTES).
    assert _shapes(G.net, torch.randn(2, 72)) == [
        ("Linear", (512 * 7 * 7,)), ("Conv2d", (128, 7, 7)),
        ("ConvTranspose2d", (64, 14, 14)), ("ConvTranspose2d", (1, 28, 28))]
    assert _shapes(D.trunk, torch.randn(2, 1, 28, 28)) == [
        ("Conv2d", (64, 14, 14)), ("Conv2d", (128, 7, 7)), ("Conv2d", (256, 7, 7))]
    # Kernel sizes and strides.
    convs = [m for m in [*G.modules(), *D.modules()] if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert [(m.kernel_size, m.stride) for m in convs] == [
        ((4, 4), (1, 1)), ((4, 4), (2, 2)), ((4, 4), (2, 2)),
        ((4, 4), (2, 2)), ((4, 4), (2, 2)), ((4, 4), (1, 1))]
    # LeakyReLU 0.1 everywhere in D, Keras BatchNorm constants.
    assert {m.negative_slope for m in D.modules() if isinstance(m, nn.LeakyReLU)} == {0.1}
    bns = [m for m in [*G.modules(), *D.modules()] if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert len(bns) == 3 + 2 + 1 and all(b.eps == 1e-3 and b.momentum == 0.01 for b in bns)
    # BatchNorm comes after the activation, as in the tutorial.
    kinds = [type(m).__name__ for m in G.net]
    assert kinds[:3] == ["Linear", "ReLU", "BatchNorm1d"]
    assert [type(m).__name__ for m in D.q_head] == ["Linear", "BatchNorm1d", "LeakyReLU", "Linear"]
    # Parameter count: the 5.3 M of the speed issue.
    n = sum(p.numel() for p in [*G.parameters(), *D.parameters()])
    expect = (72 * 25088 + 25088 + 2 * 25088 + 512 * 128 * 16 + 128 + 256 + 128 * 64 * 16 + 64 + 128
              + 64 * 16 + 1                                         # G
              + 16 * 64 + 64 + 64 * 128 * 16 + 128 + 256 + 128 * 256 * 16 + 256 + 512   # trunk
              + 12544 + 1 + 12544 * 128 + 128 + 256 + 128 * 10 + 10)                      # heads
    assert n == expect


def test_same_padding_stride1_is_tensorflows():
    # TF "same" with a 4x4 kernel at stride 1 pads 1 before and 2 after: the output at (0, 0)
    # sees input rows/cols -1..2, i.e. a zero row/col then 0..2.
    spec = CodeSpec.parse("c=cat:2")
    D = Discriminator("tutorial", (1, 28, 28), spec)
    conv = D.trunk[5]
    assert conv.same_pad == (1, 2, 1, 2)
    x = torch.randn(1, 128, 7, 7)
    y = conv(x)
    manual = (conv.weight[:, :, 1:, 1:] * x[:, :, 0:3, 0:3].unsqueeze(1)).sum((2, 3, 4)) + conv.bias
    assert_close(y[0, :, 0, 0], manual[0])


def test_initialisation():
    torch.manual_seed(0)
    spec = CodeSpec.parse("c1=cat:10")
    G, D = build_models("tutorial", (1, 28, 28), spec)
    w = G.net[0].weight
    assert_close(w.std(), torch.tensor(0.02), atol=2e-4, rtol=0)
    assert_close(w.mean(), torch.tensor(0.0), atol=2e-4, rtol=0)
    assert (G.net[0].bias == 0).all()
    # Keras' default (Glorot uniform) where the tutorial sets no initialiser.
    bound = (6 / (12544 + 1)) ** 0.5
    assert D.d_head.weight.abs().max() <= bound and D.d_head.weight.abs().max() > 0.9 * bound

"""Generator and discriminator (shared trunk, D head, Q head) for the two presets.

`tutorial`: the layers of the Keras tutorial the project reproduces, exactly (see
shared/SEED_NOTES.md): kernel sizes, strides, LeakyReLU 0.1, BatchNorm after the activation,
Keras "same" padding (a 4x4 stride-1 convolution pads 1 before and 2 after, as TensorFlow does),
Keras BatchNorm constants (momentum 0.99, eps 1e-3), N(0, 0.02) kernels where the tutorial sets
them and Glorot-uniform (Keras' default) where it does not, zero biases.

`paper`: the InfoGAN paper's MNIST networks (Chen et al. 2016, appendix C.1): G FC 1024 -> FC
7x7x128 -> deconv 64 -> deconv C; D conv 64 -> conv 128 (BN) -> FC 1024 (BN); Q FC 128 on
D's shared layers.

Both output logits: D's real/fake logit and Q's raw code outputs (see codes.CodeSpec.split_q).
No training logic here.
"""

from __future__ import annotations

import torch
from torch import nn

from .codes import CodeSpec
from .errors import InfoganError
from .ops import SameConv2d, is_channels_last, relayout

PRESETS = ("tutorial", "paper", "quality")
NOISE_DIM = {"tutorial": 62, "paper": 62, "quality": 62}
# The quality recipe changes training (see train.py), not the networks: it uses the paper's.
NETWORKS = {"tutorial": "tutorial", "paper": "paper", "quality": "paper"}


def _keras_bn(cls, n: int) -> nn.Module:
    # Keras: moving = 0.99 * moving + 0.01 * batch; PyTorch's momentum is the batch weight.
    return cls(n, eps=1e-3, momentum=0.01)


def _init(module: nn.Module, normal: bool) -> None:
    """Weights N(0, 0.02) when `normal`, else Glorot-uniform (Keras' default); biases zero."""
    if normal:
        nn.init.normal_(module.weight, 0.0, 0.02)
    else:
        nn.init.xavier_uniform_(module.weight)
    if module.bias is not None:
        nn.init.zeros_(module.bias)


def _n(module: nn.Module, normal: bool = True) -> nn.Module:
    _init(module, normal)
    return module


class Reshape(nn.Module):
    """(n, C*H*W) -> (n, C, H, W); laid out NHWC when the model runs channels-last
    (`use_channels_last`), so the convolutions after it get the layout they run fastest in."""

    def __init__(self, *shape: int):
        super().__init__()
        self.shape = shape
        self.channels_last = False

    def forward(self, x):
        x = x.reshape(x.shape[0], *self.shape)
        return relayout(x, torch.channels_last) if self.channels_last else x


class Flatten(nn.Module):
    """(n, C, H, W) -> (n, C*H*W) in (C, H, W) order whatever the input's memory layout."""

    def forward(self, x):
        if is_channels_last(x):
            x = relayout(x, torch.contiguous_format)
        return x.flatten(1)


def use_channels_last(*models: nn.Module) -> None:
    """Put the models' conv weights and their 4-d activations in the NHWC layout."""
    for model in models:
        model.to(memory_format=torch.channels_last)
        for m in model.modules():
            if isinstance(m, Reshape):
                m.channels_last = True


def _check_shape(image_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    c, h, w = image_shape
    if h % 4 or w % 4 or h < 8 or w < 8:
        raise InfoganError(
            f"image size {h}x{w} is not supported: height and width must be multiples of 4, "
            "at least 8 (MNIST is 28x28)"
        )
    return c, h // 4, w // 4


class Generator(nn.Module):
    """G(z, c): (n, noise_dim + spec.g_dim) -> (n, C, H, W) in [-1, 1]."""

    def __init__(self, preset: str, image_shape, spec: CodeSpec, noise_dim: int):
        super().__init__()
        c, h4, w4 = _check_shape(image_shape)
        self.in_dim = noise_dim + spec.g_dim
        preset = NETWORKS.get(preset, preset)
        if preset == "tutorial":
            n = 512 * h4 * w4
            self.net = nn.Sequential(
                _n(nn.Linear(self.in_dim, n)),
                nn.ReLU(),
                _keras_bn(nn.BatchNorm1d, n),
                Reshape(512, h4, w4),                                  # (b, 512, 7, 7)
                _n(SameConv2d(512, 128, 4)),                           # (b, 128, 7, 7)
                nn.ReLU(),
                _keras_bn(nn.BatchNorm2d, 128),
                _n(nn.ConvTranspose2d(128, 64, 4, 2, 1)),              # (b, 64, 14, 14)
                nn.ReLU(),
                _keras_bn(nn.BatchNorm2d, 64),
                _n(nn.ConvTranspose2d(64, c, 4, 2, 1)),                # (b, C, 28, 28)
                nn.Tanh(),
            )
        elif preset == "paper":
            n = 128 * h4 * w4
            self.net = nn.Sequential(
                _n(nn.Linear(self.in_dim, 1024)),
                nn.BatchNorm1d(1024),
                nn.ReLU(),
                _n(nn.Linear(1024, n)),
                nn.BatchNorm1d(n),
                nn.ReLU(),
                Reshape(128, h4, w4),                                  # (b, 128, 7, 7)
                _n(nn.ConvTranspose2d(128, 64, 4, 2, 1)),              # (b, 64, 14, 14)
                nn.BatchNorm2d(64),
                nn.ReLU(),
                _n(nn.ConvTranspose2d(64, c, 4, 2, 1)),                # (b, C, 28, 28)
                nn.Tanh(),
            )
        else:
            raise InfoganError(f"unknown preset '{preset}'; use one of {', '.join(PRESETS)}")

    def forward(self, g_in: torch.Tensor) -> torch.Tensor:
        return self.net(g_in)


class Discriminator(nn.Module):
    """The shared trunk with two heads: D's real/fake logit and Q's code outputs.

    forward(x) -> (d_logit (n,), q_out (n, spec.q_dim)).
    """

    def __init__(self, preset: str, image_shape, spec: CodeSpec):
        super().__init__()
        c, h4, w4 = _check_shape(image_shape)
        preset = NETWORKS.get(preset, preset)
        if preset == "tutorial":
            feat = 256 * h4 * w4
            self.trunk = nn.Sequential(
                _n(nn.Conv2d(c, 64, 4, 2, 1)),                         # (b, 64, 14, 14)
                nn.LeakyReLU(0.1),
                _n(nn.Conv2d(64, 128, 4, 2, 1)),                       # (b, 128, 7, 7)
                nn.LeakyReLU(0.1),
                _keras_bn(nn.BatchNorm2d, 128),
                _n(SameConv2d(128, 256, 4)),                           # (b, 256, 7, 7)
                nn.LeakyReLU(0.1),
                _keras_bn(nn.BatchNorm2d, 256),
                Flatten(),                                             # (b, 12544)
            )
            self.d_head = _n(nn.Linear(feat, 1), normal=False)
            self.q_head = nn.Sequential(
                _n(nn.Linear(feat, 128), normal=False),
                _keras_bn(nn.BatchNorm1d, 128),
                nn.LeakyReLU(0.1),
                _n(nn.Linear(128, spec.q_dim), normal=False),
            )
        elif preset == "paper":
            self.trunk = nn.Sequential(
                _n(nn.Conv2d(c, 64, 4, 2, 1)),                         # (b, 64, 14, 14)
                nn.LeakyReLU(0.1),
                _n(nn.Conv2d(64, 128, 4, 2, 1)),                       # (b, 128, 7, 7)
                nn.BatchNorm2d(128),
                nn.LeakyReLU(0.1),
                Flatten(),
                _n(nn.Linear(128 * h4 * w4, 1024)),                    # (b, 1024)
                nn.BatchNorm1d(1024),
                nn.LeakyReLU(0.1),
            )
            self.d_head = _n(nn.Linear(1024, 1))
            self.q_head = nn.Sequential(
                _n(nn.Linear(1024, 128)),
                nn.BatchNorm1d(128),
                nn.LeakyReLU(0.1),
                _n(nn.Linear(128, spec.q_dim)),
            )
        else:
            raise InfoganError(f"unknown preset '{preset}'; use one of {', '.join(PRESETS)}")

    def forward(self, x: torch.Tensor, trunk_twice: bool = False, with_q: bool = True):
        h = self.trunk(x)
        d = self.d_head(h).squeeze(1)
        if not with_q:  # D-only steps: Q's head is not trained there, so skip its work
            return d, None
        # The tutorial's composite model calls D and Q as two models, so the shared trunk runs
        # twice on the same images; `trunk_twice` reproduces that arithmetic exactly.
        hq = self.trunk(x) if trunk_twice else h
        return d, self.q_head(hq)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Q's raw outputs only."""
        return self.q_head(self.trunk(x))


def build_models(preset: str, image_shape, spec: CodeSpec, noise_dim: int | None = None):
    if preset not in PRESETS:
        raise InfoganError(f"unknown preset '{preset}'; use one of {', '.join(PRESETS)}")
    noise_dim = NOISE_DIM[preset] if noise_dim is None else noise_dim
    return Generator(preset, image_shape, spec, noise_dim), Discriminator(preset, image_shape, spec)

"""Random affine distortions of image batches, for the `quality` recipe.

Why: a categorical code that is asked to pick the digit competes with style. On MNIST the
style directions with the most pixel variance are slant and stroke width, which is what the
continuous codes should take. If the categorical code must still be recoverable by Q after the
image has been rotated, sheared, rescaled and shifted at random, it cannot be carried by slant,
width or position, and identity is what is left. The continuous codes keep their loss on the
undistorted images, since a distortion would destroy exactly what they measure.

All ops are differentiable (affine_grid + grid_sample), run on the device of the batch, and
draw from the given torch.Generator so runs stay reproducible.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# Ranges at strength 1: rotation +-15 degrees, shear +-0.3, per-axis scale 0.85-1.15, shift
# +-2 pixels of 28. Digits keep their identity under all of these (a 6 is not rotated into a 9).
ROTATE_DEG, SHEAR, SCALE, SHIFT_PX = 15.0, 0.3, 0.15, 2.0


def random_affine(x: torch.Tensor, gen: torch.Generator, strength: float = 1.0,
                  background: float = -1.0) -> torch.Tensor:
    """Each image of x (n, C, H, W) through its own random affine map. Pixels from outside the
    image take `background` (-1 is black in the [-1, 1] range G produces)."""
    n, h = x.shape[0], x.shape[-2]
    dev = x.device

    def u(lo, hi):
        return lo + (hi - lo) * torch.rand(n, generator=gen, device=dev)

    s = float(strength)
    a = u(-ROTATE_DEG, ROTATE_DEG) * (s * math.pi / 180)
    sh = u(-SHEAR, SHEAR) * s
    sx, sy = 1 + u(-SCALE, SCALE) * s, 1 + u(-SCALE, SCALE) * s
    shift = 2 * SHIFT_PX * s / h                            # pixels -> affine_grid's [-1, 1] units
    tx, ty = u(-shift, shift), u(-shift, shift)
    cos, sin = torch.cos(a), torch.sin(a)
    # theta = R(a) @ Shear(sh) @ Scale(sx, sy), plus the shift; it maps output to input coordinates.
    m00, m01 = cos * sx, (cos * sh - sin) * sy
    m10, m11 = sin * sx, (sin * sh + cos) * sy
    theta = torch.stack([torch.stack([m00, m01, tx], 1), torch.stack([m10, m11, ty], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    out = F.grid_sample(x - background, grid, mode="bilinear", padding_mode="zeros",
                        align_corners=False)
    return out + background

"""Drawing images with chosen codes, traversals, and grids as PNG (Pillow, no torchvision)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from .codes import Categorical, CodeSpec
from .data import from_unit_range
from .errors import InfoganError


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Images in [-1, 1] (n, C, H, W) -> uint8 numpy (n, C, H, W)."""
    return from_unit_range(x.cpu()).numpy()


def make_grid(images, nrow: int, pad: int = 2) -> np.ndarray:
    """Tile (n, C, H, W) images, `nrow` per row, into one (H', W') or (H', W', 3) uint8 array."""
    a = images if isinstance(images, np.ndarray) and images.dtype == np.uint8 else to_uint8(images)
    if a.ndim != 4:
        raise InfoganError(f"a grid needs images shaped (N, C, H, W), got {tuple(a.shape)}")
    if nrow < 1:
        raise InfoganError(f"--nrow must be at least 1, got {nrow}")
    n, c, h, w = a.shape
    rows = -(-n // nrow)
    out = np.zeros((rows * (h + pad) + pad, nrow * (w + pad) + pad, c), np.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        out[y : y + h, x : x + w] = a[i].transpose(1, 2, 0)
    return out[..., 0] if c == 1 else out


def save_grid(images, path, nrow: int = 10, row_labels: list[str] | None = None, scale: int = 2) -> Path:
    """Write images (tensor in [-1, 1] or uint8 array, (N, C, H, W)) as a PNG grid.

    `row_labels` writes a short label left of each row (e.g. the dataset label of a code value).
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise InfoganError(f"{path}: a grid is written as .png")
    grid = make_grid(images, nrow)
    img = Image.fromarray(grid)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    if row_labels:
        rows = len(row_labels)
        margin = 8 * max(len(s) for s in row_labels) + 8
        canvas = Image.new(img.mode, (img.width + margin, img.height), 0)
        canvas.paste(img, (margin, 0))
        draw = ImageDraw.Draw(canvas)
        step = img.height / max(rows, 1)
        for r, text in enumerate(row_labels):
            draw.text((4, int(r * step + step / 2 - 5)), text, fill=255)
        img = canvas
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    img.save(tmp, format="PNG")
    tmp.replace(path)
    return path


def grid_codes(spec: CodeSpec, ncol: int = 10, gen: torch.Generator | None = None):
    """Codes for the training grids: row i = value i of the first categorical code, the same
    noise and other codes down each column. Returns (codes dict, nrows); without a categorical
    code, 10 rows of independent draws."""
    cat = next(iter(spec.categorical), None)
    nrows = cat.k if cat else 10
    base = spec.sample(ncol if cat else ncol * nrows, gen)
    if cat is None:
        return base, nrows
    codes = {name: v.repeat(nrows) for name, v in base.items()}  # (nrows * ncol,)
    codes[cat.name] = torch.arange(cat.k).repeat_interleave(ncol)
    return codes, nrows


def traverse_values(start: float, stop: float, steps: int) -> torch.Tensor:
    if steps < 2:
        raise InfoganError(f"--steps must be at least 2 for a traversal, got {steps}")
    return torch.linspace(start, stop, steps)


def traversal_codes(spec: CodeSpec, code: str, values: torch.Tensor, fixed: dict | None = None,
                    gen: torch.Generator | None = None):
    """Codes for a traversal of `code` over `values` (columns). Rows are the values of the first
    other categorical code (or 10 random rows); noise and other codes are fixed along each row.

    Returns (codes dict of (rows * len(values),) tensors, nrows, row_values or None).
    """
    target = spec[code]
    fixed = dict(fixed or {})
    if code in fixed:
        raise InfoganError(f"code {code} is the one traversed; do not also fix it with --code")
    steps = len(values)
    row_cat = next((c for c in spec.categorical if c.name != code and c.name not in fixed), None)
    nrows = row_cat.k if row_cat else 10
    base = spec.sample(nrows, gen, fixed=fixed)
    if row_cat is not None:
        base[row_cat.name] = torch.arange(row_cat.k)
    codes = {name: v.repeat_interleave(steps) for name, v in base.items()}
    if isinstance(target, Categorical):
        vals = torch.tensor([target.check_value(float(v)) for v in values])
    else:
        vals = torch.tensor([target.check_value(float(v)) for v in values], dtype=torch.float32)
    codes[code] = vals.repeat(nrows)
    return codes, nrows, (list(range(row_cat.k)) if row_cat else None)

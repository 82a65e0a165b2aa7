"""The Python API a user sees: load, generate, encode, save_grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch.testing import assert_close

import infogan
from infogan.errors import InfoganError


def test_generate_shapes_range_and_seed(tiny_run):
    m = infogan.load(tiny_run)
    x = m.generate(25, codes={"c1": 3}, seed=1)
    assert x.shape == (25, 1, 28, 28) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1
    assert_close(x, m.generate(25, codes={"c1": 3}, seed=1), rtol=0, atol=0)
    assert not torch.equal(x, m.generate(25, codes={"c1": 3}, seed=2))
    s = m.sample(10, codes={"c1": 7, "c2": 0.5}, seed=0)
    assert (s.codes["c1"] == 7).all() and (s.codes["c2"] == 0.5).all()
    assert s.codes["c3"].std() > 0


def test_generate_bad_input(tiny_run):
    m = infogan.load(tiny_run)
    with pytest.raises(InfoganError, match="positive"):
        m.generate(0)
    with pytest.raises(InfoganError, match="out of range"):
        m.generate(2, codes={"c1": 10})
    with pytest.raises(InfoganError, match="unknown code 'digit'"):
        m.generate(2, codes={"digit": 1})


def test_encode_formats_and_shapes(tiny_run):
    m = infogan.load(tiny_run)
    x = m.generate(12, seed=0)
    p = m.encode(x)
    assert set(p) == {"c1", "c2", "c3"}
    assert p["c1"]["index"].shape == (12,) and p["c1"]["probs"].shape == (12, 10)
    assert_close(p["c1"]["probs"].sum(1), torch.ones(12))
    assert p["c2"]["mean"].shape == (12,) and (p["c2"]["std"] > 0).all()
    # uint8 pixels, (N, H, W) arrays and float [-1, 1] tensors are the same images.
    u8 = ((x + 1) * 127.5).round().to(torch.uint8)
    p8 = m.encode(u8.numpy()[:, 0])
    assert_close(p8["c1"]["probs"], m.encode(u8.float() / 127.5 - 1)["c1"]["probs"])


def test_encode_bad_input(tiny_run):
    m = infogan.load(tiny_run)
    with pytest.raises(InfoganError, match=r"shape \(4, 1, 32, 32\).*\(N, 1, 28, 28\) or \(N, 28, 28\)"):
        m.encode(torch.zeros(4, 1, 32, 32))
    with pytest.raises(InfoganError, match=r"\[-1, 1\]"):
        m.encode(torch.full((2, 1, 28, 28), 200.0))
    with pytest.raises(InfoganError, match="dtype"):
        m.encode(np.zeros((2, 28, 28), np.int32))


def test_save_grid(tiny_run, tmp_path):
    m = infogan.load(tiny_run)
    path = infogan.save_grid(m.generate(25, seed=0), tmp_path / "g.png", nrow=5)
    img = Image.open(path)
    assert img.size == (2 * (5 * 30 + 2), 2 * (5 * 30 + 2))
    with pytest.raises(InfoganError, match=".png"):
        infogan.save_grid(m.generate(2, seed=0), tmp_path / "g.jpg")

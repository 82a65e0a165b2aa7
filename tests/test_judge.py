"""The judge classifier and the metrics built on it; the continuous codes' image properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from infogan import judge as judge_mod
from infogan.codes import CodeSpec
from infogan.data import Dataset, load_dataset
from infogan.errors import InfoganError
from infogan.evaluate import (classifier_score, continuous_report, image_properties,
                              real_cluster_information)


def _slice(ds: Dataset, n: int) -> Dataset:
    idx = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0))[:n]  # all classes
    return Dataset(ds.name, ds.split, ds.images[idx], ds.labels[idx])


def test_the_judge_trains_on_a_small_slice_and_beats_chance_by_far():
    train, test = load_dataset("mnist-5k", "train"), load_dataset("mnist-5k", "test")
    j = judge_mod.train_judge(_slice(train, 1500), test, steps=150)
    assert j.accuracy > 0.8                                   # chance is 0.1
    assert j.accuracy == pytest.approx(judge_mod.accuracy(j, test))
    p = j.probs(test.images[:7])
    assert p.shape == (7, 10) and torch.allclose(p.sum(1), torch.ones(7), atol=1e-5)
    assert j.features(test.images[:3]).shape == (3, judge_mod.FEATURE_DIM)


def test_judge_cache_round_trip_and_corrupt_file(tmp_path):
    train, test = load_dataset("mnist-5k", "train"), load_dataset("mnist-5k", "test")
    j = judge_mod.train_judge(_slice(train, 300), _slice(test, 100), steps=5)
    path = tmp_path / "j.safetensors"
    judge_mod.save_judge(j, path)
    k = judge_mod.load_judge(path)
    assert k.meta == j.meta
    x = test.images[:5]
    assert torch.equal(j.probs(x), k.probs(x))
    path.write_bytes(b"not a judge")
    with pytest.raises(InfoganError, match="unreadable.*judge train --force"):
        judge_mod.load_judge(path)


def test_get_judge_caches_by_content(monkeypatch):
    calls = []
    real = judge_mod.train_judge
    monkeypatch.setattr(judge_mod, "train_judge", lambda *a, **k: calls.append(1) or real(*a, **k))
    a = judge_mod.get_judge("mnist-5k", steps=3)
    b = judge_mod.get_judge("mnist-5k", steps=3)
    assert len(calls) == 1 and a.meta == b.meta
    with pytest.raises(InfoganError, match="no judge for mnist-5k yet"):
        judge_mod.get_judge("mnist-5k", steps=4, train_if_missing=False)


def test_judge_refuses_unlabelled_data(tmp_path):
    f = tmp_path / "imgs-idx3-ubyte"
    f.write_bytes(bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28]) + bytes(2 * 784))
    with pytest.raises(InfoganError, match="has no labels"):
        judge_mod.get_judge(f"idx:{f}")


def test_classifier_score_closed_forms():
    k = 10
    assert classifier_score(torch.eye(k).repeat(5, 1)) == pytest.approx(k, rel=1e-6)   # confident, balanced
    assert classifier_score(torch.full((50, k), 1 / k)) == pytest.approx(1.0)          # undecided
    assert classifier_score(torch.eye(k)[[3] * 50]) == pytest.approx(1.0)              # one class only


def _bar(angle_deg: float, thick: int = 1, length: int = 16) -> np.ndarray:
    """A [-1, 1] image of a straight stroke through the centre, leaning `angle_deg` to the right."""
    img = -np.ones((28, 28))
    t = math.tan(math.radians(angle_deg))
    for r in range(14 - length // 2, 14 + length // 2):
        c = int(round(14 + (14 - r) * t))          # rows go down; leaning right = top to the right
        img[r, c - thick // 2 : c - thick // 2 + thick] = 1
    return img


def test_image_properties_of_strokes():
    imgs = torch.tensor(np.stack([_bar(0), _bar(30), _bar(-30), _bar(0, thick=3)]))[:, None].float()
    p = image_properties(imgs)
    assert abs(p["slant"][0]) < 1e-9
    assert p["slant"][1] == pytest.approx(math.tan(math.radians(30)), abs=0.05)
    assert p["slant"][2] == pytest.approx(-math.tan(math.radians(30)), abs=0.05)
    assert p["ink"][3] == pytest.approx(3 * p["ink"][0])          # three times the stroke mass
    assert p["width"][3] > p["width"][0] and p["width"][1] > p["width"][0]


class _StrokeModel:
    """A stand-in model whose 'generator' draws a stroke leaning by c2 (degrees / 30) and as
    thick as c3 says: continuous_report must find slant for c2 and ink for c3."""

    spec = CodeSpec.parse("c1=cat:3,c2=unif:-1:1,c3=unif:-1:1")
    noise_dim = 2

    def decode(self, z, codes):
        out = [_bar(30 * a, thick=int(round(2 + 1.4 * b))) for a, b in
               zip(codes["c2"].tolist(), codes["c3"].tolist())]
        return torch.tensor(np.stack(out))[:, None].float()


def test_continuous_report_names_the_property_each_code_controls():
    r = continuous_report(_StrokeModel(), n_paths=4, n_points=5)
    assert set(r) == {"c2", "c3"}
    assert r["c2"]["controls"] == "slant" and r["c2"]["r_slant"] > 0.95
    assert r["c3"]["controls"] == "ink" and r["c3"]["r_ink"] > 0.9


class _FixedQ:
    """A stand-in model whose Q gives the stored probabilities."""

    def __init__(self, probs):
        self.spec = CodeSpec.parse(f"c1=cat:{probs.shape[1]}")
        self.probs = probs

    def encode(self, images):
        return {"c1": {"probs": self.probs[: len(images)], "index": self.probs.argmax(1)}}


def test_real_cluster_information_closed_forms():
    k = 4
    confident = torch.eye(k).repeat(25, 1)
    assert real_cluster_information(_FixedQ(confident), torch.zeros(100)) == pytest.approx(1.0)
    assert real_cluster_information(_FixedQ(torch.full((100, k), 1 / k)), torch.zeros(100)) == pytest.approx(0, abs=1e-9)
    lopsided = torch.eye(k)[[0] * 100]
    assert real_cluster_information(_FixedQ(lopsided), torch.zeros(100)) == pytest.approx(0, abs=1e-9)
    # two of four values used, confidently: ln 2 / ln 4
    half = torch.eye(k)[[0, 1] * 50]
    assert real_cluster_information(_FixedQ(half), torch.zeros(100)) == pytest.approx(0.5)

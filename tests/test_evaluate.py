"""Metric functions against hand-made cases and closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from infogan.errors import InfoganError
from infogan.evaluate import (ari, clustering_report, feature_frechet, frechet_distance,
                              hungarian_match, many_to_one_accuracy, nmi)


def test_a_permuted_labelling_scores_one():
    labels = np.repeat(np.arange(10), 30)
    perm = np.random.default_rng(0).permutation(10)
    pred = perm[labels]
    acc, mapping = hungarian_match(pred, labels)
    assert acc == 1.0 and all(mapping[perm[c]] == c for c in range(10))
    assert nmi(pred, labels) == pytest.approx(1.0)
    assert ari(pred, labels) == pytest.approx(1.0)


def test_a_constant_prediction_scores_one_over_k():
    labels = np.repeat(np.arange(10), 30)
    pred = np.zeros_like(labels)
    assert hungarian_match(pred, labels)[0] == pytest.approx(0.1)
    assert nmi(pred, labels) == pytest.approx(0.0)
    assert ari(pred, labels) == pytest.approx(0.0)


def test_merged_classes_one_to_one_versus_many_to_one():
    labels = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    pred = np.array([0, 0, 0, 0, 1, 1, 2, 2])       # 0 and 1 merged into value 0
    assert hungarian_match(pred, labels)[0] == pytest.approx(6 / 8)
    assert many_to_one_accuracy(pred, labels) == pytest.approx(6 / 8)
    split = np.array([0, 1, 2, 3, 4, 5, 6, 7])      # 8 values for 4 classes
    assert many_to_one_accuracy(split, labels) == 1.0
    assert hungarian_match(split, labels)[0] == pytest.approx(4 / 8)


def test_ari_and_nmi_known_value():
    # A small case worked by hand: contingency [[2, 1], [0, 2]], n = 5.
    pred, labels = np.array([0, 0, 0, 1, 1]), np.array([0, 0, 1, 1, 1])
    # sum_ij C(n_ij, 2) = 1 + 0 + 0 + 1 = 2; rows C(3,2)+C(2,2) = 4; cols C(2,2)+C(3,2) = 4
    expected = (2 - 4 * 4 / 10) / (0.5 * (4 + 4) - 4 * 4 / 10)
    assert ari(pred, labels) == pytest.approx(expected)
    assert 0 < nmi(pred, labels) < 1


def test_frechet_closed_forms():
    a, b = np.array([1.0, 2.0, 3.0]), np.array([0.0, -1.0, 3.5])
    assert frechet_distance(a, np.eye(3), a, np.eye(3)) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance(a, np.eye(3), b, np.eye(3)) == pytest.approx(((a - b) ** 2).sum())
    # N(0, s1^2) vs N(0, s2^2) in 1-D: (s1 - s2)^2
    assert frechet_distance([0.0], [[4.0]], [0.0], [[9.0]]) == pytest.approx(1.0)
    f = np.random.default_rng(0).normal(size=(500, 4))
    assert feature_frechet(f, f) == pytest.approx(0.0, abs=1e-6)


def test_bad_input():
    with pytest.raises(InfoganError, match="3 predictions but 2 labels"):
        clustering_report([0, 1, 2], [0, 1])
    with pytest.raises(InfoganError, match="no images"):
        clustering_report([], [])


# ---- label map through the CLI ------------------------------------------------------------

import shutil  # noqa: E402

from infogan.cli import main  # noqa: E402


def test_label_map_round_trip(capsys, tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    assert main(["generate", str(run), "--label", "7", "--out", str(tmp_path / "x.png")]) == 2
    assert "infogan label" in capsys.readouterr().err
    assert main(["label", str(run), "--data", "mnist-5k"]) == 0
    out = capsys.readouterr().out
    lm = __import__("json").loads((run / "labels.json").read_text())
    assert lm["code"] == "c1" and sorted(lm["map"]) == [str(v) for v in range(10)]
    assert sorted(lm["map"].values()) == list(range(10))       # one-to-one for 10 values
    assert "matched accuracy" in out and 0 <= lm["train_accuracy"] <= 1
    value = next(int(v) for v, lab in lm["map"].items() if lab == 7)
    assert main(["generate", str(run), "--label", "7", "--n", "5", "--out", str(tmp_path / "s.npz")]) == 0
    assert (np.load(tmp_path / "s.npz")["c1"] == value).all()
    # encode reports the label each image is classified as
    np.save(tmp_path / "in.npy", np.zeros((4, 28, 28), np.uint8))
    assert main(["encode", str(run), str(tmp_path / "in.npy"), "--out", str(tmp_path / "p.npz")]) == 0
    f = np.load(tmp_path / "p.npz")
    np.testing.assert_array_equal(f["c1_label"], [lm["map"][str(v)] for v in f["c1"]])
    capsys.readouterr()
    assert main(["traverse", str(run), "--code", "c2", "--out", str(tmp_path / "t.png")]) == 0


def test_label_map_bad_input(capsys, tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (tmp_path / "imgs-idx3-ubyte").write_bytes(bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28])
                                               + bytes(2 * 784))
    assert main(["label", str(run), "--data", f"idx:{tmp_path / 'imgs-idx3-ubyte'}"]) == 2
    assert "has no labels" in capsys.readouterr().err
    main(["label", str(run), "--data", "mnist-5k"])
    capsys.readouterr()
    assert main(["generate", str(run), "--label", "12", "--out", str(tmp_path / "x.png")]) == 2
    assert "no value of code c1 maps to label 12" in capsys.readouterr().err


def test_evaluate_cli(capsys, tiny_run, tmp_path):
    assert main(["evaluate", str(tiny_run), "--json", str(tmp_path / "e.json")]) == 0
    out = capsys.readouterr().out
    r = __import__("json").loads((tmp_path / "e.json").read_text())
    c = r["clustering"]["c1"]
    assert r["held_out_images"] == 500 and 0 <= c["accuracy"] <= 1 and -1 <= c["ari"] <= 1
    assert c["accuracy"] >= 0.1 - 1e-9          # Hungarian accuracy is never below chance
    info = r["information"]
    assert set(info) == {"c1", "c2", "c3"} and "r2" in info["c2"] and "r2" not in info["c1"]
    assert info["c1"]["bound_nats"] <= info["c1"]["entropy_nats"] + 1e-6
    # (an estimate on finite samples: an untrained Q can score slightly below 0)
    assert -0.1 <= info["c1"]["bound_fraction"] <= 1 + 1e-6 and info["c2"]["bound_fraction"] is None
    assert "held-out clustering" in out and "information bound" in out

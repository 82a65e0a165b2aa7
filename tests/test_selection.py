"""The quality recipe's distortions, --keep-best, --seeds, plots, and evaluate with the judge."""

from __future__ import annotations

import json

import pytest
import torch
from torch.testing import assert_close

from infogan.augment import random_affine
from infogan.cli import main
from infogan.errors import InfoganError
from infogan.train import TrainConfig, build_trainer, train, train_step

from conftest import TINY


def test_random_affine_at_strength_zero_is_the_identity_and_keeps_the_background():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 1, 28, 28, generator=g) * 2 - 1
    assert_close(random_affine(x, g, 0.0), x, atol=1e-5, rtol=0)
    black = -torch.ones(4, 1, 28, 28)
    assert_close(random_affine(black, g, 1.0), black, atol=1e-6, rtol=0)   # nothing bright comes in


def test_random_affine_distorts_differentiably_and_reproducibly():
    x = torch.zeros(3, 1, 28, 28) - 1
    x[:, :, 6:22, 13:15] = 1                                  # a vertical stroke
    x.requires_grad_(True)
    a = random_affine(x, torch.Generator().manual_seed(1), 1.0)
    b = random_affine(x, torch.Generator().manual_seed(1), 1.0)
    assert torch.equal(a, b) and not torch.allclose(a, x)
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    # the ink survives (up to interpolation and the scale change), it is only moved
    ink = lambda t: ((t + 1) / 2).sum((1, 2, 3))  # noqa: E731
    assert torch.all((ink(a.detach()) / ink(x.detach()) - 1).abs() < 0.35)


def _trainer(**kw):
    kw = {"codes": "c1=cat:10,c2=unif@0.1", **kw}
    cfg = TrainConfig(precision="fp32", progress=False, seed=3, **kw).resolved(4500)
    return build_trainer(cfg, (1, 28, 28))


def _step_result(**kw):
    t = _trainer(**kw)
    x = torch.rand(t.cfg.batch_size, 1, 28, 28, generator=torch.Generator().manual_seed(5)) * 2 - 1
    train_step(t, x)
    return {k: v.detach().clone() for k, v in [*t.G.named_parameters(), *t.D.named_parameters()]}


def test_quality_without_distortion_is_the_paper_step_and_with_it_differs():
    paper = _step_result(preset="paper")
    q0 = _step_result(preset="quality", cat_augment=0.0)
    q1 = _step_result(preset="quality")
    for k in paper:
        assert torch.equal(paper[k], q0[k]), k
    assert any(not torch.allclose(paper[k], q1[k]) for k in paper)
    # the continuous codes' loss never sees the distorted images: a cat-free spec is unaffected
    a = _step_result(preset="quality", codes="c2=unif@0.1")
    b = _step_result(preset="quality", codes="c2=unif@0.1", cat_augment=0.0)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_quality_preset_config():
    c = TrainConfig(preset="quality").resolved(4500)
    assert c.cat_augment == 1.0 and c.batch_size == 128 and c.lr_g == 1e-3
    assert TrainConfig(preset="paper").resolved(4500).cat_augment == 0.0
    with pytest.raises(InfoganError, match="cat-augment"):
        TrainConfig(preset="quality", cat_augment=-1).resolved(4500)


@pytest.mark.parametrize("bad, words", [
    (dict(keep_best="fid"), "unknown --keep-best criterion 'fid'"),
    (dict(keep_best="accuracy", codes="c2=unif"), "add one to --codes"),
])
def test_keep_best_bad_configs(bad, words):
    with pytest.raises(InfoganError, match=words):
        TrainConfig(**bad).resolved(4500)


@pytest.mark.parametrize("criterion", ["unsupervised", "accuracy"])
def test_keep_best_points_at_the_highest_score(tmp_path, criterion):
    run = tmp_path / "r"
    r = train(TrainConfig(steps=30, keep_best=criterion, **{**TINY, "save_every": 10}), run)
    rec = json.loads((run / "best.json").read_text())
    hist = rec["history"]
    assert [h["checkpoint"] for h in hist] == ["step-000010", "step-000020", "step-000030"]
    top = max(hist, key=lambda h: h["score"])
    assert rec["checkpoint"] == top["checkpoint"] == (run / "best").read_text().strip()
    assert r.best["checkpoint"] == top["checkpoint"]
    assert all(0 <= h["score"] <= 1 for h in hist)
    logged = [json.loads(l) for l in (run / "log.jsonl").read_text().splitlines()]
    assert [e["checkpoint"] for e in logged if e.get("event") == "score"] == [h["checkpoint"] for h in hist]
    out = tmp_path / "b.png"
    assert main(["generate", str(run), "--checkpoint", "best", "--n", "4", "--out", str(out)]) == 0


def test_keep_best_does_not_change_training(tmp_path):
    from safetensors.torch import load_file

    a = train(TrainConfig(steps=20, **TINY), tmp_path / "a")
    b = train(TrainConfig(steps=20, keep_best="unsupervised", **TINY), tmp_path / "b")
    for name in ("generator.safetensors", "discriminator.safetensors"):
        ta, tb = load_file(a.checkpoint / name), load_file(b.checkpoint / name)
        assert all(torch.equal(ta[k], tb[k]) for k in ta)


def test_checkpoint_best_without_keep_best_says_how(capsys, tiny_run, tmp_path):
    assert main(["generate", str(tiny_run), "--checkpoint", "best", "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "--keep-best" in err and len(err.strip().splitlines()) == 1


def test_seeds_trains_each_and_chooses_one(capsys, tmp_path):
    root = tmp_path / "multi"
    argv = ["train", str(root), "--seeds", "2", "--seed", "4", "--steps", "10", "--log-every", "5",
            "--no-progress", "--batch-size", "16", "--keep-best", "unsupervised", "--save-every", "5"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    rec = json.loads((root / "seeds.json").read_text())
    assert [s["seed"] for s in rec["seeds"]] == [4, 5] and rec["criterion"] == "unsupervised"
    for s in rec["seeds"]:   # each seed is ranked by its best checkpoint's score
        b = json.loads((root / s["run"] / "best.json").read_text())
        assert s["score"] == b["score"] and s["checkpoint"] == b["checkpoint"]
        assert len(b["history"]) == 2
    assert "best:" in out
    best = max(rec["seeds"], key=lambda s: s["score"])
    assert rec["chosen"] == best["run"] == (root / "chosen").read_text().strip()
    assert "seed 4:" in out and "seed 5:" in out and "<- chosen" in out
    # commands given the folder use the chosen seed
    assert main(["generate", str(root), "--n", "4", "--out", str(tmp_path / "g.png")]) == 0
    assert main(["train", str(root), "--seeds", "0", "--steps", "2"]) == 2
    assert "--seeds must be at least 1" in capsys.readouterr().err


def test_plots_after_training(capsys, tmp_path):
    run = tmp_path / "p"
    assert main(["train", str(run), "--steps", "10", "--log-every", "5", "--no-progress",
                 "--codes", "c1=cat:10,c2=unif@0.1,c3=gauss@0.1", "--batch-size", "16"]) == 0
    for name in ("losses.png", "traverse-c2.png", "traverse-c3.png"):
        assert (run / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "plots:" in capsys.readouterr().out
    assert main(["plot", str(tmp_path / "nothing")]) == 2


def test_evaluate_with_the_judge(capsys, tiny_run, tmp_path):
    assert main(["evaluate", str(tiny_run), "--json", str(tmp_path / "e.json")]) == 0
    out = capsys.readouterr().out
    r = json.loads((tmp_path / "e.json").read_text())
    j = r["judge"]
    assert j["generated_images"] == 5000 and j["images_per_value"] == 500 and j["real_images"] == 500
    assert len(j["purity_per_value"]) == 10 and all(0.1 <= p <= 1 for p in j["purity_per_value"])
    assert 0.1 - 1e-9 <= j["control_accuracy"] <= j["purity"] + 1e-9   # one-to-one <= majority
    assert 1 <= j["classifier_score"] <= 10 and j["frechet"] >= 0 and j["frechet_real_train"] >= 0
    assert set(r["continuous"]) == {"c2", "c3"}
    assert all(-1 <= r["continuous"]["c2"][f"r_{k}"] <= 1 for k in ("slant", "width", "ink"))
    assert "judge purity" in out and "Frechet" in out and "controls" in out
    assert main(["evaluate", str(tiny_run), "--no-judge", "--json", str(tmp_path / "f.json")]) == 0
    assert "judge" not in json.loads((tmp_path / "f.json").read_text())


def test_evaluate_without_q_weights_is_one_line(capsys, tiny_run, tmp_path):
    import shutil

    run = tmp_path / "noq"
    shutil.copytree(tiny_run, run)
    ck = (run / "latest").read_text().strip()
    (run / "checkpoints" / ck / "discriminator.safetensors").unlink()
    assert main(["evaluate", str(run)]) == 2
    err = capsys.readouterr().err
    assert "missing or incomplete" in err and len(err.strip().splitlines()) == 1

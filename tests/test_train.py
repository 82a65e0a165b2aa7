"""The training step: which parameters each loss moves, no labels, determinism, resume, learning."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch.testing import assert_close

from infogan import train as train_mod
from infogan.data import Dataset, load_dataset
from infogan.errors import InfoganError
from infogan.train import TrainConfig, build_trainer, train, train_step

from conftest import TINY

SPEC3 = "c1=cat:10,c2=unif:-1:1@0.1,c3=gauss@0.1"


def _trainer(preset, codes=SPEC3, **kw):
    kw = {"precision": "fp32", **kw}
    cfg = TrainConfig(preset=preset, codes=codes, progress=False, **kw).resolved(4500)
    return build_trainer(cfg, (1, 28, 28))


def _real(t, n=None):
    g = torch.Generator().manual_seed(5)
    n = n or (t.cfg.batch_size // 2 if t.cfg.preset == "tutorial" else t.cfg.batch_size)
    return torch.rand(n, 1, 28, 28, generator=g) * 2 - 1


def _snap(module):
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def _changed(before, module):
    return {k for k, v in module.named_parameters() if not torch.equal(before[k], v)}


@pytest.mark.parametrize("preset", ["tutorial", "paper"])
def test_info_loss_reaches_every_generator_parameter_and_q_head(preset):
    t = _trainer(preset)
    g_in, c = t.noise(16)
    _, q = t.D(t.G(g_in))
    info, _, _ = t.spec.info_losses(q, c)
    info.backward()
    for name, p in [*t.G.named_parameters(), *t.D.q_head.named_parameters()]:
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("preset", ["tutorial", "paper"])
def test_which_parameters_each_step_moves(preset):
    t = _trainer(preset)
    G0, trunk0, dh0, qh0 = _snap(t.G), _snap(t.D.trunk), _snap(t.D.d_head), _snap(t.D.q_head)
    train_step(t, _real(t))
    # Everything is trained by something.
    assert _changed(G0, t.G) == set(G0)
    assert _changed(trunk0, t.D.trunk) == set(trunk0)
    assert _changed(dh0, t.D.d_head) == set(dh0)
    assert _changed(qh0, t.D.q_head) == set(qh0)


def test_tutorial_g_step_leaves_d_untouched_and_d_steps_leave_g_untouched(monkeypatch):
    t = _trainer("tutorial")
    calls = []
    real_step = {id(t.opt_d): t.opt_d.step, id(t.opt_g): t.opt_g.step}

    def spy(opt, name):
        def step(*a, **k):
            before = (_snap(t.G), _snap(t.D.trunk), _snap(t.D.d_head), _snap(t.D.q_head))
            real_step[id(opt)](*a, **k)
            calls.append((name, [bool(_changed(b, m)) for b, m in
                                 zip(before, (t.G, t.D.trunk, t.D.d_head, t.D.q_head))]))
        return step

    monkeypatch.setattr(t.opt_d, "step", spy(t.opt_d, "d"))
    monkeypatch.setattr(t.opt_g, "step", spy(t.opt_g, "g"))
    train_step(t, _real(t))
    #                   G      trunk  D head Q head
    assert calls == [("d", [False, True, True, False]),     # real
                     ("d", [False, True, True, False]),     # fake
                     ("g", [True, False, False, True])]     # G + Q head, D frozen


def test_keras_batchnorm_quirk_flag():
    # --d-bn-in-g-step: the G step moves D's BatchNorm scales/shifts, and nothing else of D's.
    t = _trainer("tutorial", d_bn_in_g_step=True)
    bn = {n for n, m in t.D.trunk.named_modules() if isinstance(m, torch.nn.BatchNorm2d)}
    before = _snap(t.D.trunk)
    real_d_step = t.opt_d.step
    t.opt_d.step = lambda *a, **k: None            # isolate the G step
    train_step(t, _real(t))
    t.opt_d.step = real_d_step
    moved = {k.rsplit(".", 1)[0] for k in _changed(before, t.D.trunk)}
    assert moved == bn and len(bn) == 2


def test_paper_information_loss_trains_the_trunk():
    # In `paper` the information term is part of D's objective too: its gradient reaches the
    # shared trunk. In `tutorial` no step sends the information loss into the trunk.
    t = _trainer("paper")
    g_in, c = t.noise(16)
    _, q = t.D(t.G(g_in).detach())
    info, _, _ = t.spec.info_losses(q, c)
    info.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in t.D.trunk.parameters())
    # and the step's D update includes it: zeroing lambda changes the trunk update.
    moved = [_trunk_update("paper", lam) for lam in ("1", "0")]
    assert any(not torch.allclose(moved[0][k], moved[1][k]) for k in moved[0])


def _trunk_update(preset, lam):
    """How one train_step moves D's trunk, with the information loss weighted by lam."""
    t = _trainer(preset, codes=f"c1=cat:10@{lam}", seed=3)
    before = _snap(t.D.trunk)
    train_step(t, _real(t))
    return {k: v.detach() - before[k] for k, v in t.D.trunk.named_parameters()}


def test_tutorial_trunk_updates_do_not_depend_on_the_information_loss():
    moved = [_trunk_update("tutorial", lam) for lam in ("1", "0")]
    for k in moved[0]:
        assert_close(moved[0][k], moved[1][k], rtol=0, atol=0)


def test_trunk_once_equals_trunk_twice_in_fp32():
    # The G step with D's trunk run once gives the same loss and gradients as the tutorial's
    # composite model, which runs it twice (once for D's output, once for Q's).
    t = _trainer("tutorial", seed=4)
    g_in, c = t.noise(32)
    results = []
    for twice in (False, True):
        t.opt_g.zero_grad(set_to_none=True)
        with train_mod.frozen(t.D.trunk, t.D.d_head):
            d, q = t.D(t.G(g_in), trunk_twice=twice)
            loss = train_mod._bce(d, 1.0) + t.spec.info_losses(q, c)[0]
            loss.backward()
        grads = {k: p.grad.clone() for k, p in [*t.G.named_parameters(), *t.D.q_head.named_parameters()]}
        results.append((loss.detach(), grads))
    assert_close(results[0][0], results[1][0], rtol=1e-6, atol=0)
    for k, g in results[0][1].items():
        # rounding differs (the backward sums two paths), so the tolerance scales with |g|
        assert_close(g, results[1][1][k], rtol=1e-4, atol=1e-4 * g.abs().max().item())
    # and the whole step runs in both modes with the same losses.
    outs = []
    for exact in (False, True):
        t = _trainer("tutorial", seed=4, exact=exact)
        outs.append(train_step(t, _real(t)))
    for k in outs[0]:
        assert_close(outs[0][k], outs[1][k], rtol=1e-5, atol=1e-6)


def test_training_never_reads_a_label(tmp_path, monkeypatch):
    class NoLabels(Dataset):
        def __getattribute__(self, name):
            if name == "labels":
                raise AssertionError("training read the labels")
            return object.__getattribute__(self, name)

    real = load_dataset("mnist-5k", "train")
    guarded = NoLabels.__new__(NoLabels)
    for k in ("name", "split", "images"):
        object.__setattr__(guarded, k, getattr(real, k))
    object.__setattr__(guarded, "labels", None)
    monkeypatch.setattr(train_mod, "load_dataset", lambda *a, **k: guarded)
    train(TrainConfig(steps=3, **TINY), tmp_path / "run")
    assert (tmp_path / "run" / "latest").exists()


def test_training_and_sampling_use_the_same_priors(tiny_run):
    # eriklindernoren #25: codes once sampled from another prior at generation time.
    from infogan import load
    m = load(tiny_run)
    t = _trainer("tutorial")
    assert m.spec == t.spec and type(m.spec.codes[1]) is type(t.spec.codes[1])


def test_same_seed_same_run(tmp_path):
    a = train(TrainConfig(steps=6, **TINY), tmp_path / "a")
    b = train(TrainConfig(steps=6, **TINY), tmp_path / "b")
    from safetensors.torch import load_file
    for name in ("generator.safetensors", "discriminator.safetensors"):
        ta, tb = load_file(a.checkpoint / name), load_file(b.checkpoint / name)
        for k in ta:
            assert torch.equal(ta[k], tb[k]), k


@pytest.mark.parametrize("preset", ["tutorial", "paper"])
def test_resume_equals_straight_run(tmp_path, preset):
    kw = dict(TINY, preset=preset, codes="c1=cat:10,c2=unif@0.1", save_every=4, batch_size=16)
    straight = train(TrainConfig(steps=8, **kw), tmp_path / "straight")
    train(TrainConfig(steps=4, **kw), tmp_path / "split")
    resumed = train(TrainConfig(steps=8, **{**kw}), tmp_path / "split", resume=True)
    assert resumed.step == 8
    from safetensors.torch import load_file
    for name in ("generator.safetensors", "discriminator.safetensors"):
        ta = load_file(straight.checkpoint / name)
        tb = load_file(resumed.checkpoint / name)
        for k in ta:
            # Same seed, same CPU, same thread count: bit-identical.
            assert torch.equal(ta[k], tb[k]), k
    steps = [json.loads(l)["step"] for l in (tmp_path / "split" / "log.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and steps[-1] == 8


def test_resume_refuses_a_different_model(tmp_path):
    train(TrainConfig(steps=2, **TINY), tmp_path / "r")
    with pytest.raises(InfoganError, match="codes differ"):
        train(TrainConfig(steps=4, codes="c1=cat:5", **TINY), tmp_path / "r", resume=True)


def test_existing_run_is_not_overwritten(tmp_path):
    train(TrainConfig(steps=2, **TINY), tmp_path / "r")
    before = (tmp_path / "r" / "log.jsonl").read_text()
    with pytest.raises(InfoganError, match="--resume.*--force"):
        train(TrainConfig(steps=2, **TINY), tmp_path / "r")
    assert (tmp_path / "r" / "log.jsonl").read_text() == before
    train(TrainConfig(steps=2, **TINY), tmp_path / "r", force=True)


@pytest.mark.parametrize("bad, words", [
    (dict(preset="dcgan"), "unknown preset"),
    (dict(codes="c1=cat:1"), "K >= 2"),
    (dict(steps=-3), "positive"),
    (dict(precision="fp8"), "auto, fp32 or bf16"),
    (dict(batch_size=7), "even"),
    (dict(device="tpu"), "unknown device"),
])
def test_bad_configs(bad, words):
    with pytest.raises(InfoganError, match=words):
        TrainConfig(**bad).resolved(4500)


def test_collapse_monitor():
    m = train_mod.CollapseMonitor(patience_steps=300)
    ok = {"d_real": 0.1, "d_fake": 0.1, "g": 6.0}          # high G loss alone is not collapse
    dead = {"d_real": 0.0, "d_fake": 0.001, "g": 7.0}
    assert [m.check(s, ok, []) for s in (100, 200, 300, 400, 500)] == [[]] * 5
    assert [m.check(s, dead, []) for s in (600, 700, 800)] == [[]] * 3
    assert m.check(900, ok, []) == []                      # D recovered: the clock restarts
    assert [m.check(s, dead, []) for s in (1000, 1100, 1200)] == [[]] * 3
    msgs = m.check(1300, dead, [])
    assert len(msgs) == 1 and "collapsed" in msgs[0] and "since step 1000" in msgs[0]
    assert m.check(1400, dead, []) == []                   # said once
    slow = train_mod.CollapseMonitor()
    assert slow.check(1, ok, [0.1] * 6) == []
    assert "step time jumped" in slow.check(2, ok, [0.1] * 6 + [0.5])[0]


def test_categorical_information_bound_rises_during_training(tmp_path):
    r = train(TrainConfig(steps=120, log_every=20, sample_every=1000, save_every=1000,
                          progress=False, seed=0), tmp_path / "learn")
    log = [json.loads(l) for l in (tmp_path / "learn" / "log.jsonl").read_text().splitlines()]
    first, last = log[0]["mi_c1"], log[-1]["mi_c1"]
    # Starts near 0 (Q knows nothing; the first window averages its first 20 steps) and climbs
    # most of the way to H(c) = ln 10 within 120 iterations.
    assert -0.1 < first < 1.5
    assert 1.8 < last <= math.log(10) + 1e-4
    assert r.grid.exists()

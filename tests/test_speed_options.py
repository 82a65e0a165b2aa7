"""The fast paths compute the same function as fp32 eager, and the options survive config.json."""

from __future__ import annotations

import json

import pytest
import torch
from torch.testing import assert_close

from infogan.train import TrainConfig, build_trainer, train, train_step

from conftest import TINY


REF = dict(precision="fp32", adam_impl="for-loop")   # fp32 eager, the reference


def _step(preset, **opts):
    cfg = TrainConfig(preset=preset, progress=False, seed=7, **{**REF, **opts}).resolved(4500)
    t = build_trainer(cfg, (1, 28, 28))
    before = {k: v.detach().clone() for k, v in [*t.raw_G.named_parameters(), *t.raw_D.named_parameters()]}
    g = torch.Generator().manual_seed(11)
    n = cfg.batch_size // 2 if preset == "tutorial" else cfg.batch_size
    x = t.to_device(torch.rand(n, 1, 28, 28, generator=g) * 2 - 1)
    losses = train_step(t, x)
    after = dict([*t.raw_G.named_parameters(), *t.raw_D.named_parameters()])
    update = {k: (after[k].detach() - before[k]) for k in before}
    return losses, update


def _compare(ref, other, loss_rtol, update_tol):
    (l0, u0), (l1, u1) = ref, other
    for k in l0:
        assert_close(l1[k], l0[k], rtol=loss_rtol, atol=loss_rtol), k
    # Adam's first step moves every weight by about lr * sign(grad); compare the update
    # direction: the fraction of weights whose update has the same sign.
    agree = sum(((u0[k] * u1[k]) > 0).sum().item() + ((u0[k] == 0) & (u1[k] == 0)).sum().item()
                for k in u0)
    total = sum(v.numel() for v in u0.values())
    assert agree / total > update_tol


@pytest.mark.parametrize("preset", ["tutorial", "paper"])
def test_channels_last_is_the_same_function(preset):
    _compare(_step(preset), _step(preset, channels_last=True), 1e-4, 0.99)


@pytest.mark.parametrize("preset", ["tutorial", "paper"])
def test_channels_last_in_bf16_is_the_same_function(preset):
    # In bf16 the NHWC path runs other kernels (and SameConv's hand-written backward in NHWC):
    # the same roundings of the same function, accumulated in another order.
    bf16 = _step(preset, precision="bf16", channels_last=False)
    _compare(bf16, _step(preset, precision="bf16", channels_last=True), 1e-2, 0.95)


@pytest.mark.parametrize("impl", ["for-loop", "foreach", "fused"])
def test_adam_implementations_agree(impl):
    # Same arithmetic up to rounding. D's first update feeds the later sub-steps, so rounding
    # can flip the sign of a few near-zero gradients (an Adam update of about +-lr): allow one
    # weight in ten thousand to differ, and no more.
    (l0, u0), (l1, u1) = _step("tutorial"), _step("tutorial", adam_impl=impl)
    for k in l0:
        assert_close(l1[k], l0[k], rtol=1e-5, atol=1e-6)
    off = sum((~torch.isclose(u1[k], u0[k], rtol=1e-3, atol=1e-7)).sum().item() for k in u0)
    assert off / sum(v.numel() for v in u0.values()) < 1e-4


@pytest.mark.parametrize("preset", ["tutorial", "paper"])
def test_bf16_is_close_to_fp32(preset):
    # bf16 keeps 8 bits of mantissa: losses agree to about 2%, and most update signs agree
    # (a weight whose gradient is near zero can flip).
    _compare(_step(preset), _step(preset, precision="bf16"), 0.03, 0.85)


def test_compiled_step_is_the_same_function():
    _compare(_step("tutorial"), _step("tutorial", compile=True), 1e-3, 0.97)


def test_defaults_resolve_to_the_fast_path_and_exact_to_the_tutorial():
    from infogan.train import auto_precision
    import torch
    c = TrainConfig().resolved(4500)
    assert c.precision == auto_precision(torch.device("cpu")) and c.adam_impl == "fused"
    assert c.channels_last == (c.precision == "bf16")
    assert TrainConfig(precision="bf16").resolved(4500).channels_last is True
    assert TrainConfig(precision="bf16", channels_last=False).resolved(4500).channels_last is False
    e = TrainConfig(exact=True).resolved(4500)
    assert (e.precision, e.adam_impl, e.exact, e.channels_last) == ("fp32", "for-loop", True, False)
    from infogan.errors import InfoganError
    with pytest.raises(InfoganError, match="--exact"):
        TrainConfig(exact=True, precision="bf16").resolved(4500)


def test_speed_options_round_trip_through_config_and_resume(tmp_path):
    opts = dict(precision="bf16", channels_last=True, adam_impl="foreach", compile=False)
    train(TrainConfig(steps=2, **opts, **TINY), tmp_path / "r")
    saved = json.loads((tmp_path / "r" / "config.json").read_text())["config"]
    assert {k: saved[k] for k in opts} == opts
    # Resume keeps them; a speed option may be changed on resume (it does not change the model).
    r = train({"steps": 4}, tmp_path / "r", resume=True)
    saved = json.loads((tmp_path / "r" / "config.json").read_text())["config"]
    assert {k: saved[k] for k in opts} == opts and r.step == 4
    train(TrainConfig(steps=5, precision="fp32", **opts_but_precision(opts), **TINY), tmp_path / "r",
          resume=True)
    assert json.loads((tmp_path / "r" / "config.json").read_text())["config"]["precision"] == "fp32"


def opts_but_precision(opts):
    return {k: v for k, v in opts.items() if k != "precision"}


def test_keep_freed_memory_is_applied_and_can_be_turned_off(monkeypatch):
    import platform
    from infogan.train import keep_freed_memory
    if platform.libc_ver()[0] == "glibc":
        assert keep_freed_memory() is True
    monkeypatch.setenv("INFOGAN_KEEP_FREED_MEMORY", "0")
    assert keep_freed_memory() is False


# ---- --cuda-graph: what can be checked without a GPU -----------------------------------------
# The capture itself needs CUDA; bench/gpu.sh checks it against the eager iteration (losses,
# parameters and the generator's state) whenever a GPU is at hand.


def test_cuda_graph_needs_a_gpu_and_excludes_compile():
    from infogan.errors import InfoganError
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(InfoganError, match="needs a CUDA GPU"):
        TrainConfig(cuda_graph=True).resolved(4500)
    with pytest.raises(InfoganError, match="cannot be combined"):
        TrainConfig(cuda_graph=True, compile=True).resolved(4500)
    from infogan.cudagraph import GraphedIteration
    with pytest.raises(InfoganError, match="needs a CUDA GPU"):
        GraphedIteration(lambda: {}, torch.Generator())


def test_cuda_graph_settings_leave_the_step_unchanged():
    # Besides capturing, --cuda-graph makes Adam capturable and turns autocast's weight-cast
    # cache off. Built here on the CPU (past the config check), one bf16 step must come out
    # bit for bit as the normal one.
    import dataclasses
    cfg = TrainConfig(progress=False, seed=3, precision="bf16").resolved(4500)
    outs = []
    for graphed in (False, True):
        t = build_trainer(dataclasses.replace(cfg, cuda_graph=graphed), (1, 28, 28))
        assert all(g["capturable"] is graphed for o in (t.opt_d, t.opt_g) for g in o.param_groups)
        with t.autocast():
            assert torch.is_autocast_cache_enabled() is not graphed
        x = t.to_device(torch.rand(32, 1, 28, 28, generator=torch.Generator().manual_seed(4)) * 2 - 1)
        for _ in range(2):
            losses = train_step(t, x)
        outs.append((losses, [p.detach().clone() for p in t.raw_G.parameters()]))
    (l0, p0), (l1, p1) = outs
    assert all(torch.equal(l0[k], l1[k]) for k in l0)
    assert all(torch.equal(a, b) for a, b in zip(p0, p1))


def test_the_loop_runs_exactly_iteration(tmp_path):
    # --cuda-graph captures `iteration`; the eager loop must run the very same thing.
    from infogan.data import Dataset, load_dataset
    from infogan.train import iteration
    cfg = TrainConfig(steps=3, **{**TINY, "log_every": 1})
    train(cfg, tmp_path / "r")
    logged = [json.loads(s) for s in (tmp_path / "r" / "log.jsonl").read_text().splitlines()]
    logged = [r for r in logged if "d_real" in r]
    data = load_dataset("mnist-5k", "train")
    rc = cfg.resolved(len(data))
    t = build_trainer(rc, data.image_shape)
    ds = Dataset(data.name, data.split, data.images, labels=None)
    for rec in logged:
        losses = iteration(t, ds, rc.batch_size // 2)
        for k in ("d_real", "d_fake", "g", "q"):
            assert losses[k].item() == pytest.approx(rec[k], rel=1e-6, abs=1e-7), (rec["step"], k)

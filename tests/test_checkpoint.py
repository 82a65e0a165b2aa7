"""Run folders: save/load round trips, atomic writes, bad files, checkpoints of other models."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from torch.testing import assert_close

import infogan
from infogan import checkpoint as ckpt
from infogan.errors import InfoganError
from infogan.train import TrainConfig, train

from conftest import TINY


def test_run_folder_layout(tiny_run):
    assert (tiny_run / "config.json").exists() and (tiny_run / "log.jsonl").exists()
    assert (tiny_run / "latest").read_text().strip() == "step-000020"
    assert sorted(p.name for p in (tiny_run / "checkpoints").iterdir()) == ["step-000010", "step-000020"]
    assert sorted(p.name for p in (tiny_run / "samples").iterdir()) == ["step-000010.png", "step-000020.png"]
    # Only the newest checkpoint keeps the resumable state.
    assert (tiny_run / "checkpoints" / "step-000020" / "state.pt").exists()
    assert not (tiny_run / "checkpoints" / "step-000010" / "state.pt").exists()
    meta = json.loads((tiny_run / "config.json").read_text())
    assert meta["format_version"] == 1 and meta["config"]["steps"] == 20
    assert meta["model"]["image_shape"] == [1, 28, 28]


def test_save_load_gives_identical_outputs(tiny_run, tmp_path):
    a = infogan.load(tiny_run)
    b = infogan.load(tiny_run)
    assert_close(a.generate(8, seed=3), b.generate(8, seed=3), rtol=0, atol=0)
    # and the loaded weights are exactly the trainer's: save again from the loaded model.
    fp = json.loads((tiny_run / "config.json").read_text())["model"]["fingerprint"]
    path = ckpt.save_checkpoint(tmp_path, 20, a.generator, a.discriminator, {"step": 20}, fp)
    from safetensors.torch import load_file
    for name in (ckpt.G_FILE, ckpt.D_FILE):
        mine = load_file(path / name)
        theirs = load_file(tiny_run / "checkpoints" / "step-000020" / name)
        assert mine.keys() == theirs.keys()
        assert all(torch.equal(mine[k], theirs[k]) for k in mine)


def test_older_checkpoints_load(tiny_run):
    m = infogan.load(tiny_run, checkpoint="step-000010")
    assert m.checkpoint.name == "step-000010"
    assert not torch.equal(m.generate(4, seed=0), infogan.load(tiny_run).generate(4, seed=0))
    assert infogan.load(tiny_run, checkpoint="10").checkpoint.name == "step-000010"


def test_state_is_loaded_without_pickle(tiny_run, tmp_path):
    state = ckpt.load_state(tiny_run / "checkpoints" / "step-000020")
    assert state["step"] == 20 and "opt_d" in state and "gen" in state
    # A pickle that runs code is refused by weights_only loading.
    bad = tmp_path / "ck"
    shutil.copytree(tiny_run / "checkpoints" / "step-000020", bad)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, bad / ckpt.STATE_FILE)
    with pytest.raises(InfoganError, match="corrupt"):
        ckpt.load_state(bad)


def test_interrupted_save_keeps_the_previous_checkpoint(tiny_run, tmp_path, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    m = infogan.load(run)

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt.torch, "save", boom)
    fp = json.loads((run / "config.json").read_text())["model"]["fingerprint"]
    with pytest.raises(OSError):
        ckpt.save_checkpoint(run, 30, m.generator, m.discriminator, {"step": 30}, fp)
    assert (run / "latest").read_text().strip() == "step-000020"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-000010", "step-000020"]
    assert (run / "checkpoints" / "step-000020" / "state.pt").exists()
    infogan.load(run)


def test_corrupt_weights_file(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    f = run / "checkpoints" / "step-000020" / ckpt.G_FILE
    f.write_bytes(f.read_bytes()[:1000])
    with pytest.raises(InfoganError, match="not a readable safetensors"):
        infogan.load(run)


def test_checkpoint_from_another_model(tiny_run, tmp_path):
    other = tmp_path / "other"
    train(TrainConfig(steps=2, codes="c1=cat:5", **TINY), other)
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    dst = run / "checkpoints" / "step-000020"
    for name in (ckpt.G_FILE, ckpt.D_FILE):
        shutil.copy(other / "checkpoints" / "step-000002" / name, dst / name)
    with pytest.raises(InfoganError, match="another model"):
        infogan.load(run)


def test_missing_and_bad_run_folders(tiny_run, tmp_path):
    with pytest.raises(InfoganError, match="does not exist"):
        infogan.load(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InfoganError, match="config.json is missing"):
        infogan.load(tmp_path / "empty")
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    with pytest.raises(InfoganError, match="available: step-000010, step-000020"):
        infogan.load(run, checkpoint="step-000999")
    with pytest.raises(InfoganError, match="no 'best'"):
        infogan.load(run, checkpoint="best")
    (run / "latest").unlink()
    with pytest.raises(InfoganError, match="no checkpoint yet"):
        infogan.load(run)
    (run / "config.json").write_text("{not json")
    with pytest.raises(InfoganError, match="corrupt"):
        infogan.load(run)
    (run / "config.json").write_text(json.dumps({"format_version": 1, "config": {"wings": 2},
                                                 "model": {"image_shape": [1, 28, 28]}}))
    with pytest.raises(InfoganError, match="unknown keys"):
        infogan.load(run)


def test_snapshot_is_a_copy_so_training_can_go_on_while_it_is_written():
    g, d = torch.nn.Linear(3, 2), torch.nn.Linear(2, 1)
    opt = torch.optim.Adam(g.parameters())
    g(torch.ones(1, 3)).sum().backward()
    opt.step()
    gs, ds, state = ckpt.snapshot(g, d, {"opt": opt.state_dict(), "step": 1})
    before = {k: v.clone() for k, v in gs.items()}
    exp_avg = state["opt"]["state"][0]["exp_avg"].clone()
    with torch.no_grad():
        g.weight.add_(1.0)
    opt.step()
    assert all(torch.equal(before[k], gs[k]) for k in gs)
    assert torch.equal(state["opt"]["state"][0]["exp_avg"], exp_avg)


def test_background_writer_keeps_order_and_reports_errors():
    w = ckpt.BackgroundWriter()
    seen = []
    for i in range(5):
        w.submit(seen.append, i)
    w.wait()
    assert seen == [0, 1, 2, 3, 4]

    def fail():
        raise OSError("disk full")

    w.submit(fail)
    with pytest.raises(OSError, match="disk full"):
        w.close()


def test_training_waits_for_its_writes(tmp_path):
    r = train(TrainConfig(steps=12, **{**TINY, "save_every": 4, "sample_every": 4}), tmp_path / "w")
    names = sorted(p.name for p in (tmp_path / "w" / "checkpoints").iterdir())
    assert names == ["step-000004", "step-000008", "step-000012"]
    assert r.grid.exists() and r.checkpoint.name == "step-000012"
    assert sorted(p.name for p in (tmp_path / "w" / "samples").iterdir()) == [
        "step-000004.png", "step-000008.png", "step-000012.png"]

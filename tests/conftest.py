"""Shared fixtures: a tiny trained run that the CLI and API tests read (trained once per session)."""

from __future__ import annotations

import pytest
import torch

from infogan.train import TrainConfig, train

torch.set_num_threads(2)

# The smallest configuration that exercises every code type and both heads.
TINY = dict(data="mnist-5k", log_every=5, sample_every=10, save_every=10, progress=False, seed=0)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A 20-step tutorial run with a categorical, a uniform and a Gaussian code."""
    run = tmp_path_factory.mktemp("runs") / "tiny"
    cfg = TrainConfig(preset="tutorial", codes="c1=cat:10,c2=unif:-1:1@0.1,c3=gauss@0.1",
                      steps=20, **TINY)
    train(cfg, run)
    return run


@pytest.fixture(scope="session", autouse=True)
def quick_judge(tmp_path_factory):
    """Tests use their own cache folder and a 60-step judge (the real one takes 2,000 steps;
    its accuracy is a benchmark figure, not a test)."""
    from infogan import judge

    mp = pytest.MonkeyPatch()
    mp.setenv("INFOGAN_CACHE", str(tmp_path_factory.mktemp("cache")))
    mp.setattr(judge, "JUDGE_STEPS", 60)
    yield
    mp.undo()

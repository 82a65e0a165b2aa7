"""Where one training iteration's time goes: torch.profiler's operator table for a variant.

    python bench/profile_step.py --preset tutorial --precision bf16 [--channels-last] [--iters 20]
    python bench/profile_step.py --ablate [--write]

`--ablate` is a measurement only: it times the default step against the same step with the
networks' BatchNorm layers, and then also their activations, replaced by identities
(interleaved, median of 7 rounds of 10 iterations). The differences are what those layers cost,
memory traffic included, which the operator table splits over several rows.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from torch import nn
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import make, run_iters  # noqa: E402
from infogan.data import load_dataset  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--preset", default="tutorial")
    p.add_argument("--precision", default="bf16")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--adam-impl", default="auto")
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--rows", type=int, default=30)
    p.add_argument("--write", action="store_true", help="put the table in bench/RESULTS.md")
    p.add_argument("--ablate", action="store_true", help="time the step without BatchNorm / activations")
    a = p.parse_args(argv)
    data = load_dataset("mnist-5k", "train")
    if a.ablate:
        return ablate(a, data, argv)
    t, n_real = make(a.preset, dict(precision=a.precision, channels_last=a.channels_last,
                                    adam_impl=a.adam_impl), data)
    run_iters(t, n_real, data.images, 5)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        per = run_iters(t, n_real, data.images, a.iters)
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=a.rows)
    print(f"{per:.4f} s/iter under the profiler")
    print(table)
    if a.write:
        from throughput import write_section
        cmd = "python bench/profile_step.py " + " ".join(argv if argv is not None else sys.argv[1:])
        name = "profile" if a.preset == "tutorial" else f"profile-{a.preset}"
        write_section(name, f"Command: `{cmd.strip()}`  \n{per:.4f} s/iter under the profiler "
                      f"({a.iters} iterations; times are totals over them).\n\n```\n{table}\n```")
    return 0


def _strip(t, kinds) -> None:
    for model in (t.raw_G, t.raw_D):
        for m in list(model.modules()):
            for name, child in list(m.named_children()):
                if isinstance(child, kinds):
                    setattr(m, name, nn.Identity())


def ablate(a, data, argv) -> int:
    bn = (nn.BatchNorm1d, nn.BatchNorm2d)
    arms = {"the default step": (), "without BatchNorm": bn,
            "without BatchNorm and activations": bn + (nn.LeakyReLU, nn.ReLU)}
    trainers = {}
    for name, kinds in arms.items():
        t, n_real = make(a.preset, {}, data)
        _strip(t, kinds)
        run_iters(t, n_real, data.images, 4)
        trainers[name] = (t, n_real)
    times = {name: [] for name in arms}
    for _ in range(7):
        for name, (t, n_real) in trainers.items():
            times[name].append(run_iters(t, n_real, data.images, 10))
    full = statistics.median(times["the default step"])
    lines = [f"Command: `python bench/profile_step.py {' '.join(argv if argv is not None else sys.argv[1:])}`  ",
             f"{a.preset} preset, default options; median of 7 interleaved rounds of 10 iterations.\n",
             "| step | s/iter | saved per iteration |", "| --- | --- | --- |"]
    for name in arms:
        med = statistics.median(times[name])
        lines.append(f"| {name} | {med:.4f} | {1000 * (full - med):.1f} ms |")
    text = "\n".join(lines)
    print(text)
    if a.write:
        from throughput import write_section
        write_section("ablation", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

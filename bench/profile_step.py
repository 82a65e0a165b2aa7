"""Where one training iteration's time goes: torch.profiler's operator table for a variant.

    python bench/profile_step.py --preset tutorial --precision bf16 [--channels-last] [--iters 20]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

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
    a = p.parse_args(argv)
    data = load_dataset("mnist-5k", "train")
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
        write_section("profile", f"Command: `{cmd.strip()}`  \n{per:.4f} s/iter under the profiler "
                      f"({a.iters} iterations; times are totals over them).\n\n```\n{table}\n```")
    return 0


if __name__ == "__main__":
    sys.exit(main())

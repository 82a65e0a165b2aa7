"""What keeping freed memory (train.keep_freed_memory, glibc mallopt) buys a training step.

    python bench/allocator.py [--preset tutorial] [--rounds 5] [--write]

The setting is process-wide, so the two arms run as separate child processes, alternated
round by round (off, on, off, on, ...); each child builds the default trainer, warms up, and
reports the median s/iter of 3 x 10 iterations. The table gives the median over rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHILD = """
import json, statistics, sys
sys.path.insert(0, {src!r}); sys.path.insert(0, {bench!r})
from throughput import make, run_iters
from infogan.data import load_dataset
data = load_dataset("mnist-5k", "train")
t, n = make({preset!r}, {{}}, data)
run_iters(t, n, data.images, 4)
print(json.dumps(statistics.median(run_iters(t, n, data.images, 10) for _ in range(3))))
"""


def child(preset: str, keep: bool) -> float:
    code = CHILD.format(src=str(HERE.parent / "src"), bench=str(HERE), preset=preset)
    env = dict(os.environ, INFOGAN_KEEP_FREED_MEMORY="1" if keep else "0")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--preset", default="tutorial")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--write", action="store_true")
    a = p.parse_args(argv)
    times = {False: [], True: []}
    for r in range(a.rounds):
        for keep in (False, True):
            times[keep].append(child(a.preset, keep))
        print(f"round {r + 1}: off {times[False][-1]:.4f}  on {times[True][-1]:.4f}",
              file=sys.stderr, flush=True)
    off, on = statistics.median(times[False]), statistics.median(times[True])
    wins = sum(b < o for o, b in zip(times[False], times[True]))
    text = "\n".join([
        f"Command: `python bench/allocator.py --preset {a.preset} --rounds {a.rounds}`  ",
        f"{a.preset} preset, the default options; child processes alternated, median over "
        f"{a.rounds} rounds of the per-process median s/iter.\n",
        "| glibc malloc | s/iter | per-round [min, max] |",
        "| --- | --- | --- |",
        f"| defaults (INFOGAN_KEEP_FREED_MEMORY=0) | {off:.4f} | [{min(times[False]):.4f}, "
        f"{max(times[False]):.4f}] |",
        f"| keep freed memory (our default) | {on:.4f} | [{min(times[True]):.4f}, "
        f"{max(times[True]):.4f}] |",
        "",
        f"Speed-up {off / on:.2f}x; faster in {wins} of {a.rounds} rounds."])
    print(text)
    if a.write:
        sys.path.insert(0, str(HERE))
        from throughput import write_section
        write_section(f"allocator-{a.preset}", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

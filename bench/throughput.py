"""Training throughput: the project's own train step on real data, per preset and option set.

    python bench/throughput.py                       # all presets, all variants (~10 min)
    python bench/throughput.py --preset tutorial --repeats 7 --iters 20 --write

Variants run interleaved (round r times variant A, then B, ...), so a burst of load from
elsewhere hits all of them alike; each figure is the median over rounds. Ratios are against
fp32 eager measured in the same run. The machine's matmul peak (fp32 and bf16) is measured in
the same run too, and other processes' CPU use is sampled from /proc/stat during every round:
a round where others used more than a tenth of a core is flagged, and so is the whole run when
more than a quarter of its rounds were.

FLOP count (documented in `step_flops`): per conv/linear layer 2 * MACs forward; backward
costs one more forward for the weight gradient of a trained layer and one more for the input
gradient when something upstream needs it. `FlopCounterMode` over one real step checks it.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from infogan.data import load_dataset, to_unit_range  # noqa: E402
from infogan.model import InfoGAN  # noqa: E402
from infogan.train import TrainConfig, build_trainer, train_step  # noqa: E402

F32 = dict(precision="fp32", adam_impl="for-loop")
VARIANTS = {
    "fp32 eager": F32,
    "--exact (fp32, trunk twice)": dict(exact=True),
    "fp32 channels-last": dict(F32, channels_last=True),
    "fp32 foreach Adam": dict(F32, adam_impl="foreach"),
    "fp32 fused Adam": dict(F32, adam_impl="fused"),
    "bf16 autocast": dict(F32, precision="bf16", channels_last=False),
    "bf16 + channels-last": dict(F32, precision="bf16", channels_last=True),
    "bf16 + fused Adam": dict(precision="bf16", adam_impl="fused", channels_last=False),
    "bf16 + fused Adam + channels-last (the default)": dict(precision="bf16", adam_impl="fused",
                                                            channels_last=True),
    "fp32 compile": dict(F32, compile=True),
    "default + compile": dict(precision="bf16", adam_impl="fused", channels_last=True, compile=True),
}


# ---- machine load --------------------------------------------------------------------------


def _cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine from /proc/stat."""
    with open("/proc/stat") as f:
        vals = [int(v) for v in f.readline().split()[1:]]
    idle = vals[3] + vals[4]
    return sum(vals) - idle, sum(vals)


class LoadMeter:
    """Other processes' CPU use while a block runs, in cores (ours subtracted)."""

    def __enter__(self):
        self.t0, self.b0 = time.perf_counter(), _cpu_jiffies()[0]
        self.own0 = sum(os.times()[:2])
        return self

    def __exit__(self, *a):
        hz = os.sysconf("SC_CLK_TCK")
        wall = time.perf_counter() - self.t0
        busy = (_cpu_jiffies()[0] - self.b0) / hz
        own = sum(os.times()[:2]) - self.own0
        self.others = max(0.0, busy - own) / max(wall, 1e-9)


def matmul_peak(dtype: torch.dtype, n: int = 2048, reps: int = 10) -> float:
    """GFLOP/s of an n x n matmul in `dtype` (median of reps)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times) / 1e9


# ---- FLOP count -----------------------------------------------------------------------------


def _layer_flops(module: nn.Module, x: torch.Tensor) -> list[tuple[nn.Module, int]]:
    """Forward FLOPs (2 x MACs) of every conv/linear layer of `module` on input x."""
    out = []

    def hook(m, inp, res):
        if isinstance(m, nn.Linear):
            macs = res.numel() * m.in_features
        elif isinstance(m, nn.Conv2d):
            macs = res.numel() * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, nn.ConvTranspose2d):
            macs = inp[0].numel() * m.out_channels * m.kernel_size[0] * m.kernel_size[1]
        else:
            return
        out.append((m, 2 * macs))

    handles = [m.register_forward_hook(hook) for m in module.modules()]
    with torch.no_grad():
        module(x)
    for h in handles:
        h.remove()
    return out


def _pass(layers, weight_grads: bool, input_grad_first: bool) -> int:
    """FLOPs of forward + backward through a chain of layers.

    forward F per layer; backward adds F for the weight gradient (if trained) and F for the
    input gradient (for every layer but the first, unless the input itself needs a gradient).
    """
    total = 0
    for i, (_, f) in enumerate(layers):
        total += f + (f if weight_grads else 0) + (f if (i > 0 or input_grad_first) else 0)
    return total


def step_flops(t) -> int:
    """Analytic FLOPs of one `train_step` of trainer t (see the module docstring)."""
    cfg = t.cfg
    G, D = t.raw_G, t.raw_D
    x = torch.zeros(2, *G(torch.zeros(2, G.in_dim)).shape[1:])
    per = lambda layers: [(m, f // 2) for m, f in layers]  # per image  # noqa: E731
    g = per(_layer_flops(G, torch.zeros(2, G.in_dim)))
    trunk = per(_layer_flops(D.trunk, x))
    feat = D.trunk(x)
    dh = per(_layer_flops(D.d_head, feat))
    qh = per(_layer_flops(D.q_head, feat))
    fwd = lambda layers: sum(f for _, f in layers)  # noqa: E731
    b = cfg.batch_size
    if cfg.preset == "tutorial":
        h = b // 2
        d_step = _pass(trunk + dh, True, False)                     # Q head skipped
        total = h * d_step                                          # (1) real
        total += h * (fwd(g) + d_step)                              # (2) fake, G in inference
        trunks = 2 if cfg.exact else 1
        total += b * (_pass(g, True, False)                         # (3) G fwd + bwd
                      + trunks * _pass(trunk, False, True)          #     trunk: input grads only
                      + _pass(dh, False, True) + _pass(qh, True, True))
        return total
    # paper: G fwd; D+Q on real and fake (weights trained); G step through D (input grads).
    total = b * fwd(g)
    total += b * _pass(trunk + dh, True, False)
    total += b * (_pass(trunk, True, False) + _pass(dh, True, True) + _pass(qh, True, True))
    total += b * (_pass(trunk, False, True) + _pass(dh, False, True) + _pass(qh, False, True))
    total += b * (_pass(g, True, False) - fwd(g))                   # G backward only
    if cfg.cat_augment and t.spec.categorical:
        # quality: D + Q once more on distorted fakes in each update (the D head's output is
        # computed but unused, so it has no backward); the distortion itself is not counted.
        total += b * (fwd(dh) + _pass(trunk, True, False) + _pass(qh, True, True))
        total += b * (fwd(dh) + _pass(trunk, False, True) + _pass(qh, False, True))
    return total


def counted_flops(t, x_real) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        train_step(t, x_real)
    return fc.get_total_flops()


# ---- timing ---------------------------------------------------------------------------------


def make(preset: str, opts: dict, data):
    cfg = TrainConfig(preset=preset, progress=False, seed=0, **opts).resolved(len(data))
    t = build_trainer(cfg, data.image_shape)
    return t, cfg.real_batch


def run_iters(t, n_real, images, iters: int) -> float:
    start = time.perf_counter()
    for _ in range(iters):
        idx = torch.randint(0, len(images), (n_real,), generator=t.gen)
        x = t.to_device(to_unit_range(images[idx]))
        losses = train_step(t, x)
    torch.stack(list(losses.values())).sum().item()  # one sync at the end, as the loop does
    return (time.perf_counter() - start) / iters


def bench_preset(preset, variants, data, repeats, iters, warmup, log):
    images = data.images
    rows = {}
    trainers = {}
    for name in variants:
        opts = VARIANTS[name]
        t, n_real = make(preset, opts, data)
        t0 = time.perf_counter()
        run_iters(t, n_real, images, warmup)   # the first steps compile, when compiling
        first = time.perf_counter() - t0
        trainers[name] = (t, n_real)
        rows[name] = {"times": [], "warm_s": first, "loads": []}
        log(f"  {preset:8s} {name:30s} warm-up {first:6.1f} s")
    for r in range(repeats):
        for name in variants:
            t, n_real = trainers[name]
            with LoadMeter() as m:
                dt = run_iters(t, n_real, images, iters)
            rows[name]["times"].append(dt)
            rows[name]["loads"].append(m.others)
        log(f"  round {r + 1}/{repeats} done")
    t_ref, n_ref = trainers[variants[0]]
    x = t_ref.to_device(to_unit_range(images[:n_ref]))
    analytic = step_flops(t_ref)
    fresh, _ = make(preset, VARIANTS[variants[0]], data)
    counted = counted_flops(fresh, x)
    for name in variants:
        tt = trainers[name][0]
        rows[name]["flops"] = step_flops(tt)
        rows[name]["precision"] = tt.cfg.precision
    return rows, analytic, counted


def bench_inference(data, log):
    """Generation images/s at batch 1000 and encode images/s, fp32 and bf16, tutorial nets."""
    t, _ = make("tutorial", F32, data)
    out = {}
    for prec in ("fp32", "bf16"):
        cfg = dataclasses.replace(t.cfg, precision=prec)
        m = InfoGAN(cfg, data.image_shape, t.raw_G, t.raw_D)
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if prec == "bf16" else torch.no_grad()
        with ctx:
            m.generate(1000, seed=0)
            times = []
            for _ in range(3):
                s = time.perf_counter()
                m.generate(1000, seed=0)
                times.append(time.perf_counter() - s)
            gen = 1000 / statistics.median(times)
            x = data.images[:2000]
            m.encode(x)
            times = []
            for _ in range(3):
                s = time.perf_counter()
                m.encode(x)
                times.append(time.perf_counter() - s)
            enc = 2000 / statistics.median(times)
        out[prec] = (gen, enc)
        log(f"  inference {prec}: generate {gen:.0f} img/s, encode {enc:.0f} img/s")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", choices=["tutorial", "paper", "quality", "all"], default="all")
    p.add_argument("--variants", default="all", help="comma-separated names, or 'all'")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--iters", type=int, default=15)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--write", action="store_true", help="replace the section in bench/RESULTS.md")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    variants = list(VARIANTS) if a.variants == "all" else [v.strip() for v in a.variants.split(",")]
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    data = load_dataset("mnist-5k", "train")
    with LoadMeter() as m0:
        peak32 = matmul_peak(torch.float32)
        peak16 = matmul_peak(torch.bfloat16)
    log(f"matmul peak: fp32 {peak32:.0f} GFLOP/s, bf16 {peak16:.0f} GFLOP/s (others {m0.others:.2f} cores)")
    presets = ["tutorial", "paper", "quality"] if a.preset == "all" else [a.preset]
    lines = []
    cmd = "python bench/throughput.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines.append(f"Command: `{cmd.strip()}`  ")
    lines.append(f"Machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
                 f"torch {torch.__version__}; matmul peak in this run: fp32 {peak32:.0f} GFLOP/s, "
                 f"bf16 {peak16:.0f} GFLOP/s (2048^3).  ")
    lines.append(f"Medians over {a.repeats} interleaved rounds of {a.iters} iterations after "
                 f"{a.warmup} warm-up iterations.\n")
    noisy_rounds = total_rounds = 0
    for preset in presets:
        names = [v for v in variants if not (preset != "tutorial" and VARIANTS[v].get("exact"))]
        rows, analytic, counted = bench_preset(preset, names, data, a.repeats, a.iters, a.warmup, log)
        ref = statistics.median(rows[names[0]]["times"])
        lines.append(f"### {preset}\n")
        lines.append(f"FLOPs per iteration: {analytic / 1e9:.1f} G analytic (trunk once), "
                     f"{counted / 1e9:.1f} G by FlopCounterMode ({100 * (counted / analytic - 1):+.1f}%).\n")
        lines.append("| variant | s/iter | it/s | vs fp32 eager | GFLOP/s | % of peak | warm-up s | others' CPU (cores, max) |")
        lines.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for name in names:
            r = rows[name]
            med = statistics.median(r["times"])
            gflops = r["flops"] / med / 1e9
            peak = peak16 if r["precision"] == "bf16" else peak32
            load = max(r["loads"])
            noisy_rounds += sum(x > 0.1 for x in r["loads"])
            total_rounds += len(r["loads"])
            lines.append(f"| {name} | {med:.4f} | {1 / med:.1f} | {ref / med:.2f}x | {gflops:.0f} | "
                         f"{100 * gflops / peak:.0f}% | {r['warm_s']:.1f} | {load:.2f}{' (noisy)' if load > 0.1 else ''} |")
        lines.append("")
    inf = bench_inference(data, log)
    lines.append("### inference (tutorial nets)\n")
    lines.append("| precision | generate img/s (batch 1000) | encode img/s (batch 1000) |")
    lines.append("| --- | --- | --- |")
    for prec, (g, e) in inf.items():
        lines.append(f"| {prec} | {g:.0f} | {e:.0f} |")
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines.append(f"\nPeak resident memory of the benchmark process: {peak_rss:.0f} MiB.")
    noisy = total_rounds and noisy_rounds / total_rounds > 0.25
    lines.append(f"Rounds with other processes above 0.1 core: {noisy_rounds}/{total_rounds}"
                 f"{' - NOISY RUN, do not trust the ratios' if noisy else ''}.")
    text = "\n".join(lines)
    print(text)
    if a.write:
        write_section("throughput", text)
    return 0


def write_section(name: str, text: str) -> None:
    path = Path(__file__).resolve().parent / "RESULTS.md"
    old = path.read_text() if path.exists() else "# Benchmark results\n"
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n## {name}\n\n{text}\n{end}"
    if start in old:
        pre, rest = old.split(start, 1)
        post = rest.split(end, 1)[1]
        new = pre + block + post
    else:
        new = old.rstrip() + "\n\n" + block + "\n"
    path.write_text(new)


if __name__ == "__main__":
    sys.exit(main())

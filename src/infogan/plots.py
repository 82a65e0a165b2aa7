"""Figures in the run folder (matplotlib, PNG), written after training and by `infogan plot`:

    RUN/plots/losses.png        D (real, fake), G and Q losses, and each code's information
                                bound, against the iteration (from log.jsonl)
    RUN/plots/traverse-NAME.png one figure per continuous code: rows are values of the first
                                categorical code (or random draws without one), columns sweep
                                the code over its range; the title names the image property the
                                code controls (evaluate.continuous_report) and its correlation
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .errors import InfoganError


def _matplotlib():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def read_log(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / "log.jsonl"
    if not path.exists():
        raise InfoganError(f"{path} is missing; plots need a trained run")
    rows = []
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a crash: skip it, keep the rest
        if "event" not in rec and "d_real" in rec:
            rows.append(rec)
    return rows


def plot_losses(run_dir: Path, entropies: dict[str, float] | None = None) -> Path:
    plt = _matplotlib()
    rows = read_log(run_dir)
    if not rows:
        raise InfoganError(f"{run_dir}/log.jsonl has no logged steps yet")
    steps = np.array([r["step"] for r in rows])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for key, label in (("d_real", "D loss, real"), ("d_fake", "D loss, fake"), ("g", "G loss"),
                       ("q", "information loss (weighted)")):
        ax1.plot(steps, [r[key] for r in rows], label=label, lw=1)
    ax1.set_xlabel("iteration")
    ax1.set_ylabel("loss")
    ax1.legend(fontsize=8)
    ax1.grid(alpha=0.3)
    for key in sorted(k for k in rows[-1] if k.startswith("mi_")):
        name = key[3:]
        line, = ax2.plot(steps, [r.get(key, np.nan) for r in rows], label=f"I({name})", lw=1)
        if entropies and name in entropies and entropies[name] > 0:
            ax2.axhline(entropies[name], color=line.get_color(), ls="--", lw=0.8)
    ax2.set_xlabel("iteration")
    ax2.set_ylabel("information lower bound (nats); dashed: H(c) of cat codes")
    ax2.legend(fontsize=8)
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    out = Path(run_dir) / "plots" / "losses.png"
    out.parent.mkdir(exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def plot_traversals(model, report: dict | None = None, n_points: int = 9, seed: int = 0) -> list[Path]:
    """One PNG per continuous code; `report` is evaluate.continuous_report(model) (computed
    here when not given)."""
    from .evaluate import _traversal_range, continuous_report

    plt = _matplotlib()
    conts = [c for c in model.spec if c.kind != "cat"]
    if not conts:
        return []
    report = report if report is not None else continuous_report(model)
    cats = model.spec.categorical
    rows = cats[0].k if cats else 5
    rows = min(rows, 10)
    lm = model.label_map() if model.run_dir is not None else None
    names = {}
    if cats and lm and lm.get("code") == cats[0].name:
        names = {int(v): lab for v, lab in lm["map"].items() if lab is not None}
    outs = []
    for c in conts:
        lo, hi = _traversal_range(c)
        values = torch.linspace(lo, hi, n_points)
        gen = torch.Generator().manual_seed(seed)
        base = model.spec.sample(rows, gen)
        if cats:
            base[cats[0].name] = torch.arange(rows)
        z = torch.randn(1, model.noise_dim, generator=gen).expand(rows, -1)  # one z for the figure
        codes = {k: v.repeat_interleave(n_points) for k, v in base.items()}
        codes[c.name] = values.repeat(rows)
        imgs = model.decode(z.repeat_interleave(n_points, 0), codes)
        imgs = ((imgs.clamp(-1, 1) + 1) / 2).mean(1).numpy()   # (rows * n_points, H, W)
        fig, axes = plt.subplots(rows, n_points, figsize=(n_points * 0.9, rows * 0.9 + 0.6))
        axes = np.atleast_2d(axes)
        for i in range(rows):
            for j in range(n_points):
                ax = axes[i, j]
                ax.imshow(imgs[i * n_points + j], cmap="gray", vmin=0, vmax=1)
                ax.set_xticks([])
                ax.set_yticks([])
                if i == rows - 1:
                    ax.set_xlabel(f"{values[j].item():.2g}", fontsize=7)
                if j == 0:
                    label = f" ({names[i]})" if i in names else ""
                    ax.set_ylabel(f"{cats[0].name}={i}{label}" if cats else "", fontsize=7)
        r = report[c.name]
        what = (f"controls {r['controls']} (r = {r['r_' + r['controls']]:+.2f})" if r["controls"]
                else "no clear property")
        fig.suptitle(f"{c.name} ({c}): {what}; slant r {r['r_slant']:+.2f}, width r "
                     f"{r['r_width']:+.2f}, ink r {r['r_ink']:+.2f}", fontsize=8)
        fig.tight_layout()
        out = Path(model.run_dir) / "plots" / f"traverse-{c.name}.png"
        out.parent.mkdir(exist_ok=True)
        fig.savefig(out, dpi=72)
        plt.close(fig)
        outs.append(out)
    return outs


def make_plots(run_dir: Path, checkpoint: str = "latest") -> list[Path]:
    from .model import load

    model = load(run_dir, checkpoint)
    # H(c) is the ceiling of a categorical code's bound only: a continuous code's differential
    # entropy is not one, so no line is drawn for it.
    ceilings = {c.name: c.entropy() for c in model.spec.categorical}
    return [plot_losses(model.run_dir, ceilings), *plot_traversals(model)]

"""`infogan train | generate | traverse | encode | evaluate | label | plot | judge`: parse, call
the library, print.

Every `train` flag is a `TrainConfig` field. A user mistake prints one line,
`infogan: error: ...`, and exits with code 2.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import sys
from pathlib import Path

import numpy as np

from .errors import InfoganError

HELP = {
    "preset": "tutorial (the Keras tutorial, exactly), paper (the InfoGAN paper's MNIST recipe) or "
              "quality (paper + distortion-robust categorical codes: the digit, not the style)",
    "data": "mnist-5k (embedded), mnist, fashion-mnist, or idx:PATH",
    "data_dir": "folder holding the dataset's IDX files",
    "codes": "code spec, e.g. 'c1=cat:10,c2=unif:-1:1@0.1,c3=gauss@0.1' (@ sets lambda)",
    "cont_loss": "continuous-code loss: nll (learned std), nll-fixed (std 1) or mse",
    "epochs": "training budget in epochs (default 100)",
    "steps": "training budget in iterations (total, also on --resume)",
    "minutes": "stop after this many minutes of training",
    "sample_every": "write a sample grid every N iterations (default 10 epochs)",
    "save_every": "write a checkpoint every N iterations (default 10 epochs)",
    "log_every": "log mean losses every N iterations",
    "precision": "auto (bf16 where the hardware has it), fp32 or bf16 (autocast)",
    "adam_impl": "auto (fused), for-loop, foreach or fused",
    "channels_last": "channels-last (NHWC) memory format (default: on with bf16)",
    "compile": "torch.compile G and D",
    "cuda_graph": "on a CUDA GPU: capture the whole iteration once as a CUDA graph and replay it",
    "threads": "PyTorch CPU threads",
    "device": "auto, cpu or cuda",
    "exact": "the tutorial's arithmetic: fp32, D's trunk run twice, per-tensor Adam",
    "stop_on_collapse": "stop when the run looks collapsed",
    "d_bn_in_g_step": "as the tutorial's Keras code: G's step also trains D's BatchNorm layers",
    "cat_augment": "also train the categorical codes on randomly distorted fakes, at this strength "
                   "(0 off; quality: 1)",
    "keep_best": "keep the best checkpoint as 'best': unsupervised (no labels) or accuracy "
                 "(held-out clustering accuracy)",
}


def _field_type(f: dataclasses.Field):
    ann = str(f.type)
    for name, t in (("bool", bool), ("int", int), ("float", float)):
        if ann.startswith(name):
            return t
    return str


def _add_train_args(p: argparse.ArgumentParser) -> None:
    from .train import TrainConfig

    p.add_argument("run", nargs="?", default="runs/tutorial", help="run folder (default runs/tutorial)")
    p.add_argument("--resume", action="store_true", help="continue the run in RUN")
    p.add_argument("--force", action="store_true", help="replace an existing run folder")
    p.add_argument("--seeds", type=int, default=None,
                   help="train N seeds (from --seed) into RUN/seed-K and choose the best")
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        t = _field_type(f)
        if t is bool:
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=HELP.get(f.name))
        else:
            p.add_argument(flag, type=t, default=None, help=HELP.get(f.name))


def _parse_assignments(items: list[str] | None, spec) -> dict:
    out = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise InfoganError(f"--code '{item}' is not NAME=VALUE, e.g. --code c1=3")
        code = spec[name.strip()]
        try:
            v = float(value)
        except ValueError:
            raise InfoganError(f"--code {item}: '{value}' is not a number") from None
        out[code.name] = code.check_value(v)
    return out


def cmd_train(a) -> int:
    from .train import TrainConfig

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    given = {k: v for k, v in vars(a).items() if k in fields and v is not None}
    if a.seeds is not None:
        if a.seeds < 1:
            raise InfoganError(f"--seeds must be at least 1, got {a.seeds}")
        return _train_seeds(a, given)
    _train_one(a, given, Path(a.run))
    return 0


def _train_one(a, given: dict, run_dir: Path):
    from .train import TrainConfig, train

    # On --resume only the flags given change the saved config.
    cfg = given if a.resume else TrainConfig(**given)
    r = train(cfg, run_dir, resume=a.resume, force=a.force,
              log_fn=lambda s: print(f"infogan: {s}", file=sys.stderr))
    last = r.last
    if last:
        mi = ", ".join(f"I({k[3:]})={v:.3f}" for k, v in last.items() if k.startswith("mi_"))
        print(f"step {r.step}: d_real {last['d_real']:.3f} d_fake {last['d_fake']:.3f} "
              f"g {last['g']:.3f} q {last['q']:.3f} {mi}; {r.sec_per_iter:.4f} s/iter")
    print(f"run:        {r.run_dir}")
    print(f"checkpoint: {r.checkpoint}")
    if r.best:
        print(f"best:       {r.run_dir / 'checkpoints' / r.best['checkpoint']} "
              f"({r.best['criterion']} score {r.best['score']:.4f})")
    print(f"grid:       {r.grid}")
    print(f"log:        {r.run_dir / 'log.jsonl'}")
    _label_after_training(r.run_dir)
    _plots_after_training(r.run_dir)
    return r


def _train_seeds(a, given: dict) -> int:
    """--seeds N: seeds s, s+1, ... in sequence into RUN/seed-K; rank them by the --keep-best
    criterion (default unsupervised) of each seed's best (or last) checkpoint; RUN/chosen
    names the winner, and commands given RUN use it."""
    from .checkpoint import write_json_atomic, write_text_atomic
    from .data import load_dataset
    from .evaluate import selection_score
    from .model import load

    root = Path(a.run)
    if root.exists() and (root / "config.json").exists():
        raise InfoganError(f"{root} is a single run; give --seeds a new folder")
    first = given.get("seed", 0)
    criterion = given.get("keep_best") or "unsupervised"
    rows = []
    for seed in range(first, first + a.seeds):
        print(f"== seed {seed} ==")
        run_dir = root / f"seed-{seed}"
        r = _train_one(a, {**given, "seed": seed}, run_dir)
        if r.best is not None:
            score, ck = r.best["score"], r.best["checkpoint"]
        else:
            model = load(run_dir)
            cfg = model.config
            train_ds = load_dataset(cfg.data, "train", cfg.data_dir)
            test_ds = load_dataset(cfg.data, "test", cfg.data_dir) if criterion == "accuracy" else None
            score, ck = selection_score(model, criterion, train_ds, test_ds)["score"], r.checkpoint.name
        rows.append({"seed": seed, "run": run_dir.name, "checkpoint": ck, "score": score})
    chosen = max(rows, key=lambda r: r["score"])
    write_json_atomic(root / "seeds.json", {"criterion": criterion, "seeds": rows, "chosen": chosen["run"]})
    write_text_atomic(root / "chosen", chosen["run"] + "\n")
    print(f"seeds ranked by the {criterion} score:")
    for r in rows:
        mark = "  <- chosen" if r is chosen else ""
        print(f"  seed {r['seed']}: {r['score']:.4f} ({r['run']}/{r['checkpoint']}){mark}")
    print(f"chosen:     {root / chosen['run']} (commands given {root} use it)")
    return 0


def _label_after_training(run_dir: Path) -> None:
    """Make labels.json when the training set has labels. Training itself never reads them:
    this is the evaluation code, run on the finished checkpoint."""
    from .data import load_dataset
    from .evaluate import make_label_map
    from .model import load

    model = load(run_dir)
    if not model.spec.categorical:
        return
    cfg = model.config
    ds = load_dataset(cfg.data, "train", cfg.data_dir)
    if ds.labels is None:
        return
    lm = make_label_map(model, cfg.data, cfg.data_dir, dataset=ds)
    print(f"labels:     {Path(run_dir) / 'labels.json'} (code value -> label, "
          f"{lm['train_accuracy']:.3f} matched accuracy on the training digits)")


def _plots_after_training(run_dir: Path) -> None:
    from .plots import make_plots

    paths = make_plots(run_dir)
    print(f"plots:      {', '.join(str(p) for p in paths)}")


def cmd_plot(a) -> int:
    from .plots import make_plots

    for path in make_plots(Path(a.run), a.checkpoint):
        print(path)
    return 0


def cmd_judge(a) -> int:
    from .data import load_dataset
    from .judge import get_judge, judge_path

    j = get_judge(a.data, a.data_dir, force=a.force, steps=a.steps,
                  log_fn=lambda s: print(f"infogan: {s}", file=sys.stderr))
    m = j.meta
    print(f"judge for {a.data}: held-out accuracy {j.accuracy:.4f} on {m['test_images']} images "
          f"(trained on {m['train_images']} images, {m['steps']} steps)")
    print(judge_path(load_dataset(a.data, "train", a.data_dir), m["steps"]))
    return 0


def cmd_generate(a) -> int:
    from .model import load
    from .sampling import save_grid, to_uint8

    model = load(a.run, a.checkpoint)
    out = Path(a.out)
    if out.suffix.lower() not in (".png", ".npz"):
        raise InfoganError(f"--out {out}: write .png (a grid) or .npz (arrays)")
    fixed = _parse_assignments(a.code, model.spec)
    if a.label is not None:
        fixed.update(model.code_for_label(a.label))
    s = model.sample(a.n, fixed, a.seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".png":
        save_grid(s.images, out, nrow=a.nrow)
    else:
        arrays = {"images": to_uint8(s.images)}
        for c in model.spec:
            v = s.codes[c.name].numpy()
            arrays[c.name] = v.astype(np.int64 if c.kind == "cat" else np.float32)
        np.savez(out, **arrays)
    print(out)
    return 0


def cmd_traverse(a) -> int:
    from .model import load
    from .sampling import save_grid, traversal_codes, traverse_values
    import torch

    model = load(a.run, a.checkpoint)
    out = Path(a.out)
    if out.suffix.lower() != ".png":
        raise InfoganError(f"--out {out}: a traversal is written as .png")
    values = traverse_values(a.start, a.stop, a.steps)
    gen = torch.Generator().manual_seed(a.seed)
    codes, nrows, row_values = traversal_codes(model.spec, a.code, values,
                                               _parse_assignments(a.fix, model.spec), gen)
    row_code = next((c.name for c in model.spec.categorical if c.name != a.code
                     and c.name not in (a.fix or [])), None)
    z = torch.randn(nrows, model.noise_dim, generator=gen).repeat_interleave(len(values), 0)
    lm = model.label_map()
    names = None
    if row_values is not None and lm and lm["code"] == row_code:
        names = [str(lm["map"].get(str(v), "?")) for v in row_values]
    save_grid(model.decode(z, codes), out, nrow=len(values), row_labels=names)
    print(out)
    return 0


def _read_images(path: Path) -> np.ndarray:
    from .data import read_idx

    if not path.exists():
        raise InfoganError(f"input {path} does not exist")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as f:
                if "images" not in f:
                    raise InfoganError(f"{path} has no array named 'images' (has {', '.join(f.files)})")
                return f["images"]
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise InfoganError(f"{path} is not a readable numpy file ({e})") from None
    return read_idx(path)


def cmd_encode(a) -> int:
    from .model import load

    model = load(a.run, a.checkpoint)
    out = Path(a.out)
    if out.suffix.lower() not in (".npz", ".csv"):
        raise InfoganError(f"--out {out}: write .npz or .csv")
    pred = model.encode(_read_images(Path(a.input)))
    lm = model.label_map()
    cols: dict[str, np.ndarray] = {}
    for name, p in pred.items():
        if "index" in p:
            cols[name] = p["index"].numpy()
            if lm and lm["code"] == name:  # the dataset label each image is classified as
                lut = np.array([-1 if lm["map"].get(str(v)) is None else lm["map"][str(v)]
                                for v in range(p["probs"].shape[1])])
                cols[f"{name}_label"] = lut[cols[name]]
            cols[f"{name}_probs"] = p["probs"].numpy()
        else:
            cols[f"{name}_mean"] = p["mean"].numpy()
            if "std" in p:
                cols[f"{name}_std"] = p["std"].numpy()
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".npz":
        np.savez(out, **cols)
    else:
        header, columns = [], []
        for k, v in cols.items():
            if v.ndim == 2:
                header += [f"{k[:-6]}_p{j}" for j in range(v.shape[1])]
                columns += list(v.T)
            else:
                header.append(k)
                columns.append(v)
        with open(out, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            for row in zip(*columns):
                w.writerow([f"{x:.6g}" if isinstance(x, np.floating) else int(x) for x in row])
    n = len(next(iter(cols.values()))) if cols else 0
    print(f"{out} ({n} images)")
    return 0


def cmd_evaluate(a) -> int:
    import json

    from .evaluate import evaluate_run
    from .model import load

    model = load(a.run, a.checkpoint)
    data = a.data or model.config.data
    r = evaluate_run(model, data, a.data_dir or (model.config.data_dir if a.data is None else None),
                     judge=a.judge, log_fn=lambda s: print(f"infogan: {s}", file=sys.stderr))
    print(f"{r['run']} ({r['checkpoint']}) on {data}")
    for name, c in r.get("clustering", {}).items():
        print(f"  {name}: held-out clustering ({r['held_out_images']} images): accuracy {c['accuracy']:.3f} "
              f"(Hungarian), many-to-one {c['many_to_one']:.3f}, NMI {c['nmi']:.3f}, ARI {c['ari']:.3f}")
    for name, i in r["information"].items():
        extra = f", R^2 {i['r2']:.3f}" if "r2" in i else f", Q accuracy {i['accuracy_on_generated']:.3f}"
        frac = f" ({100 * i['bound_fraction']:.1f}%)" if i["bound_fraction"] is not None else ""
        print(f"  {name}: information bound {i['bound_nats']:.3f} nats, H(c) {i['entropy_nats']:.3f}{frac}"
              f"{extra}  [{r['generated_samples']} generated, seed {r['seed']}]")
    for name, c in r.get("continuous", {}).items():
        what = f"controls {c['controls']}" if c["controls"] else "controls no clear property"
        print(f"  {name}: {what}: correlation with slant {c['r_slant']:+.3f}, width {c['r_width']:+.3f}, "
              f"ink {c['r_ink']:+.3f}  [{c['paths']} traversals x {c['points']} values]")
    j = r.get("judge")
    if j:
        print(f"  judge: {j['feature_extractor']}")
        if "purity" in j:
            print(f"  {j['code']}: judge purity {j['purity']:.3f} (per value: "
                  f"{' '.join(f'{p:.2f}' for p in j['purity_per_value'])}), control accuracy "
                  f"{j['control_accuracy']:.3f}  [{j['images_per_value']} generated per value]")
        ref = (f"; real training images score {j['frechet_real_train']:.3f} "
               f"[{j['real_train_images']} vs the same]") if "frechet_real_train" in j else ""
        print(f"  classifier score {j['classifier_score']:.3f} (at most {j['classes']}), Frechet distance "
              f"(judge features) {j['frechet']:.3f}  [{j['generated_images']} generated vs "
              f"{j['real_images']} held-out real]{ref}")
    if a.json:
        Path(a.json).write_text(json.dumps(r, indent=2) + "\n")
        print(a.json)
    return 0


def cmd_label(a) -> int:
    from .evaluate import make_label_map
    from .model import load

    model = load(a.run, a.checkpoint)
    data = a.data or model.config.data
    lm = make_label_map(model, data, a.data_dir or (model.config.data_dir if a.data is None else None),
                        a.code)
    pairs = ", ".join(f"{v}->{lab}" for v, lab in lm["map"].items())
    print(f"{lm['code']} value -> {data} label: {pairs}")
    print(f"matched accuracy on {lm['images']} training images: {lm['train_accuracy']:.3f}")
    print(Path(a.run) / "labels.json")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="infogan", description="InfoGAN: GANs steered by learned codes")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train (or --resume) a run")
    _add_train_args(t)
    t.set_defaults(fn=cmd_train)

    def model_cmd(name, help_, fn):
        s = sub.add_parser(name, help=help_)
        s.add_argument("run", help="run folder")
        s.add_argument("--checkpoint", default="latest", help="latest, best, step-NNNNNN or a step")
        s.set_defaults(fn=fn)
        return s

    g = model_cmd("generate", "draw images, some codes fixed", cmd_generate)
    g.add_argument("--n", type=int, default=100, help="number of images")
    g.add_argument("--code", action="append", metavar="NAME=VALUE", help="fix a code (repeatable)")
    g.add_argument("--seed", type=int, default=None)
    g.add_argument("--nrow", type=int, default=10, help="images per grid row")
    g.add_argument("--label", type=int, default=None,
                   help="draw this dataset label through the run's label map (see 'infogan label')")
    g.add_argument("--out", required=True, help="FILE.png (grid) or FILE.npz (arrays)")

    v = model_cmd("traverse", "sweep one code; rows are categorical values", cmd_traverse)
    v.add_argument("--code", required=True, help="the code to sweep")
    v.add_argument("--from", dest="start", type=float, default=-2.0)
    v.add_argument("--to", dest="stop", type=float, default=2.0)
    v.add_argument("--steps", type=int, default=10)
    v.add_argument("--fix", action="append", metavar="NAME=VALUE", help="fix another code")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--out", required=True, help="FILE.png")

    ev = model_cmd("evaluate", "clustering by Q, information bounds, codes' properties, judge scores", cmd_evaluate)
    ev.add_argument("--data", default=None, help="labelled dataset (default: the run's own)")
    ev.add_argument("--data-dir", default=None)
    ev.add_argument("--json", default=None, help="also write the results as JSON")
    ev.add_argument("--judge", action=argparse.BooleanOptionalAction, default=True,
                    help="score samples with the dataset's judge (trained once and cached)")

    model_cmd("plot", "write the run's figures under RUN/plots", cmd_plot)

    jd = sub.add_parser("judge", help="the judge classifier that scores generated images")
    jsub = jd.add_subparsers(dest="judge_command", required=True)
    jt = jsub.add_parser("train", help="train (or show the cached) judge of a dataset")
    jt.add_argument("--data", default="mnist-5k", help="labelled dataset")
    jt.add_argument("--data-dir", default=None)
    jt.add_argument("--steps", type=int, default=None, help="training steps (default 2000)")
    jt.add_argument("--force", action="store_true", help="train again even when cached")
    jt.set_defaults(fn=cmd_judge)

    lb = model_cmd("label", "map categorical code values to dataset labels (labels.json)", cmd_label)
    lb.add_argument("--data", default=None, help="labelled dataset (default: the run's own)")
    lb.add_argument("--data-dir", default=None)
    lb.add_argument("--code", default=None, help="the categorical code (default: the first)")

    e = model_cmd("encode", "run Q on images: per-code predictions", cmd_encode)
    e.add_argument("input", help="images: .npz (key 'images'), .npy, or an IDX file (.gz or raw)")
    e.add_argument("--out", required=True, help="FILE.npz or FILE.csv")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    try:
        if getattr(a, "n", 1) <= 0:
            raise InfoganError(f"--n must be positive, got {a.n}")
        return a.fn(a)
    except InfoganError as e:
        print(f"infogan: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("infogan: interrupted; continue with 'infogan train RUN --resume'", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

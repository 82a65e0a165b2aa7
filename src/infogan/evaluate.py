"""Metrics that replace looking at grids.

Clustering of labelled real images by Q's categorical code (the paper's sec. 5.1 use of c1 as
a classifier): accuracy under the best one-to-one matching of code values to labels (Hungarian
algorithm, scipy's linear_sum_assignment), many-to-one accuracy (each value takes its majority
label; for cardinalities other than the number of classes), NMI and ARI. The Frechet distance
between two Gaussians fitted to feature sets:  |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.linalg import sqrtm
from scipy.optimize import linear_sum_assignment

from .errors import InfoganError


def _check(pred, labels) -> tuple[np.ndarray, np.ndarray]:
    pred, labels = np.asarray(pred).astype(np.int64).ravel(), np.asarray(labels).astype(np.int64).ravel()
    if pred.shape != labels.shape:
        raise InfoganError(f"{len(pred)} predictions but {len(labels)} labels")
    if len(pred) == 0:
        raise InfoganError("no images to evaluate")
    if pred.min() < 0 or labels.min() < 0:
        raise InfoganError("predictions and labels must be non-negative integers")
    return pred, labels


def contingency(pred, labels, n_values: int | None = None, n_classes: int | None = None) -> np.ndarray:
    """(K values, C classes) counts: entry [v, c] = images with code value v and label c.
    Values or classes that never occur still get a row/column when n_values/n_classes say so."""
    pred, labels = _check(pred, labels)
    table = np.zeros((max(pred.max() + 1, n_values or 0), max(labels.max() + 1, n_classes or 0)), np.int64)
    np.add.at(table, (pred, labels), 1)
    return table


def hungarian_match(pred, labels, n_values: int | None = None) -> tuple[float, dict[int, int]]:
    """Accuracy under the best one-to-one map value -> label, and that map (every value gets a
    label when there are at least as many labels as values)."""
    table = contingency(pred, labels, n_values)
    rows, cols = linear_sum_assignment(-table)
    return float(table[rows, cols].sum() / table.sum()), {int(r): int(c) for r, c in zip(rows, cols)}


def many_to_one_accuracy(pred, labels) -> float:
    """Each code value takes its majority label."""
    table = contingency(pred, labels)
    return float(table.max(1).sum() / table.sum())


def _entropy(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def nmi(pred, labels) -> float:
    """Normalised mutual information, I(pred; labels) / mean(H(pred), H(labels))."""
    table = contingency(pred, labels).astype(np.float64)
    n = table.sum()
    h_p, h_l = _entropy(table.sum(1)), _entropy(table.sum(0))
    if h_p == 0 or h_l == 0:
        return 1.0 if h_p == h_l else 0.0
    pij = table / n
    outer = np.outer(table.sum(1), table.sum(0)) / n**2
    nz = pij > 0
    mi = float((pij[nz] * np.log(pij[nz] / outer[nz])).sum())
    return mi / (0.5 * (h_p + h_l))


def ari(pred, labels) -> float:
    """Adjusted Rand index (Hubert and Arabie, 1985)."""
    table = contingency(pred, labels)
    comb = lambda x: x * (x - 1) / 2  # noqa: E731
    n = table.sum()
    sum_ij = comb(table).sum()
    a, b = comb(table.sum(1)).sum(), comb(table.sum(0)).sum()
    expected = a * b / comb(n)
    top = 0.5 * (a + b)
    if top == expected:
        return 1.0
    return float((sum_ij - expected) / (top - expected))


def frechet_distance(mu1, s1, mu2, s2) -> float:
    """Frechet distance between N(mu1, s1) and N(mu2, s2)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.atleast_2d(s1).astype(np.float64), np.atleast_2d(s2).astype(np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape:
        raise InfoganError("the two feature sets have different dimensions")
    covmean = sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():  # nearly singular: regularise, as is usual
        eps = 1e-6 * np.eye(len(s1))
        covmean = sqrtm((s1 + eps) @ (s2 + eps))
    covmean = covmean.real
    d = float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))
    return max(d, 0.0)


def feature_frechet(f1, f2) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (n, d)."""
    f1, f2 = np.asarray(f1, np.float64), np.asarray(f2, np.float64)
    return frechet_distance(f1.mean(0), np.cov(f1, rowvar=False), f2.mean(0), np.cov(f2, rowvar=False))


def clustering_report(pred, labels) -> dict:
    acc, mapping = hungarian_match(pred, labels)
    return {"accuracy": acc, "many_to_one": many_to_one_accuracy(pred, labels), "nmi": nmi(pred, labels),
            "ari": ari(pred, labels), "map": mapping, "n": int(len(np.asarray(pred)))}


def bound_fraction(bound_nats: float, entropy_nats: float) -> float:
    return bound_nats / entropy_nats if entropy_nats > 0 else math.nan


# ---- the code-to-label map ---------------------------------------------------------------

LABELS_FILE = "labels.json"


def make_label_map(model, data: str, data_dir: str | None = None, code: str | None = None,
                   dataset=None) -> dict:
    """Match the values of a categorical code to dataset labels (Hungarian, on the labelled
    training split) and write RUN/labels.json. Evaluation code: training never calls this."""
    from .checkpoint import write_json_atomic
    from .data import load_dataset

    cats = model.spec.categorical
    if not cats:
        raise InfoganError("this model has no categorical code to map to labels")
    cat = model.spec[code] if code else cats[0]
    if cat.kind != "cat":
        raise InfoganError(f"code {cat.name} is not categorical; a label map needs a cat code")
    ds = dataset if dataset is not None else load_dataset(data, "train", data_dir)
    if ds.labels is None:
        raise InfoganError(f"dataset {data} has no labels; pass a labelled dataset with --data")
    pred = model.encode(ds.images)[cat.name]["index"].numpy()
    acc, mapping = hungarian_match(pred, ds.labels.numpy(), n_values=cat.k)
    out = {"code": cat.name, "dataset": data, "checkpoint": model.checkpoint.name if model.checkpoint else None,
           "map": {str(v): mapping.get(v) for v in range(cat.k)}, "train_accuracy": acc,
           "images": len(ds)}
    if model.run_dir is not None:
        write_json_atomic(model.run_dir / LABELS_FILE, out)
    return out


# ---- infogan evaluate ----------------------------------------------------------------------

N_GENERATED = 5000   # generated samples for the bound and R^2: the same count every time
EVAL_SEED = 1234


def information_report(model, n: int = N_GENERATED, seed: int = EVAL_SEED) -> dict:
    """Per code, on n generated samples: the lower bound H(c) - NLL (nats), its fraction of
    H(c), and for continuous codes R^2 of Q's mean against the true code."""
    s = model.sample(n, seed=seed)
    q = model.q_outputs(s.images)
    _, _, bounds = model.spec.info_losses(q, s.codes)
    parts = model.spec.split_q(q)
    out = {}
    for c in model.spec:
        h = c.entropy()
        # As a fraction of H(c) only for categorical codes: a continuous code's differential
        # entropy is no ceiling (its bound grows without limit as Q's std shrinks).
        row = {"kind": c.kind, "bound_nats": float(bounds[c.name]), "entropy_nats": h,
               "bound_fraction": bound_fraction(float(bounds[c.name]), h) if c.kind == "cat" else None}
        if c.kind != "cat":
            y, yhat = s.codes[c.name].double(), parts[c.name]["mean"].double()
            row["r2"] = float(1 - ((y - yhat) ** 2).sum() / ((y - y.mean()) ** 2).sum())
        else:
            row["accuracy_on_generated"] = float((parts[c.name]["logits"].argmax(1) == s.codes[c.name])
                                                 .double().mean())
        out[c.name] = row
    return out


# ---- continuous codes: which image property does each control? -------------------------

N_PATHS, N_POINTS = 200, 9   # traversals per continuous code: paths x points along each


def image_properties(images) -> dict[str, np.ndarray]:
    """Per image (n, C, H, W) in [-1, 1], from the ink's second moments (ink = (x + 1) / 2,
    channels averaged): `slant`, the horizontal shift of the ink per row going up (-mu_xy /
    mu_yy, with rows counted downwards: positive leans right, as in italics); `width`, the
    standard deviation of the ink's column position (pixels); `ink`, the stroke mass (sum of
    ink, in pixels)."""
    x = torch.as_tensor(images).float()
    w = ((x + 1) / 2).clamp(0, 1).mean(1)                       # (n, H, W)
    n, h, wd = w.shape
    ys = torch.arange(h, dtype=torch.float64).view(1, h, 1)
    xs = torch.arange(wd, dtype=torch.float64).view(1, 1, wd)
    w = w.double()
    mass = w.sum((1, 2)).clamp_min(1e-9)
    my = (w * ys).sum((1, 2)) / mass
    mx = (w * xs).sum((1, 2)) / mass
    dy, dx = ys - my.view(n, 1, 1), xs - mx.view(n, 1, 1)
    myy = (w * dy * dy).sum((1, 2)) / mass
    mxy = (w * dx * dy).sum((1, 2)) / mass
    mxx = (w * dx * dx).sum((1, 2)) / mass
    return {"slant": (-mxy / myy.clamp_min(1e-9)).numpy(), "width": mxx.sqrt().numpy(),
            "ink": mass.numpy()}


def _traversal_range(code) -> tuple[float, float]:
    if code.kind == "unif":
        return code.low, code.high
    return -2.0, 2.0   # gauss: +-2 standard deviations


def continuous_report(model, n_paths: int = N_PATHS, n_points: int = N_POINTS,
                      seed: int = EVAL_SEED, min_r: float = 0.5) -> dict:
    """For each continuous code: n_paths random (z, other codes), the code swept over n_points
    values of its range; the correlation of the code's value with each image property, pooled
    within paths (each path's own mean removed, so the code's effect is measured, not the
    differences between images). `controls` names the property with the largest |r| when it is
    at least `min_r`, else None."""
    out = {}
    for c in model.spec:
        if c.kind == "cat":
            continue
        lo, hi = _traversal_range(c)
        gen = torch.Generator().manual_seed(seed)
        base = model.spec.sample(n_paths, gen)
        z = torch.randn(n_paths, model.noise_dim, generator=gen)
        values = torch.linspace(lo, hi, n_points)
        codes = {k: v.repeat_interleave(n_points) for k, v in base.items()}
        codes[c.name] = values.repeat(n_paths)
        imgs = model.decode(z.repeat_interleave(n_points, 0), codes)
        props = image_properties(imgs)
        t = values.double().numpy() - values.double().mean().item()
        row = {"range": [lo, hi], "paths": n_paths, "points": n_points}
        for name, v in props.items():
            v = v.reshape(n_paths, n_points)
            v = v - v.mean(1, keepdims=True)
            tt = np.broadcast_to(t, v.shape)
            den = math.sqrt((tt * tt).sum() * (v * v).sum())
            row[f"r_{name}"] = float((tt * v).sum() / den) if den > 0 else 0.0
        best = max(("slant", "width", "ink"), key=lambda k: abs(row[f"r_{k}"]))
        row["controls"] = best if abs(row[f"r_{best}"]) >= min_r else None
        out[c.name] = row
    return out


# ---- the judge's scores ---------------------------------------------------------------------

N_PER_VALUE = 500   # generated images per categorical value, for purity and control accuracy


def classifier_score(probs) -> float:
    """exp(E_x KL(p(y|x) || p(y))): the Inception-score formula with the judge as classifier.
    1 for images the judge cannot tell apart, at most the number of classes."""
    p = torch.as_tensor(probs).double().clamp_min(1e-12)
    marginal = p.mean(0, keepdim=True)
    return float(torch.exp((p * (p.log() - marginal.log())).sum(1).mean()))


def judge_report(model, judge, real_test, n: int = N_GENERATED, per_value: int = N_PER_VALUE,
                 seed: int = EVAL_SEED, real_train=None) -> dict:
    """Sample quality as the judge sees it. For the first categorical code, `per_value` images
    per value (everything else random): per-value purity (the share of the value's images that
    the judge gives the value's most common label) and control accuracy (the share that the
    judge labels as the one-to-one Hungarian matching of values to labels says). On n images
    from the prior: the classifier score and the Frechet distance between the judge's
    penultimate features of those images and of the real held-out images, and (given
    `real_train`) the same distance for up to n real training images, the value a perfect G
    would get with these sample counts."""
    out = {"feature_extractor": f"judge CNN penultimate layer ({judge.meta['dataset']}, "
                                f"{judge.meta['test_images']} held-out images at "
                                f"{judge.accuracy:.4f} accuracy)",
           "generated_images": n, "real_images": len(real_test), "classes": judge.n_classes}
    cats = model.spec.categorical
    if cats:
        cat = cats[0]
        labels, values = [], []
        for v in range(cat.k):
            x = model.generate(per_value, codes={cat.name: v}, seed=seed + v)
            labels.append(judge.probs(x).argmax(1).numpy())
            values.append(np.full(per_value, v))
        pred, lab = np.concatenate(values), np.concatenate(labels)
        table = contingency(pred, lab, n_values=cat.k, n_classes=judge.n_classes)
        purity = table.max(1) / table.sum(1)
        acc, mapping = hungarian_match(pred, lab, n_values=cat.k)
        out.update({"code": cat.name, "images_per_value": per_value,
                    "purity_per_value": [float(p) for p in purity], "purity": float(purity.mean()),
                    "control_accuracy": acc, "judge_map": {str(k): v for k, v in mapping.items()}})
    x = model.generate(n, seed=seed)
    fake_p, fake_f = judge._run(x)
    real_f = judge.features(real_test.images)
    out["classifier_score"] = classifier_score(fake_p.softmax(1))
    out["frechet"] = feature_frechet(fake_f.numpy(), real_f.numpy())
    if real_train is not None:  # the floor: real training images against the same held-out set
        ref = real_train.images[:n]
        out["frechet_real_train"] = feature_frechet(judge.features(ref).numpy(), real_f.numpy())
        out["real_train_images"] = len(ref)
    return out


def evaluate_run(model, data: str, data_dir: str | None = None, judge: bool = True,
                 log_fn=None) -> dict:
    """Clustering of the held-out labelled split by each categorical code, the information
    report, the continuous codes' properties and (with `judge`) the judge's scores. Labels are
    read here and only here (and in make_label_map and the judge's training)."""
    from .data import load_dataset

    result = {"run": str(model.run_dir), "checkpoint": model.checkpoint.name if model.checkpoint else None,
              "data": data, "generated_samples": N_GENERATED, "seed": EVAL_SEED,
              "information": information_report(model)}
    if any(c.kind != "cat" for c in model.spec):
        result["continuous"] = continuous_report(model)
    cats = model.spec.categorical
    ds = None
    if cats or judge:
        ds = load_dataset(data, "test", data_dir)
        if ds.labels is None:
            raise InfoganError(f"dataset {data} has no labels for its held-out split; "
                               "evaluate with a labelled dataset (--data)")
        result["held_out_images"] = len(ds)
    if cats:
        pred = model.encode(ds.images)
        result["clustering"] = {c.name: clustering_report(pred[c.name]["index"].numpy(), ds.labels.numpy())
                                for c in cats}
    if judge:
        from .judge import get_judge

        j = get_judge(data, data_dir, log_fn=log_fn)
        if tuple(j.meta["image_shape"]) != tuple(model.image_shape):
            raise InfoganError(f"the judge of {data} takes images {j.meta['image_shape']}, this model "
                               f"makes {list(model.image_shape)}; evaluate with the run's own dataset")
        result["judge"] = judge_report(model, j, ds, real_train=load_dataset(data, "train", data_dir))
    return result


# ---- choosing checkpoints and seeds ---------------------------------------------------------

CRITERIA = ("unsupervised", "accuracy")
N_SELECT = 2000   # generated samples for the unsupervised criterion


def real_cluster_information(model, images, code=None) -> float:
    """I(x; c_hat) of Q's categorical predictions on real images, as a fraction of ln K:
    H(mean_x p(c|x)) - mean_x H(p(c|x)), over ln K. No labels are used. It is 1 when Q sorts the
    real images into K equally large groups with full confidence, and low when the real images
    all look alike to Q or when Q hesitates on them, i.e. when G's images for the K values do
    not cover the real data the way the prior says they should."""
    cat = code or model.spec.categorical[0]
    probs = model.encode(images)[cat.name]["probs"].double().clamp_min(1e-12)
    marginal = probs.mean(0)
    h_marg = float(-(marginal * marginal.log()).sum())
    h_cond = float(-(probs * probs.log()).sum(1).mean())
    return (h_marg - h_cond) / math.log(cat.k)


def selection_score(model, criterion: str, real_train=None, real_test=None) -> dict:
    """The score `--keep-best` ranks checkpoints (and `--seeds` ranks seeds) by; higher is better.

    unsupervised: the mean of two fractions of ln K for the first categorical code: the
      information bound on N_SELECT generated images (do the values stay recoverable from G's
      images?) and real_cluster_information on the real training images (does Q, trained only on
      G's images, find K confident, balanced groups in the real data?). The second is the
      judge-free quality signal: a G whose images miss the real data leaves Q unsure or
      lopsided there, however high the bound on G's own images. No label is read.
    accuracy: held-out clustering accuracy (Hungarian) of the first categorical code; reads
      the held-out labels, so the accuracy reported for the chosen checkpoint is optimistic.
    """
    if criterion not in CRITERIA:
        raise InfoganError(f"unknown --keep-best criterion '{criterion}'; use one of {', '.join(CRITERIA)}")
    if not model.spec.categorical:
        raise InfoganError("--keep-best ranks by the categorical code; this model has none")
    cat = model.spec.categorical[0]
    if criterion == "accuracy":
        if real_test is None or real_test.labels is None:
            raise InfoganError("--keep-best accuracy needs a dataset with a labelled held-out split")
        pred = model.encode(real_test.images)[cat.name]["index"].numpy()
        acc, _ = hungarian_match(pred, real_test.labels.numpy(), n_values=cat.k)
        return {"criterion": criterion, "score": acc, "accuracy": acc}
    s = model.sample(N_SELECT, seed=EVAL_SEED)
    _, _, bounds = model.spec.info_losses(model.q_outputs(s.images), s.codes, kinds=("cat",))
    bound = float(bounds[cat.name]) / cat.entropy()
    real = real_cluster_information(model, real_train.images[:5000])
    return {"criterion": criterion, "score": 0.5 * (bound + real), "bound_fraction": bound,
            "real_information_fraction": real}

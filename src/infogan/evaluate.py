"""Metrics that replace looking at grids (first part: clustering and distances).

Clustering of labelled real images by Q's categorical code (the paper's sec. 5.1 use of c1 as
a classifier): accuracy under the best one-to-one matching of code values to labels (Hungarian
algorithm, scipy's linear_sum_assignment), many-to-one accuracy (each value takes its majority
label; for cardinalities other than the number of classes), NMI and ARI. The Frechet distance
between two Gaussians fitted to feature sets:  |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)).
"""

from __future__ import annotations

import math

import numpy as np
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


def evaluate_run(model, data: str, data_dir: str | None = None) -> dict:
    """Clustering of the held-out labelled split by each categorical code, and the
    information report. Labels are read here and only here (and in make_label_map)."""
    from .data import load_dataset

    result = {"run": str(model.run_dir), "checkpoint": model.checkpoint.name if model.checkpoint else None,
              "data": data, "generated_samples": N_GENERATED, "seed": EVAL_SEED,
              "information": information_report(model)}
    cats = model.spec.categorical
    if cats:
        ds = load_dataset(data, "test", data_dir)
        if ds.labels is None:
            raise InfoganError(f"dataset {data} has no labels for its held-out split; "
                               "evaluate with a labelled dataset (--data)")
        pred = model.encode(ds.images)
        result["clustering"] = {c.name: clustering_report(pred[c.name]["index"].numpy(), ds.labels.numpy())
                                for c in cats}
        result["held_out_images"] = len(ds)
    return result

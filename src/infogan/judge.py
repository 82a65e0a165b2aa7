"""The judge: a small CNN classifier trained on a dataset's labelled training split, used to
score generated images (evaluation only; training never sees it).

    judge = get_judge("mnist-5k")           # trained once, then cached
    probs = judge.probs(images)             # (n, classes)
    feats = judge.features(images)          # (n, 128): the penultimate layer, for a Frechet distance

Architecture (fixed, so cached judges and their scores stay comparable): two 3x3 conv blocks of
32 channels, 2x2 max-pool, two of 64, 2x2 max-pool, FC 128 (the features), dropout 0.3,
FC classes; BatchNorm and ReLU after every conv and the FC 128. Trained with Adam (1e-3, cosine
decay to 0) on batches of 128 with mild random affine distortions (augment.random_affine at
strength 0.5: +-7.5 degrees, +-1 pixel), seeded, for JUDGE_STEPS steps.

The cache lives in $INFOGAN_CACHE/judges (default ~/.cache/infogan/judges), one safetensors
file per dataset content (a hash of the training images and labels), with the held-out
accuracy and the training settings in its metadata.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .augment import random_affine
from .data import Dataset, default_cache_dir, load_dataset, to_unit_range
from .errors import InfoganError

JUDGE_VERSION = 1
JUDGE_STEPS = 2000
FEATURE_DIM = 128


class JudgeNet(nn.Module):
    def __init__(self, channels: int, n_classes: int, image_hw: tuple[int, int]):
        super().__init__()
        h, w = image_hw

        def block(cin, cout):
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

        self.conv = nn.Sequential(*block(channels, 32), *block(32, 32), nn.MaxPool2d(2),
                                  *block(32, 64), *block(64, 64), nn.MaxPool2d(2), nn.Flatten())
        self.fc = nn.Sequential(nn.Linear(64 * (h // 4) * (w // 4), FEATURE_DIM, bias=False),
                                nn.BatchNorm1d(FEATURE_DIM), nn.ReLU())
        self.out = nn.Sequential(nn.Dropout(0.3), nn.Linear(FEATURE_DIM, n_classes))

    def forward(self, x):
        f = self.fc(self.conv(x))
        return self.out(f), f


class Judge:
    """A trained judge in inference mode."""

    def __init__(self, net: JudgeNet, meta: dict):
        self.net, self.meta = net.eval(), meta

    @property
    def accuracy(self) -> float:
        return float(self.meta["test_accuracy"])

    @property
    def n_classes(self) -> int:
        return int(self.meta["classes"])

    def _input(self, images) -> torch.Tensor:
        x = images if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images))
        if x.ndim == 3:
            x = x.unsqueeze(1)
        want = tuple(self.meta["image_shape"])
        if x.ndim != 4 or tuple(x.shape[1:]) != want:
            raise InfoganError(f"the judge takes images shaped (N, {', '.join(map(str, want))}), "
                               f"got {tuple(x.shape)}")
        return to_unit_range(x) if x.dtype == torch.uint8 else x.float()

    @torch.no_grad()
    def _run(self, images, batch_size: int = 1000):
        x = self._input(images)
        logits, feats = [], []
        for i in range(0, len(x), batch_size):
            lo, f = self.net(x[i : i + batch_size])
            logits.append(lo.float())
            feats.append(f.float())
        return torch.cat(logits), torch.cat(feats)

    def probs(self, images) -> torch.Tensor:
        return self._run(images)[0].softmax(1)

    def features(self, images) -> torch.Tensor:
        return self._run(images)[1]


def _fit(net: JudgeNet, images: torch.Tensor, labels: torch.Tensor, steps: int, seed: int,
         log_fn=None) -> None:
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    net.train()
    for step in range(steps):
        idx = torch.randint(0, len(images), (128,), generator=gen)
        x = random_affine(to_unit_range(images[idx]), gen, 0.5)
        logits, _ = net(x)
        loss = F.cross_entropy(logits, labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if log_fn and (step + 1) % 500 == 0:
            log_fn(f"judge step {step + 1}/{steps}: loss {loss.item():.4f}")
    net.eval()


def accuracy(judge: Judge, ds: Dataset) -> float:
    return float((judge.probs(ds.images).argmax(1) == ds.labels).double().mean())


def train_judge(train: Dataset, test: Dataset, steps: int = JUDGE_STEPS, seed: int = 0,
                log_fn=None) -> Judge:
    """Train a judge on `train` and measure it on `test` (both labelled)."""
    for ds in (train, test):
        if ds.labels is None:
            raise InfoganError(f"dataset {ds.name} ({ds.split}) has no labels; the judge needs a "
                               "labelled dataset (mnist-5k, mnist, fashion-mnist)")
    n_classes = int(max(train.labels.max(), test.labels.max())) + 1
    torch.manual_seed(seed)
    net = JudgeNet(train.image_shape[0], n_classes, train.image_shape[1:])
    _fit(net, train.images, train.labels, steps, seed, log_fn)
    meta = {"version": JUDGE_VERSION, "dataset": train.name, "classes": n_classes,
            "image_shape": list(train.image_shape), "steps": steps, "seed": seed,
            "train_images": len(train), "test_images": len(test)}
    judge = Judge(net, meta)
    meta["test_accuracy"] = accuracy(judge, test)
    return judge


def _content_key(ds: Dataset, steps: int, seed: int) -> str:
    h = hashlib.sha256()
    h.update(ds.images.numpy().tobytes())
    h.update(ds.labels.numpy().astype(np.int64).tobytes())
    h.update(f"v{JUDGE_VERSION}-{steps}-{seed}".encode())
    return h.hexdigest()[:16]


def judge_path(ds: Dataset, steps: int = JUDGE_STEPS, seed: int = 0) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", ds.name)[:40]
    return default_cache_dir() / "judges" / f"{safe}-{_content_key(ds, steps, seed)}.safetensors"


def save_judge(judge: Judge, path: Path) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-judge-")
    os.close(fd)
    try:
        state = {k: v.contiguous() for k, v in judge.net.state_dict().items()}
        save_file(state, tmp, metadata={"judge": json.dumps(judge.meta)})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_judge(path: Path) -> Judge:
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(str(path), "pt") as f:
            meta = json.loads((f.metadata() or {})["judge"])
        state = load_file(str(path))
        net = JudgeNet(meta["image_shape"][0], meta["classes"], tuple(meta["image_shape"][1:]))
        net.load_state_dict(state, strict=True)
    except (SafetensorError, OSError, ValueError, KeyError, RuntimeError) as e:
        raise InfoganError(f"cached judge {path} is unreadable ({type(e).__name__}); delete it, "
                           "or run 'infogan judge train --force'") from None
    return Judge(net, meta)


def get_judge(data: str, data_dir: str | None = None, train_if_missing: bool = True,
              force: bool = False, steps: int | None = None, log_fn=None) -> Judge:
    """The judge of dataset `data`: from the cache, else trained (and cached) when allowed."""
    steps = steps or JUDGE_STEPS
    if steps < 1:
        raise InfoganError(f"--steps must be at least 1, got {steps}")
    train = load_dataset(data, "train", data_dir)
    if train.labels is None:
        raise InfoganError(f"dataset {data} has no labels; the judge needs a labelled dataset")
    path = judge_path(train, steps)
    if path.exists() and not force:
        return load_judge(path)
    if not train_if_missing:
        raise InfoganError(f"no judge for {data} yet; train one with 'infogan judge train --data {data}'")
    test = load_dataset(data, "test", data_dir)
    if log_fn:
        log_fn(f"training the judge for {data} ({len(train)} images, {steps} steps); cached in {path}")
    judge = train_judge(train, test, steps, log_fn=log_fn)
    save_judge(judge, path)
    return judge

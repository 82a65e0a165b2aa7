"""A trained model as a user holds it: `infogan.load(run)` -> `InfoGAN`.

    model = infogan.load("runs/mnist")
    x = model.generate(25, codes={"c1": 3}, seed=0)    # (25, 1, 28, 28) in [-1, 1]
    pred = model.encode(x)                              # {"c1": {"index", "probs"}, ...}
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import checkpoint as ckpt
from .codes import Categorical, CodeSpec
from .data import to_unit_range
from .errors import InfoganError
from .nets import build_models
from .train import TrainConfig, config_from_dict, model_fingerprint, pick_device


@dataclass
class Samples:
    images: torch.Tensor               # (n, C, H, W) float in [-1, 1]
    codes: dict[str, torch.Tensor]     # name -> (n,): int64 categorical, float32 continuous


class InfoGAN:
    """Generator + discriminator/Q of one checkpoint, in inference mode."""

    def __init__(self, config: TrainConfig, image_shape, G, D, run_dir: Path | None = None,
                 checkpoint: Path | None = None):
        self.config = config
        self.spec = CodeSpec.parse(config.codes, config.cont_loss)
        self.image_shape = tuple(image_shape)
        self.generator, self.discriminator = G.eval(), D.eval()
        self.run_dir, self.checkpoint = run_dir, checkpoint
        self.device = next(G.parameters()).device

    @property
    def noise_dim(self) -> int:
        return self.config.noise_dim

    def label_map(self) -> dict | None:
        """RUN/labels.json (code value -> dataset label) if `infogan label` has made one."""
        from .checkpoint import read_json

        path = self.run_dir / "labels.json" if self.run_dir else None
        return read_json(path, "label map") if path and path.exists() else None

    def code_for_label(self, label: int) -> dict:
        """{code: value} that draws images of dataset label `label`, from the label map."""
        lm = self.label_map()
        if lm is None:
            raise InfoganError(f"{self.run_dir} has no label map; make one with "
                               f"'infogan label {self.run_dir} --data NAME'")
        for value, lab in lm["map"].items():
            if lab == label:
                return {lm["code"]: int(value)}
        have = sorted({v for v in lm["map"].values() if v is not None})
        raise InfoganError(f"no value of code {lm['code']} maps to label {label}; mapped labels: "
                           f"{', '.join(map(str, have))}")

    def _gen(self, seed: int | None) -> torch.Generator:
        g = torch.Generator()
        if seed is None:
            g.seed()
        else:
            g.manual_seed(seed)
        return g

    @torch.no_grad()
    def sample(self, n: int, codes: dict | None = None, seed: int | None = None,
               batch_size: int = 1000) -> Samples:
        """Draw n images; `codes` fixes some codes ({"c1": 3, "c2": 0.5} or (n,) tensors)."""
        if not isinstance(n, int) or n <= 0:
            raise InfoganError(f"the number of images must be a positive integer, got {n}")
        gen = self._gen(seed)
        c = self.spec.sample(n, gen, fixed=codes)
        z = torch.randn(n, self.noise_dim, generator=gen)
        return Samples(self.decode(z, c, batch_size), c)

    def generate(self, n: int, codes: dict | None = None, seed: int | None = None) -> torch.Tensor:
        """(n, C, H, W) images in [-1, 1]."""
        return self.sample(n, codes, seed).images

    @torch.no_grad()
    def decode(self, z: torch.Tensor, codes: dict[str, torch.Tensor], batch_size: int = 1000):
        """G(z, c) for explicit noise (n, noise_dim) and codes; returns CPU float images."""
        if z.ndim != 2 or z.shape[1] != self.noise_dim:
            raise InfoganError(f"noise must be shaped (n, {self.noise_dim}), got {tuple(z.shape)}")
        g_in = torch.cat([z.float(), self.spec.to_g_input(codes)], 1)
        out = [self.generator(g_in[i : i + batch_size].to(self.device)).float().cpu()
               for i in range(0, len(g_in), batch_size)]
        return torch.cat(out)

    def _as_model_input(self, images) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(images)) if not isinstance(images, torch.Tensor) else images
        shape = tuple(x.shape)
        c, h, w = self.image_shape
        if x.ndim == 3 and c == 1:
            x = x.unsqueeze(1)
        if x.ndim != 4 or tuple(x.shape[1:]) != self.image_shape:
            also = f" or (N, {h}, {w})" if c == 1 else ""
            raise InfoganError(f"images have shape {shape} but this model takes "
                               f"(N, {c}, {h}, {w}){also}")
        if x.dtype == torch.uint8:
            return to_unit_range(x)
        if not x.is_floating_point():
            raise InfoganError(f"images have dtype {x.dtype}; pass uint8 pixels 0..255 or floats in [-1, 1]")
        x = x.float()
        if len(x) and (x.min() < -1.001 or x.max() > 1.001):
            raise InfoganError("float images must lie in [-1, 1] (as generate returns); "
                               "pass uint8 pixels 0..255 instead")
        return x

    @torch.no_grad()
    def q_outputs(self, images, batch_size: int = 1000) -> torch.Tensor:
        """Q's raw outputs (n, spec.q_dim): logits, means, log-stds (see CodeSpec.split_q)."""
        x = self._as_model_input(images)
        outs = [self.discriminator.encode(x[i : i + batch_size].to(self.device)).float().cpu()
                for i in range(0, len(x), batch_size)]
        return torch.cat(outs) if outs else torch.zeros(0, self.spec.q_dim)

    @torch.no_grad()
    def encode(self, images, batch_size: int = 1000) -> dict[str, dict[str, torch.Tensor]]:
        """Q's predictions per code for uint8 (0..255) or float ([-1, 1]) images.

        categorical: {"index": (n,) int64 argmax, "probs": (n, k)};
        continuous: {"mean": (n,)} plus {"std": (n,)} when Q learns its std.
        """
        parts = self.spec.split_q(self.q_outputs(images, batch_size))
        result = {}
        for c in self.spec:
            p = parts[c.name]
            if isinstance(c, Categorical):
                probs = p["logits"].softmax(1)
                result[c.name] = {"index": probs.argmax(1), "probs": probs}
            else:
                result[c.name] = {"mean": p["mean"]}
                if self.spec.learned_std:
                    result[c.name]["std"] = p["log_std"].exp()
        return result


def load(run_dir, checkpoint: str = "latest", device: str = "cpu") -> InfoGAN:
    """Rebuild the models of a run folder from config.json and load one checkpoint."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InfoganError(f"run folder {run_dir} does not exist; train one with 'infogan train'")
    if not (run_dir / "config.json").exists() and (run_dir / "chosen").exists():
        run_dir = run_dir / (run_dir / "chosen").read_text().strip()   # a --seeds folder
    meta = ckpt.read_json(run_dir / "config.json", "config")
    if meta.get("format_version") != ckpt.FORMAT_VERSION:
        raise InfoganError(f"{run_dir}/config.json has format_version {meta.get('format_version')}, "
                           f"this infogan reads {ckpt.FORMAT_VERSION}")
    try:
        cfg = config_from_dict(meta["config"])
        image_shape = tuple(meta["model"]["image_shape"])
    except (KeyError, TypeError):
        raise InfoganError(f"{run_dir}/config.json lacks its config or model section; "
                           "it was not written by 'infogan train'") from None
    fingerprint = model_fingerprint(cfg, image_shape)
    G, D = build_models(cfg.preset, image_shape, CodeSpec.parse(cfg.codes, cfg.cont_loss), cfg.noise_dim)
    path = ckpt.resolve_checkpoint(run_dir, checkpoint)
    ckpt.load_weights(path, G, D, fingerprint)
    dev = pick_device(device)
    return InfoGAN(cfg, image_shape, G.to(dev), D.to(dev), run_dir, path)

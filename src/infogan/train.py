"""Training: `TrainConfig`, one `train_step` per preset, and the loop that logs, samples and saves.

Preset `tutorial` (shared/SEED_NOTES.md), per iteration:
  1. D update on half a batch of real images, target 1;
  2. D update on half a batch of images from G in inference mode (Keras `predict`: G's
     BatchNorm uses its moving averages), target 0;
  3. G + Q-head update on a full batch of fresh (z, c): BCE(D(G(z, c)), 1) + sum_i lambda_i L_i,
     with D's layers (trunk and D head, shared with Q) frozen. D's BatchNorm layers normalise
     with batch statistics in every step, as Keras' trainable BatchNorm does in `fit`.
  Adam(2e-4, beta1 0.5) for both; D's optimiser holds the trunk and the D head, G's holds G and
  the Q head. Keras' Adam epsilon (1e-7) is kept.
Preset `paper` (Chen et al. 2016 and the official code): one batch of fakes per iteration;
  D + Q update: BCE(D(x), 1) + BCE(D(G(z, c)), 0) + sum_i lambda_i L_i, so the information loss
  trains D's trunk and Q; then G update: BCE(D(G(z, c)), 1) + sum_i lambda_i L_i. Adam beta1 0.5,
  D 2e-4, G 1e-3, batch 128.
Preset `quality` (this project's recipe for codes that pick the digit): the paper's networks and
  step, plus the categorical codes' information loss evaluated a second time, in both updates,
  on randomly rotated, sheared, rescaled and shifted copies of the fakes (`--cat-augment`; see
  augment.py for why). The continuous codes' losses stay on the undistorted fakes.
No dataset label is ever read here: batches come from `Dataset.batch`, which returns images only.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import dataclasses
import functools
import json
import math
import os
import shutil
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from . import checkpoint as ckpt
from .augment import random_affine
from .codes import CodeSpec
from .cudagraph import GraphedIteration
from .data import Dataset, load_dataset
from .errors import InfoganError
from .nets import NOISE_DIM, PRESETS, build_models, use_channels_last
from .sampling import grid_codes, save_grid, to_uint8

PRESET_DEFAULTS = {
    "tutorial": dict(codes="c1=cat:10", batch_size=64, lr_d=2e-4, lr_g=2e-4, adam_eps=1e-7),
    "paper": dict(codes="c1=cat:10,c2=unif:-1:1@0.1,c3=unif:-1:1@0.1", batch_size=128,
                  lr_d=2e-4, lr_g=1e-3, adam_eps=1e-8),
    "quality": dict(codes="c1=cat:10,c2=unif:-1:1@0.1,c3=unif:-1:1@0.1", batch_size=128,
                    lr_d=2e-4, lr_g=1e-3, adam_eps=1e-8, cat_augment=1.0),
}
ADAM_IMPLS = {"auto": {}, "for-loop": dict(foreach=False), "foreach": dict(foreach=True),
              "fused": dict(fused=True)}
# Fields that may change on --resume (budgets and reporting); every other field must match.
RESUMABLE_CHANGES = {"epochs", "steps", "minutes", "log_every", "sample_every", "save_every",
                     "threads", "progress", "stop_on_collapse", "data_dir", "device", "precision",
                     "channels_last", "compile", "cuda_graph", "adam_impl", "keep_best"}


@dataclass
class TrainConfig:
    """Every `infogan train` flag is a field (`--kebab-case` <-> snake_case). None = preset default."""

    preset: str = "tutorial"
    data: str = "mnist-5k"
    data_dir: str | None = None
    codes: str | None = None
    cont_loss: str = "nll"
    noise_dim: int | None = None
    batch_size: int | None = None
    lr_d: float | None = None
    lr_g: float | None = None
    beta1: float = 0.5
    beta2: float = 0.999
    adam_eps: float | None = None
    epochs: float | None = None
    steps: int | None = None
    minutes: float | None = None
    seed: int = 0
    log_every: int = 50
    sample_every: int | None = None      # default: every 10 epochs, as the tutorial
    save_every: int | None = None        # default: every 10 epochs, as the tutorial
    device: str = "auto"
    precision: str = "auto"              # auto: bf16 where the hardware has it (AMX, CUDA), else fp32
    channels_last: bool | None = None    # None: on with bf16 (where it is faster), off with fp32
    compile: bool = False
    cuda_graph: bool = False             # replay the whole iteration as one CUDA graph (cudagraph.py)
    adam_impl: str = "auto"              # auto (= fused), for-loop, foreach or fused
    threads: int | None = None
    exact: bool = False                  # the tutorial's arithmetic: D's trunk run twice in step 3
    d_bn_in_g_step: bool = False         # tutorial code's quirk: G's step also trains D's BatchNorm
    cat_augment: float | None = None     # strength of the distortions the cat codes' loss sees (0: off)
    stop_on_collapse: bool = False
    keep_best: str | None = None         # unsupervised or accuracy: keep the best checkpoint as `best`
    progress: bool = True

    @property
    def real_batch(self) -> int:
        """Real images per iteration: half the batch for `tutorial` (the other half is fakes),
        the whole batch for `paper` and `quality`."""
        return self.batch_size // 2 if self.preset == "tutorial" else self.batch_size

    def resolved(self, n_train: int) -> TrainConfig:
        """Fill preset defaults and budgets; validate. The result is what config.json stores."""
        if self.preset not in PRESETS:
            raise InfoganError(f"unknown preset '{self.preset}'; use one of {', '.join(PRESETS)}")
        c = dataclasses.replace(self)
        for k, v in PRESET_DEFAULTS[c.preset].items():
            if getattr(c, k) is None:
                setattr(c, k, v)
        if c.noise_dim is None:
            c.noise_dim = NOISE_DIM[c.preset]
        if c.cat_augment is None:
            c.cat_augment = 0.0
        if c.keep_best is not None:
            from .evaluate import CRITERIA
            if c.keep_best not in CRITERIA:
                raise InfoganError(f"unknown --keep-best criterion '{c.keep_best}'; use one of "
                                   f"{', '.join(CRITERIA)}")
            if not CodeSpec.parse(c.codes, c.cont_loss).categorical:
                raise InfoganError("--keep-best ranks checkpoints by the categorical code; "
                                   "add one to --codes (e.g. c1=cat:10)")
        if c.cat_augment < 0:
            raise InfoganError(f"--cat-augment must be 0 (off) or positive, got {c.cat_augment}")
        CodeSpec.parse(c.codes, c.cont_loss)  # validates the spec
        if c.adam_impl not in ADAM_IMPLS:
            raise InfoganError(f"unknown --adam-impl '{c.adam_impl}'; use one of {', '.join(ADAM_IMPLS)}")
        if c.precision not in ("auto", "fp32", "bf16"):
            raise InfoganError(f"unknown precision '{c.precision}'; use auto, fp32 or bf16")
        if c.device not in ("auto", "cpu", "cuda") and not c.device.startswith("cuda:"):
            raise InfoganError(f"unknown device '{c.device}'; use auto, cpu or cuda")
        # Speed options, resolved here so config.json records what actually ran. --exact keeps
        # the tutorial's arithmetic: fp32, D's trunk twice, one Adam update per tensor.
        if c.exact and c.precision == "bf16":
            raise InfoganError("--exact keeps the tutorial's fp32 arithmetic; drop --precision bf16")
        if c.precision == "auto":
            c.precision = "fp32" if c.exact else auto_precision(pick_device(c.device))
        if c.adam_impl == "auto":
            c.adam_impl = "for-loop" if c.exact else "fused"
        if c.cuda_graph:
            if c.compile:
                raise InfoganError("--compile and --cuda-graph cannot be combined; use one of them")
            if pick_device(c.device).type != "cuda":
                raise InfoganError("--cuda-graph needs a CUDA GPU (--device cuda); drop "
                                   "--cuda-graph to train on the CPU")
        if c.channels_last is None:
            # NHWC is the layout oneDNN's bf16 (AMX) convolutions run in; 1.13-1.15x a step here
            # (bench/RESULTS.md, throughput).
            # fp32 keeps NCHW, the reference layout (and --exact's).
            c.channels_last = c.precision == "bf16"
        for name in ("batch_size", "noise_dim", "log_every"):
            if getattr(c, name) < 1:
                raise InfoganError(f"--{name.replace('_', '-')} must be at least 1")
        if c.preset == "tutorial" and c.batch_size % 2:
            raise InfoganError("--batch-size must be even for the tutorial preset (half real, half fake)")
        per_epoch = max(1, n_train // c.batch_size)
        for name in ("epochs", "steps", "minutes"):
            v = getattr(c, name)
            if v is not None and v <= 0:
                raise InfoganError(f"--{name} must be positive, got {v}")
        if c.steps is None:
            c.steps = int(round((c.epochs if c.epochs is not None else 100) * per_epoch))
        c.sample_every = c.sample_every or 10 * per_epoch
        c.save_every = c.save_every or 10 * per_epoch
        return c


def config_from_dict(d: dict) -> TrainConfig:
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise InfoganError(f"config has unknown keys {unknown}: it was written by another version "
                           "of infogan; train a new run")
    return TrainConfig(**d)


def model_fingerprint(cfg: TrainConfig, image_shape) -> dict:
    """What a checkpoint must agree on to be loaded into these models."""
    return {"preset": cfg.preset, "codes": str(CodeSpec.parse(cfg.codes, cfg.cont_loss)),
            "cont_loss": cfg.cont_loss, "noise_dim": cfg.noise_dim, "image_shape": list(image_shape)}


def auto_precision(device: torch.device) -> str:
    """bf16 where the hardware does bf16 matmuls natively (CUDA with bf16, CPUs with AMX or
    AVX512-BF16: 2.2-2.6x faster here, bench/RESULTS.md), else fp32."""
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "fp32"
    return "bf16" if ("amx_bf16" in flags or "avx512_bf16" in flags) else "fp32"


_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse instead of handing it back to the OS.

    Why: every step allocates and frees the same few-MB activation and weight-copy buffers.
    With glibc's defaults each one above 128 KiB is a fresh mmap, handed back on free, and the
    first write to each of its 4 KiB pages faults. Serving them from a heap that is not trimmed
    makes a tutorial step 1.07x faster here (bench/allocator.py, bench/RESULTS.md).
    Process-wide and harmless: freed memory stays with the process, for its own reuse.
    A no-op (False) where the C library is not glibc, or with INFOGAN_KEEP_FREED_MEMORY=0 (for
    measuring what it buys)."""
    if os.environ.get("INFOGAN_KEEP_FREED_MEMORY", "1") == "0":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return all(mallopt(opt, val) == 1 for opt, val in (
        (_M_MMAP_THRESHOLD, 32 << 20), (_M_TRIM_THRESHOLD, 1 << 30), (_M_TOP_PAD, 64 << 20)))


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InfoganError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu")
    return torch.device(name)


# ---- one training iteration ----------------------------------------------------------------


@dataclass
class Trainer:
    """The pieces one step needs. Not a framework: `train_step` reads them, the loop owns them."""

    cfg: TrainConfig
    spec: CodeSpec
    G: torch.nn.Module
    D: torch.nn.Module
    opt_d: torch.optim.Optimizer
    opt_g: torch.optim.Optimizer
    gen: torch.Generator
    device: torch.device
    step: int = 0
    raw_G: torch.nn.Module = None  # the unwrapped modules (for saving, freezing, eval mode)
    raw_D: torch.nn.Module = None
    frozen_in_g: list = field(default_factory=list)  # D's parameters the G step must not move

    def autocast(self):
        if self.cfg.precision == "bf16":
            # A CUDA graph must not keep autocast's weight casts cached across its capture.
            return torch.autocast(self.device.type, dtype=torch.bfloat16,
                                  cache_enabled=False if self.cfg.cuda_graph else None)
        return contextlib.nullcontext()

    def to_device(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.cfg.channels_last else x

    def noise(self, n: int):
        c = self.spec.sample(n, self.gen, self.device)
        z = torch.randn(n, self.cfg.noise_dim, generator=self.gen, device=self.device)
        return torch.cat([z, self.spec.to_g_input(c)], dim=1), c


def build_trainer(cfg: TrainConfig, image_shape) -> Trainer:
    """Models and optimisers for a resolved config; init weights from cfg.seed."""
    device = pick_device(cfg.device)
    if device.type == "cpu":
        keep_freed_memory()
    spec = CodeSpec.parse(cfg.codes, cfg.cont_loss)
    torch.manual_seed(cfg.seed)
    G, D = build_models(cfg.preset, image_shape, spec, cfg.noise_dim)
    G, D = G.to(device), D.to(device)
    if cfg.channels_last:
        use_channels_last(G, D)
    betas, eps = (cfg.beta1, cfg.beta2), cfg.adam_eps
    if cfg.preset == "tutorial":
        d_params = [*D.trunk.parameters(), *D.d_head.parameters()]
        g_params = [*G.parameters(), *D.q_head.parameters()]
        # The tutorial's Keras code freezes every D layer except BatchNormalization for the
        # composite model; SEED_NOTES and our default freeze them all. The flag restores the
        # code's behaviour: D's BatchNorm scales and shifts are trained by G's loss too.
        d_bn = [p for m in D.trunk if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                for p in m.parameters()] if cfg.d_bn_in_g_step else []
        g_params += d_bn
        frozen_in_g = [p for p in d_params if all(p is not q for q in d_bn)]
    else:
        d_params = list(D.parameters())
        g_params = list(G.parameters())
        frozen_in_g = d_params
    impl = dict(ADAM_IMPLS[cfg.adam_impl])
    if cfg.cuda_graph:
        impl["capturable"] = True   # Adam's step count on the GPU, so a graph can replay it
    opt_d = torch.optim.Adam(d_params, lr=cfg.lr_d, betas=betas, eps=eps, **impl)
    opt_g = torch.optim.Adam(g_params, lr=cfg.lr_g, betas=betas, eps=eps, **impl)
    gen = torch.Generator(device=device).manual_seed(cfg.seed + 1)
    if cfg.compile:
        # D's forward is called in several modes (with or without Q's head, frozen or not,
        # G in train or eval mode): give each its graph rather than falling back to eager.
        from torch._dynamo import config as dynamo_config
        dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, 64)
    fG, fD = (torch.compile(G), torch.compile(D)) if cfg.compile else (G, D)
    return Trainer(cfg, spec, fG, fD, opt_d, opt_g, gen, device, raw_G=G, raw_D=D,
                   frozen_in_g=frozen_in_g)


@contextlib.contextmanager
def frozen(*items):
    """Parameters (of modules, or given directly) get no gradient inside; forward still runs and
    BatchNorm stays in train mode."""
    params = [p for it in items for p in (it.parameters() if isinstance(it, torch.nn.Module) else it)
              if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    """Binary cross-entropy on logits against a constant target (1 real, 0 fake)."""
    logits = logits.float()
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def train_step(t: Trainer, x_real: torch.Tensor) -> dict[str, torch.Tensor]:
    """One iteration of the configured preset. x_real: (b, C, H, W) in [-1, 1] on t.device
    (b = batch/2 for `tutorial`, batch for `paper`). Returns detached scalar tensors: no host
    sync happens here."""
    if t.cfg.preset == "tutorial":
        return _tutorial_step(t, x_real)
    return _paper_step(t, x_real)   # paper and quality (which adds --cat-augment)


def iteration(t: Trainer, data: Dataset, n_real: int) -> dict[str, torch.Tensor]:
    """One iteration as the loop runs it: `n_real` real images drawn by random index (t.gen) from
    `data`, which lives on t.device, then `train_step`. No host sync, so a CUDA graph can hold it."""
    idx = torch.randint(0, len(data), (n_real,), generator=t.gen, device=t.device)
    return train_step(t, t.to_device(data.batch(idx)))


def _d_update(t: Trainer, x: torch.Tensor, target: float) -> torch.Tensor:
    """One optimiser step of D (trunk + D head) on a batch of one kind, real or fake."""
    t.opt_d.zero_grad(set_to_none=True)
    with t.autocast():
        d, _ = t.D(x, with_q=False)
    loss = _bce(d, target)
    loss.backward()
    t.opt_d.step()
    return loss


def _tutorial_step(t: Trainer, x_real):
    G, D, rG = t.G, t.D, t.raw_G
    half, n = x_real.shape[0], t.cfg.batch_size
    # (1) D on real images, target 1. Only the trunk and the D head are in opt_d.
    loss_real = _d_update(t, x_real, 1.0)
    # (2) D on generated images from G in inference mode, target 0.
    g_in, _ = t.noise(half)
    rG.eval()
    with torch.no_grad(), t.autocast():
        x_fake = G(g_in)
    rG.train()
    loss_fake = _d_update(t, x_fake, 0.0)
    # (3) G and Q's head on fresh samples: target 1 for D, the true codes for Q; D frozen.
    g_in, c = t.noise(n)
    t.opt_g.zero_grad(set_to_none=True)
    with frozen(t.frozen_in_g), t.autocast():
        d_out, q_out = D(G(g_in), trunk_twice=t.cfg.exact)
    loss_gan = _bce(d_out, 1.0)
    info, _, bounds = t.spec.info_losses(q_out, c)
    (loss_gan + info).backward()
    t.opt_g.step()
    return _report(loss_real, loss_fake, loss_gan, info, bounds)


def _paper_step(t: Trainer, x_real):
    G, D = t.G, t.D
    g_in, c = t.noise(x_real.shape[0])
    with t.autocast():
        x_fake = G(g_in)
    # D + Q: real/fake plus the information loss, which reaches the shared trunk here.
    t.opt_d.zero_grad(set_to_none=True)
    with t.autocast():
        d_real, _ = D(x_real, with_q=False)
        d_fake, q_fake = D(x_fake.detach())
    loss_real, loss_fake = _bce(d_real, 1.0), _bce(d_fake, 0.0)
    info_d, _, _ = t.spec.info_losses(q_fake, c)
    info_d = info_d + _augmented_cat_loss(t, x_fake.detach(), c)
    (loss_real + loss_fake + info_d).backward()
    t.opt_d.step()
    # G: fool the updated D and keep the codes recoverable by the updated Q.
    t.opt_g.zero_grad(set_to_none=True)
    with frozen(t.frozen_in_g), t.autocast():
        d_out, q_out = D(x_fake)
        loss_aug = _augmented_cat_loss(t, x_fake, c)
    loss_gan = _bce(d_out, 1.0)
    info, _, bounds = t.spec.info_losses(q_out, c)
    (loss_gan + info + loss_aug).backward()
    t.opt_g.step()
    out = _report(loss_real, loss_fake, loss_gan, info, bounds)
    if t.cfg.cat_augment and t.spec.categorical:
        out["q_aug"] = loss_aug.detach()   # the distorted fakes' categorical loss, in the log
    return out


def _augmented_cat_loss(t: Trainer, x_fake: torch.Tensor, c: dict) -> torch.Tensor:
    """The categorical codes' information loss once more, on randomly distorted copies of the
    fakes (`--cat-augment`, see augment.py); zero when off or when no code is categorical."""
    if not t.cfg.cat_augment or not t.spec.categorical:
        return x_fake.new_zeros((), dtype=torch.float32)
    x_aug = random_affine(x_fake.float(), t.gen, t.cfg.cat_augment).to(x_fake.dtype)
    with t.autocast():
        _, q_aug = t.D(x_aug)
    loss, _, _ = t.spec.info_losses(q_aug, c, kinds=("cat",))
    return loss


def _report(loss_real, loss_fake, loss_gan, info, bounds) -> dict[str, torch.Tensor]:
    out = {"d_real": loss_real, "d_fake": loss_fake, "g": loss_gan, "q": info}
    out.update({f"mi_{k}": v for k, v in bounds.items()})
    return {k: v.detach() for k, v in out.items()}


# ---- the loop ----------------------------------------------------------------------------


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    checkpoint: Path
    grid: Path | None
    last: dict = field(default_factory=dict)   # the last logged means
    sec_per_iter: float = float("nan")
    warnings: list = field(default_factory=list)
    best: dict | None = None                   # best.json when --keep-best


def _rng_state(t: Trainer) -> dict:
    return {"gen": t.gen.get_state(), "torch": torch.get_rng_state()}


def _state(t: Trainer) -> dict:
    return {"step": t.step, "opt_d": t.opt_d.state_dict(), "opt_g": t.opt_g.state_dict(),
            **_rng_state(t)}


def _resume_config(changes: TrainConfig | dict | None, run_dir: Path) -> TrainConfig:
    """The saved config of `run_dir` with the changes a resume may make.

    `changes` is a TrainConfig (it must describe the same model; its budgets, reporting and
    speed options apply), a dict of the fields to change (what the CLI passes: the flags given),
    or None (continue exactly as saved).
    """
    config_path = run_dir / "config.json"
    saved = ckpt.read_json(config_path, "config")
    if saved.get("format_version") != ckpt.FORMAT_VERSION:
        raise InfoganError(f"{config_path} has format_version {saved.get('format_version')}; "
                           f"this infogan reads {ckpt.FORMAT_VERSION}: train a new run")
    old = config_from_dict(saved["config"])
    n_train = saved["model"]["dataset_size"]
    if isinstance(changes, TrainConfig):
        given = asdict(changes.resolved(n_train))
        if changes.steps is None and changes.epochs is None:
            given["steps"] = old.steps
    else:
        given = dict(changes or {})
        if "epochs" in given and "steps" not in given:
            given["steps"] = int(round(given["epochs"] * max(1, n_train // old.batch_size)))
    config_from_dict({k: v for k, v in given.items()})  # unknown names are an error
    if "codes" in given and str(CodeSpec.parse(given["codes"])) == str(CodeSpec.parse(old.codes)):
        given["codes"] = old.codes
    clash = sorted(k for k, v in given.items() if k not in RESUMABLE_CHANGES and v != getattr(old, k))
    if clash:
        raise InfoganError(f"--resume continues the run as configured; {', '.join(clash)} "
                           f"differ from {config_path}: drop them, or start over with --force")
    return dataclasses.replace(old, **{k: v for k, v in given.items() if k in RESUMABLE_CHANGES})


def train(cfg: TrainConfig | dict | None, run_dir, resume: bool = False, force: bool = False,
          log_fn=None) -> TrainResult:
    """Train the run in `run_dir`, or continue it (`resume`; see `_resume_config` for what `cfg`
    may be then). `log_fn(str)` receives the messages to show a person."""
    say = log_fn or (lambda s: None)
    run_dir = Path(run_dir)
    if resume:
        cfg = _resume_config(cfg, run_dir)
    elif run_dir.exists() and any(run_dir.iterdir()) and not force:
        raise InfoganError(f"run folder {run_dir} already exists; pass --resume to continue it "
                           "or --force to replace it")
    data = load_dataset(cfg.data, "train", cfg.data_dir)
    cfg = cfg.resolved(len(data))
    if not resume and run_dir.exists():
        shutil.rmtree(run_dir)  # --force, and only once the new config is known to be valid
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    t = build_trainer(cfg, data.image_shape)
    fingerprint = model_fingerprint(cfg, data.image_shape)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "samples").mkdir(exist_ok=True)
    meta = {"format_version": ckpt.FORMAT_VERSION, "config": asdict(cfg),
            "model": {"image_shape": list(data.image_shape), "fingerprint": fingerprint,
                      "dataset_size": len(data)}}
    if resume and (run_dir / "latest").exists():
        path = ckpt.resolve_checkpoint(run_dir, "latest")
        ckpt.load_weights(path, t.raw_G, t.raw_D, fingerprint)
        state = ckpt.load_state(path)
        t.opt_d.load_state_dict(state["opt_d"])
        t.opt_g.load_state_dict(state["opt_g"])
        t.gen.set_state(state["gen"])
        torch.set_rng_state(state["torch"])
        t.step = int(state["step"])
        say(f"resuming {run_dir} at step {t.step}")
    ckpt.write_json_atomic(run_dir / "config.json", meta)

    # The whole training split on the device as uint8 (N, C, H, W); its labels stay behind.
    train_set = Dataset(data.name, data.split, data.images.to(t.device), labels=None)
    n_real = cfg.real_batch
    per_epoch = max(1, len(data) // cfg.batch_size)
    grid_gen = torch.Generator().manual_seed(cfg.seed + 2)  # fixed grid codes, own stream
    grid_c, grid_rows = grid_codes(t.spec, 10, grid_gen)
    grid_z = torch.randn(10, cfg.noise_dim, generator=grid_gen).repeat(grid_rows, 1)
    grid_in = torch.cat([grid_z, t.spec.to_g_input(grid_c)], 1)

    # Checkpoints, grids and pointers are written by one background thread (in order): the loop
    # only copies the tensors (and renders the grid's 100 images), then goes on training.
    writer = ckpt.BackgroundWriter()

    def write_grid(step: int) -> Path:
        t.raw_G.eval()
        with torch.no_grad():
            x = to_uint8(t.raw_G(grid_in.to(t.device)).float())
        t.raw_G.train()
        path = run_dir / "samples" / f"{ckpt.step_name(step)}.png"
        # Only numpy and Pillow in the writer: a torch op there would start a second OpenMP
        # thread team that then competes with training (measured: 0.21 -> 0.26 s/iter).
        writer.submit(save_grid, x, path, nrow=10)
        return path

    best = _BestKeeper(cfg, run_dir, data, t, say) if cfg.keep_best else None

    def save() -> Path:
        snap = ckpt.snapshot(t.raw_G, t.raw_D, _state(t))
        writer.submit(ckpt.write_snapshot, run_dir, t.step, snap, fingerprint)
        path = run_dir / "checkpoints" / ckpt.step_name(t.step)
        if best is not None:
            rec = best.consider(path, writer)
            log.write(json.dumps({"step": t.step, "event": "score", **rec}) + "\n")
            log.flush()
        return path

    bar = None
    if cfg.progress:
        from tqdm import tqdm
        bar = tqdm(total=cfg.steps, initial=t.step, unit="it", dynamic_ncols=True, leave=True)
    result = TrainResult(run_dir, t.step, run_dir, None)
    window_sum, window_n, window_t0 = None, 0, time.perf_counter()
    step_times: list[float] = []
    monitor = CollapseMonitor()
    deadline = time.monotonic() + 60 * cfg.minutes if cfg.minutes else math.inf
    last_saved = t.step if resume else -1
    last_grid = -1
    run_iteration = functools.partial(iteration, t, train_set, n_real)
    if cfg.cuda_graph:
        run_iteration = GraphedIteration(run_iteration, t.gen)
    t0 = time.perf_counter()
    steps_done = 0
    log = open(run_dir / "log.jsonl", "a")
    try:
        while t.step < cfg.steps and time.monotonic() < deadline:
            losses = run_iteration()   # with --cuda-graph: static tensors, summed below at once
            t.step += 1
            steps_done += 1
            vec = torch.stack(list(losses.values()))
            window_sum = vec if window_sum is None else window_sum + vec
            window_n += 1
            if bar is not None:
                bar.update(1)
            if t.step % cfg.log_every == 0 or t.step == cfg.steps:
                means = dict(zip(losses, (window_sum / window_n).tolist()))  # the one host sync
                dt = (time.perf_counter() - window_t0) / window_n
                step_times.append(dt)
                rec = {"step": t.step, "epoch": round(t.step / per_epoch, 3), **means,
                       "sec_per_iter": dt}
                log.write(json.dumps(rec) + "\n")
                log.flush()
                result.last, result.sec_per_iter = rec, dt
                if bar is not None:
                    bar.set_postfix_str(_postfix(means, t.spec), refresh=False)
                for msg in monitor.check(t.step, means, step_times):
                    say(msg)
                    result.warnings.append(msg)
                    log.write(json.dumps({"step": t.step, "event": "warning", "message": msg}) + "\n")
                    if cfg.stop_on_collapse and monitor.collapsed:
                        deadline = 0
                window_sum, window_n, window_t0 = None, 0, time.perf_counter()
            if t.step % cfg.sample_every == 0:
                result.grid, last_grid = write_grid(t.step), t.step
            if t.step % cfg.save_every == 0:
                result.checkpoint, last_saved = save(), t.step
    except KeyboardInterrupt:
        # Keep the work done: save where we are (atomically, as always), then stop.
        if bar is not None:
            bar.close()
        if steps_done and last_saved != t.step:
            path = save()
            writer.close()
            say(f"interrupted at step {t.step}; saved {path}; continue with --resume")
        writer.close()
        log.close()
        raise
    except BaseException:
        writer.close()
        log.close()
        raise
    if bar is not None:
        bar.close()
    if steps_done:
        result.sec_per_iter = (time.perf_counter() - t0) / steps_done
    if last_saved != t.step:
        result.checkpoint = save()
    grid_path = run_dir / "samples" / f"{ckpt.step_name(t.step)}.png"
    result.grid = grid_path if last_grid == t.step or grid_path.exists() else write_grid(t.step)
    writer.close()   # everything is on disk before train returns
    log.close()
    result.checkpoint = ckpt.resolve_checkpoint(run_dir, "latest")
    if best is not None:
        result.best = best.record
    result.step = t.step
    return result


class _BestKeeper:
    """--keep-best: score every saved checkpoint (evaluate.selection_score, with the live
    weights switched to inference mode and back; no training state or random stream is touched) and point
    RUN/best at the highest. RUN/best.json keeps the score of each checkpoint."""

    def __init__(self, cfg: TrainConfig, run_dir: Path, data: Dataset, t: Trainer, say):
        self.cfg, self.run_dir, self.t, self.say = cfg, run_dir, t, say
        self.real_train = Dataset(data.name, data.split, data.images, labels=None)
        self.real_test = (load_dataset(cfg.data, "test", cfg.data_dir)
                          if cfg.keep_best == "accuracy" else None)
        path = run_dir / "best.json"
        self.record = ckpt.read_json(path, "best record") if path.exists() else None
        if self.record is not None and self.record.get("criterion") != cfg.keep_best:
            self.record = None   # a new criterion starts a new ranking

    def consider(self, ckpt_path: Path, writer: ckpt.BackgroundWriter) -> dict:
        """Score the live weights (those of the checkpoint being written to `ckpt_path`); the
        pointer and best.json are written by `writer`, after the checkpoint itself."""
        from .evaluate import selection_score
        from .model import InfoGAN

        G, D = self.t.raw_G, self.t.raw_D
        try:
            model = InfoGAN(self.cfg, self.real_train.image_shape, G, D, self.run_dir, ckpt_path)
            with torch.no_grad():
                sc = selection_score(model, self.cfg.keep_best, self.real_train, self.real_test)
        finally:
            G.train()
            D.train()
        rec = {"checkpoint": ckpt_path.name, **sc}
        history = (self.record or {}).get("history", []) + [rec]
        improved = self.record is None or sc["score"] > self.record["score"]
        if improved:
            self.record = {"criterion": self.cfg.keep_best, "checkpoint": ckpt_path.name,
                           "score": sc["score"], "details": sc}
        self.record["history"] = history
        record = json.loads(json.dumps(self.record))   # the writer gets its own copy
        if improved:
            writer.submit(ckpt.write_text_atomic, self.run_dir / "best", ckpt_path.name + "\n")
        writer.submit(ckpt.write_json_atomic, self.run_dir / "best.json", record)
        return rec


def _postfix(means: dict, spec: CodeSpec) -> str:
    parts = [f"d[{means['d_real']:.3f},{means['d_fake']:.3f}]", f"g[{means['g']:.3f}]",
             f"q[{means['q']:.3f}]"]
    parts += [f"I({c.name})={means['mi_' + c.name]:.2f}/{c.entropy():.2f}" for c in spec]
    return " ".join(parts)


class CollapseMonitor:
    """Warns when a run has failed the way GANs fail, and when step time jumps.

    Collapse, as the tutorial describes it: D's loss may start at 0 but should rise; D stuck
    near 0 for long is a failed run, to be restarted. We flag it once D's mean loss has stayed
    under `d_floor` for `patience_steps` iterations. (A high G loss alone is not failure: the
    tutorial preset's G loss sits near 5 on good runs.)
    """

    def __init__(self, d_floor: float = 0.01, patience_steps: int = 2000):
        self.d_floor, self.patience = d_floor, patience_steps
        self.low_since, self.collapsed, self.slow_warned = None, False, False

    def check(self, step: int, means: dict, step_times: list[float]) -> list[str]:
        msgs = []
        d = 0.5 * (means["d_real"] + means["d_fake"])
        if d >= self.d_floor:
            self.low_since = None
        elif self.low_since is None:
            self.low_since = step
        if (self.low_since is not None and step - self.low_since >= self.patience
                and not self.collapsed):
            self.collapsed = True
            msgs.append(f"step {step}: the run looks collapsed (D loss {d:.4f} < {self.d_floor} "
                        f"since step {self.low_since}, G loss {means['g']:.2f}): "
                        "restart with another --seed")
        if len(step_times) >= 6 and not self.slow_warned:
            ref = statistics.median(step_times[:-1])
            if step_times[-1] > 3 * ref:
                self.slow_warned = True
                msgs.append(f"step {step}: step time jumped from {ref:.3f} to {step_times[-1]:.3f} "
                            "s/iter; another process may be using the CPU cores")
        return msgs


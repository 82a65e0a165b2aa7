"""The run folder on disk.

    runs/NAME/
      config.json                 {"format_version": 1, "config": TrainConfig, "model": ModelInfo}
      log.jsonl                   one JSON object per logged step
      samples/step-000937.png     grids
      checkpoints/step-000937/    generator.safetensors, discriminator.safetensors, state.pt
      latest                      the name of the newest complete checkpoint ("step-000937")
      best, best.json             with --keep-best: the best checkpoint's name, and every score
      labels.json                 code value -> dataset label (infogan label)
      plots/                      losses.png, traverse-NAME.png

Every write is atomic: a checkpoint is written into a temporary folder that is renamed into place
once complete, and `latest` (like config.json) is replaced by rename, so a crash leaves the
previous checkpoint intact. Weights are safetensors (no code runs on load); the resumable state
(optimisers, RNG, step) is a dict of tensors and plain values loaded with
`torch.load(weights_only=True)`. Only the newest checkpoint keeps its state.pt: older ones keep
their weights, so any of them can still be loaded and compared, at a third of the disk.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import InfoganError

FORMAT_VERSION = 1
G_FILE, D_FILE, STATE_FILE = "generator.safetensors", "discriminator.safetensors", "state.pt"


def write_text_atomic(path: Path, text: str) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, obj) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: Path, what: str) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InfoganError(f"{path} is missing: is {Path(path).parent} an infogan run folder?") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InfoganError(f"{what} {path} is corrupt ({e.msg if hasattr(e, 'msg') else e}); "
                           "restore it or train a new run") from None


def step_name(step: int) -> str:
    return f"step-{step:06d}"


def unwrap(module: torch.nn.Module) -> torch.nn.Module:
    """The plain module under a compiled or DDP wrapper (their state-dict keys carry prefixes)."""
    module = getattr(module, "_orig_mod", module)
    if isinstance(module, torch.nn.parallel.DistributedDataParallel):
        module = module.module
    return getattr(module, "_orig_mod", module)


def _cpu_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    # clone: on the CPU .to("cpu") is the live tensor, and training goes on while a snapshot is written
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in unwrap(module).state_dict().items()}


def _copy_tree(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _copy_tree(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_copy_tree(v) for v in obj)
    return obj


def snapshot(G, D, state: dict) -> tuple[dict, dict, dict]:
    """Copies of everything a checkpoint holds, so that writing it can overlap training."""
    return _cpu_state(G), _cpu_state(D), _copy_tree(state)


def save_checkpoint(run_dir: Path, step: int, G, D, state: dict, fingerprint: dict) -> Path:
    """Write checkpoints/step-XXXXXX atomically, point `latest` at it, prune older state files."""
    return write_snapshot(run_dir, step, snapshot(G, D, state), fingerprint)


def write_snapshot(run_dir: Path, step: int, snap: tuple[dict, dict, dict], fingerprint: dict) -> Path:
    g_state, d_state, state = snap
    ckdir = Path(run_dir) / "checkpoints"
    ckdir.mkdir(parents=True, exist_ok=True)
    final = ckdir / step_name(step)
    tmp = Path(tempfile.mkdtemp(dir=ckdir, prefix=f".tmp-{step_name(step)}-"))
    meta = {"format_version": str(FORMAT_VERSION), "fingerprint": json.dumps(fingerprint, sort_keys=True)}
    try:
        save_file(g_state, str(tmp / G_FILE), metadata=meta)
        save_file(d_state, str(tmp / D_FILE), metadata=meta)
        torch.save(state, tmp / STATE_FILE)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    write_text_atomic(Path(run_dir) / "latest", final.name + "\n")
    for old in ckdir.glob("step-*"):
        if old != final and (old / STATE_FILE).exists():
            (old / STATE_FILE).unlink()
    return final


class BackgroundWriter:
    """One worker thread that writes checkpoints, grids and pointers in the order given, so
    that the training loop does not wait on the disk (or PNG compression). An error in a write
    is raised at the next submit or at wait()."""

    def __init__(self):
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="infogan-writer")
        self._pending = []

    def _reap(self, block: bool) -> None:
        keep = []
        for f in self._pending:
            if block or f.done():
                f.result()   # re-raises the writer's exception here, in the training thread
            else:
                keep.append(f)
        self._pending = keep

    def submit(self, fn, *args, **kwargs):
        self._reap(block=False)
        fut = self._pool.submit(fn, *args, **kwargs)
        self._pending.append(fut)
        return fut

    def wait(self) -> None:
        self._reap(block=True)

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._pool.shutdown(wait=True)


def resolve_checkpoint(run_dir: Path, which: str = "latest") -> Path:
    """'latest', 'best', a folder name such as 'step-000937', or a step number."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InfoganError(f"run folder {run_dir} does not exist; train one with 'infogan train'")
    if which in ("latest", "best"):
        pointer = run_dir / which
        if not pointer.exists():
            if which == "best":
                raise InfoganError(f"{run_dir} has no 'best' checkpoint; train with --keep-best "
                                   "or pass --checkpoint latest")
            raise InfoganError(f"{run_dir} has no checkpoint yet ('latest' is missing); "
                               "train it, or resume it with 'infogan train --resume'")
        which = pointer.read_text().strip()
    elif which.isdigit():
        which = step_name(int(which))
    path = run_dir / "checkpoints" / which
    if not (path / G_FILE).exists() or not (path / D_FILE).exists():
        have = sorted(p.name for p in (run_dir / "checkpoints").glob("step-*"))
        raise InfoganError(f"checkpoint {path} is missing or incomplete; available: "
                           f"{', '.join(have) or 'none'}")
    return path


def _load_safetensors(path: Path, fingerprint: dict) -> dict[str, torch.Tensor]:
    try:
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise InfoganError(f"{path} is not a readable safetensors file ({e}); "
                           "restore it or load another checkpoint") from None
    theirs = meta.get("fingerprint")
    if theirs is not None and json.loads(theirs) != fingerprint:
        raise InfoganError(f"{path} was written by another model ({theirs}), not this run's "
                           f"({json.dumps(fingerprint, sort_keys=True)}); point at the right run folder")
    return tensors


def load_weights(ckpt: Path, G, D, fingerprint: dict) -> None:
    for module, name in ((G, G_FILE), (D, D_FILE)):
        tensors = _load_safetensors(Path(ckpt) / name, fingerprint)
        try:
            unwrap(module).load_state_dict(tensors, strict=True)
        except RuntimeError as e:
            first = str(e).strip().splitlines()[1:2] or [str(e)]
            raise InfoganError(f"{Path(ckpt) / name} does not fit this model ({first[0].strip()}); "
                               "it comes from another model: point at the right run folder") from None


def load_state(ckpt: Path) -> dict:
    path = Path(ckpt) / STATE_FILE
    if not path.exists():
        raise InfoganError(f"{path} is missing: only the newest checkpoint can be resumed from")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable state is the same user problem
        raise InfoganError(f"{path} is corrupt ({type(e).__name__}); resume from another copy or "
                           "start over with --force") from None

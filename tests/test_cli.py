"""Every subcommand, and every bad input: one line on stderr, exit code 2, no traceback."""

from __future__ import annotations

import csv
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from infogan.cli import main
from infogan.data import write_idx


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def expect_error(capsys, words, *argv):
    code, out, err = run(capsys, *argv)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("infogan: error: "), err
    assert "Traceback" not in err
    for w in words.split("|"):
        assert w in lines[0], lines[0]
    return lines[0]


def idx_file(path, array, gz=False):
    return write_idx(path, np.asarray(array).astype(np.uint8), gz=gz)


def test_train_cli_writes_and_prints_paths(capsys, tmp_path):
    code, out, err = run(capsys, "train", tmp_path / "r", "--steps", 4, "--log-every", 2,
                         "--codes", "c1=cat:10,c2=unif@0.1", "--no-progress", "--batch-size", 16)
    assert code == 0, err
    assert "checkpoint:" in out and "grid:" in out and "I(c1)=" in out
    grid = tmp_path / "r" / "samples" / "step-000004.png"
    assert grid.exists() and str(grid) in out
    assert Image.open(grid).size == (2 * (10 * 30 + 2),) * 2       # 10 x 10, rows = c1 values
    assert (tmp_path / "r" / "labels.json").exists() and "labels:" in out  # made after training
    # resume for more steps
    code, out, err = run(capsys, "train", tmp_path / "r", "--resume", "--steps", 6, "--no-progress")
    assert code == 0, err and "step-000006" in out
    # an existing run is never overwritten silently
    expect_error(capsys, "already exists|--resume|--force", "train", tmp_path / "r", "--steps", 2)


def test_generate_png_and_npz(capsys, tiny_run, tmp_path):
    code, out, err = run(capsys, "generate", tiny_run, "--n", 25, "--nrow", 5, "--code", "c1=3",
                         "--seed", 0, "--out", tmp_path / "g.png")
    assert code == 0, err
    assert Image.open(tmp_path / "g.png").size == (2 * (5 * 30 + 2),) * 2
    code, out, err = run(capsys, "generate", tiny_run, "--n", 7, "--code", "c1=3", "--code", "c2=0.25",
                         "--out", tmp_path / "g.npz")
    assert code == 0, err
    f = np.load(tmp_path / "g.npz")
    assert f["images"].shape == (7, 1, 28, 28) and f["images"].dtype == np.uint8
    assert f["c1"].dtype == np.int64 and (f["c1"] == 3).all()
    assert f["c2"].dtype == np.float32 and (f["c2"] == 0.25).all()
    assert f["c3"].dtype == np.float32 and f["c3"].std() > 0


def test_traverse(capsys, tiny_run, tmp_path):
    code, out, err = run(capsys, "traverse", tiny_run, "--code", "c2", "--from", -2, "--to", 2,
                         "--steps", 7, "--out", tmp_path / "t.png")
    assert code == 0, err
    assert Image.open(tmp_path / "t.png").size == (2 * (7 * 30 + 2), 2 * (10 * 30 + 2))
    code, out, err = run(capsys, "traverse", tiny_run, "--code", "c1", "--from", 0, "--to", 9,
                         "--steps", 10, "--fix", "c2=0.5", "--out", tmp_path / "t1.png")
    assert code == 0, err


def test_encode_npz_npy_idx_csv(capsys, tiny_run, tmp_path):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (9, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "in.npz", images=imgs[:, None])
    np.save(tmp_path / "in.npy", imgs)
    idx_file(tmp_path / "in-idx3-ubyte.gz", imgs, gz=True)
    idx_file(tmp_path / "in-idx3-ubyte", imgs)
    results = []
    for src in ("in.npz", "in.npy", "in-idx3-ubyte.gz", "in-idx3-ubyte"):
        code, out, err = run(capsys, "encode", tiny_run, tmp_path / src, "--out", tmp_path / "p.npz")
        assert code == 0, err
        f = dict(np.load(tmp_path / "p.npz"))
        assert f["c1"].shape == (9,) and f["c1_probs"].shape == (9, 10)
        assert f["c2_mean"].shape == (9,) and f["c3_std"].shape == (9,)
        results.append(f["c1_probs"])
    for r in results[1:]:
        np.testing.assert_allclose(r, results[0], rtol=1e-6)
    code, out, err = run(capsys, "encode", tiny_run, tmp_path / "in.npy", "--out", tmp_path / "p.csv")
    assert code == 0, err
    rows = list(csv.reader(open(tmp_path / "p.csv")))
    assert rows[0][:3] == ["c1", "c1_p0", "c1_p1"] and "c2_mean" in rows[0] and len(rows) == 10


@pytest.mark.parametrize("argv, words", [
    (["train", "{tmp}/x", "--preset", "dcgan"], "unknown preset 'dcgan'"),
    (["train", "{tmp}/x", "--codes", "c1=cat:1"], "K >= 2"),
    (["train", "{tmp}/x", "--codes", "c1=unif:1:-1"], "empty or reversed"),
    (["train", "{tmp}/x", "--codes", "c1=zipf:3"], "unknown code type"),
    (["train", "{tmp}/x", "--data", "idx:{tmp}/missing-idx3-ubyte"], "missing-idx3-ubyte"),
    (["train", "{tmp}/x", "--data", "idx:{tmp}/badmagic-idx3-ubyte"], "magic"),
    (["train", "{tmp}/x", "--data", "idx:{tmp}/short-idx3-ubyte"], "truncated"),
    (["train", "{tmp}/x", "--data", "cifar"], "unknown dataset"),
    (["train", "{tmp}/x", "--data", "mnist", "--data-dir", "{tmp}"], "--data-dir"),
    (["train", "{tmp}/x", "--cuda-graph", "--compile"], "cannot be combined"),
    (["generate", "{run}", "--n", "0", "--out", "{tmp}/a.png"], "--n must be positive"),
    (["generate", "{run}", "--n", "-4", "--out", "{tmp}/a.png"], "--n must be positive"),
    (["generate", "{run}", "--code", "c1=12", "--out", "{tmp}/a.png"], "out of range"),
    (["generate", "{run}", "--code", "c1=1.5", "--out", "{tmp}/a.png"], "out of range"),
    (["generate", "{run}", "--code", "digit=1", "--out", "{tmp}/a.png"], "unknown code 'digit'"),
    (["generate", "{run}", "--code", "c1", "--out", "{tmp}/a.png"], "NAME=VALUE"),
    (["generate", "{run}", "--out", "{tmp}/a.gif"], ".png"),
    (["generate", "{tmp}/norun", "--out", "{tmp}/a.png"], "does not exist"),
    (["generate", "{run}", "--checkpoint", "step-000777", "--out", "{tmp}/a.png"], "missing or incomplete"),
    (["traverse", "{run}", "--code", "c9", "--out", "{tmp}/t.png"], "unknown code 'c9'"),
    (["traverse", "{run}", "--code", "c2", "--steps", "1", "--out", "{tmp}/t.png"], "at least 2"),
    (["encode", "{run}", "{tmp}/wrong.npy", "--out", "{tmp}/p.npz"], "shape (3, 32, 32)"),
    (["encode", "{run}", "{tmp}/nothere.npz", "--out", "{tmp}/p.npz"], "does not exist"),
    (["encode", "{run}", "{tmp}/badmagic-idx3-ubyte", "--out", "{tmp}/p.npz"], "magic"),
    (["encode", "{run}", "{tmp}/wrong.npy", "--out", "{tmp}/p.txt"], ".npz or .csv"),
])
def test_bad_input_is_one_line(capsys, tiny_run, tmp_path, argv, words):
    np.save(tmp_path / "wrong.npy", np.zeros((3, 32, 32), np.uint8))
    idx = bytes([0, 0, 8, 3]) + struct.pack(">3I", 4, 28, 28)
    (tmp_path / "badmagic-idx3-ubyte").write_bytes(b"\x01\x02" + idx[2:] + bytes(4 * 784))
    (tmp_path / "short-idx3-ubyte").write_bytes(idx + bytes(100))
    argv = [a.format(tmp=tmp_path, run=tiny_run) for a in argv]
    expect_error(capsys, words, *argv)


def test_run_from_another_model_via_cli(capsys, tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    cfg = (run / "config.json").read_text().replace("c1=cat:10", "c1=cat:7")
    (run / "config.json").write_text(cfg)
    expect_error(capsys, "another model", "generate", run, "--out", tmp_path / "a.png")


def test_console_script_and_module_entry_points(tiny_run, tmp_path):
    for cmd in ([sys.executable, "-m", "infogan"], [str(Path(sys.executable).parent / "infogan")]):
        ok = subprocess.run([*cmd, "generate", str(tiny_run), "--n", "4", "--out", str(tmp_path / "a.png")],
                            capture_output=True, text=True)
        assert ok.returncode == 0, ok.stderr
        bad = subprocess.run([*cmd, "generate", str(tiny_run), "--code", "c1=99", "--out",
                              str(tmp_path / "a.png")], capture_output=True, text=True)
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    help_ = subprocess.run([sys.executable, "-m", "infogan", "train", "--help"], capture_output=True, text=True)
    for flag in ("--codes", "--preset", "--epochs", "--steps", "--minutes", "--resume", "--force",
                 "--log-every", "--sample-every", "--save-every", "--cont-loss", "--precision"):
        assert flag in help_.stdout

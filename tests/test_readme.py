"""The README's examples run: its Python blocks, and its command-line block (training shortened)."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import numpy as np

from infogan.cli import main

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def blocks(lang):
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_readme_gives_the_two_commands_first():
    first = blocks("bash")[0]
    assert "make run" in first and "make test" in first


def test_python_examples_run(tiny_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(tiny_run, tmp_path / "runs" / "tutorial")
    code = blocks("python")
    assert code, "the README has no Python example"
    for block in code:
        exec(compile(block, "README.md", "exec"), {})
    assert (tmp_path / "threes.png").exists()


def test_command_line_examples_run(tiny_run, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    np.savez(tmp_path / "digits.npz", images=np.zeros((3, 1, 28, 28), np.uint8))
    cli = next(b for b in blocks("bash") if "infogan generate" in b)
    lines = [l.split("#")[0].strip() for l in cli.splitlines()]
    lines = [l for l in lines if l.startswith("infogan ")]
    assert len(lines) >= 8
    for line in lines:
        argv = shlex.split(line)[1:]
        if argv[0] == "train":  # the documented budgets take minutes; keep the flags, cut the run
            argv += ["--steps", "3" if "--resume" not in argv else "6", "--no-progress",
                     "--batch-size", "16"]
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 0, (line, err)

"""Smoke runs of ``hmarl random`` in a subprocess, as a user types it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HMARL = Path(sys.executable).with_name("hmarl")


def hmarl(*args: str) -> subprocess.CompletedProcess[str]:
    command = [str(HMARL)] if HMARL.exists() else [sys.executable, "-m", "hmarl.cli"]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize(
    "args",
    [
        ("random", "--episodes", "2"),
        ("random", "--policy", "oracle", "--num-robots", "3", "--num-chickens", "4"),
    ],
    ids=["random", "oracle"],
)
def test_random_runs(args: tuple[str, ...]) -> None:
    result = hmarl(*args)
    assert result.returncode == 0, result.stderr
    assert "mean compatibility" in result.stdout
    assert "episode seed 0" in result.stdout


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (("random", "--episodes", "0"), "--episodes: must be at least 1, got 0"),
        (("random", "--num-robots", "0"), "--num-robots: must be at least 1, got 0"),
        (("random", "--policy", "smart"), "invalid choice: 'smart'"),
    ],
    ids=["episodes", "num-robots", "policy"],
)
def test_bad_arguments_exit_2_with_one_line(args: tuple[str, ...], complaint: str) -> None:
    result = hmarl(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and complaint in errors[0], result.stderr

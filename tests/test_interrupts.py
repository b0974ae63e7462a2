"""Killed and interrupted runs, as a user meets them: real `hmarl train` processes.

``kill -9`` at several moments (right after an iteration's result, and a moment
later, while its checkpoint is being written), through Tune and without: no
half-written checkpoint is ever picked, ``--resume`` goes on from the newest
complete one with the next iteration number, and Ray's processes go with the run.
Ctrl-C (SIGINT to the whole process group, as a terminal sends it) ends the
command with "interrupted", the newest checkpoint and the command that continues the
run, and exit code 130, through Tune too.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from conftest import run_hmarl
from hmarl.checkpoints import find_checkpoints, read_marker

MODES = {"tune": [], "direct": ["--no-tune"]}


def start_training(tiny_config: Path, out: Path, mode: str) -> subprocess.Popen:
    """`hmarl train` in a session of its own, as a terminal would run it."""
    return subprocess.Popen(
        [
            *_command(),
            "train",
            "--config",
            str(tiny_config),
            "--stop-iters",
            "50",
            "--out",
            str(out),
            "--no-evaluate",
            "--progress-every",
            "0",
            *MODES[mode],
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _command() -> list[str]:
    from conftest import HMARL

    return [str(HMARL)]


def wait_for_iteration(process: subprocess.Popen, iteration: int) -> None:
    for line in process.stdout:
        if line.startswith(f"iter {iteration:>4}"):
            return
    raise AssertionError(f"the run ended before iteration {iteration}: {process.stderr.read()}")


def session_processes(session: int) -> list[str]:
    """The processes still running in a session (zombies are gone, just not reaped)."""
    alive = []
    for process in psutil.process_iter(["pid", "name", "status"]):
        try:
            if os.getsid(process.pid) == session and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{process.pid} {process.name()}")
        except (OSError, psutil.Error):
            continue
    return alive


def result_iterations(out: Path) -> list[int]:
    logs = sorted(out.rglob("result.json"), key=lambda p: p.stat().st_mtime)
    return [
        json.loads(line)["training_iteration"] for f in logs for line in f.read_text().splitlines()
    ]


@pytest.mark.parametrize(
    ("mode", "iteration", "delay"),
    [("tune", 1, 0.0), ("tune", 2, 0.05), ("direct", 2, 0.05)],
    ids=["tune-after-a-result", "tune-while-saving", "direct-while-saving"],
)
def test_kill_9_loses_at_most_the_iterations_since_the_last_checkpoint(
    mode: str, iteration: int, delay: float, tiny_config: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    process = start_training(tiny_config, out, mode)
    try:
        wait_for_iteration(process, iteration)
        time.sleep(delay)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()

    # Ray's processes (GCS, raylet, workers, the agents) follow within seconds.
    deadline = time.monotonic() + 20
    while session_processes(process.pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert session_processes(process.pid) == []

    checkpoints = find_checkpoints(out)  # complete ones only: each has its marker
    last = read_marker(checkpoints[-1])["iteration"] if checkpoints else 0
    assert last >= iteration - 1  # checkpoint_every = 1

    flags = MODES[mode]
    common = ["train", "--config", str(tiny_config), "--out", str(out), "--no-evaluate"]
    resumed = run_hmarl(*common, *flags, "--resume", "--stop-iters", str(last + 1))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"(iteration {last})" in resumed.stdout if last else "from the start" in resumed.stdout
    assert result_iterations(out)[-1] == last + 1
    assert read_marker(find_checkpoints(out)[-1])["iteration"] == last + 1


@pytest.mark.parametrize("mode", list(MODES))
def test_ctrl_c_says_interrupted_and_exits_130(mode: str, tiny_config: Path, tmp_path: Path):
    out = tmp_path / "run"
    process = start_training(tiny_config, out, mode)
    try:
        wait_for_iteration(process, 2)
        os.killpg(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr
    newest = find_checkpoints(out)[-1]
    assert stderr.strip().splitlines()[-1] == (
        f"hmarl train: interrupted: newest checkpoint {newest} (iteration "
        f"{read_marker(newest)['iteration']}); continue with `hmarl train --resume --out {out}`"
    )

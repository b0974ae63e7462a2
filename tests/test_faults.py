"""Faults during training: a failing env, with and without remote env runners."""

from __future__ import annotations

import json
from pathlib import Path

from hmarl.checkpoints import find_checkpoints, read_marker

# Two envs per runner, 40 env steps an iteration: each env makes 20 calls an
# iteration, so an env that fails on its 150th call fails in iteration 8.
FAILING = """
train_batch_size = 40
minibatch_size = 40
num_epochs = 1
num_envs_per_env_runner = 2
checkpoint_every = 2

[env]
{fault}
"""


def failing_config(tmp_path: Path, fail_at: int) -> Path:
    path = tmp_path / "failing.toml"
    path.write_text(FAILING.format(fault=f"fail_at = {fail_at}"))
    return path


def train_corridor(config: Path, out: Path, *flags: str) -> list[str]:
    """The arguments of `hmarl train` on the tiny task with a fault config."""
    task = ["--task", "tiny_task:TASK", "--config", str(config)]
    return ["train", *task, "--out", str(out), "--no-evaluate", *flags]


def test_without_remote_runners_the_run_stops_after_saving_its_last_good_state(
    tmp_path: Path, hmarl
) -> None:
    out = tmp_path / "run"
    config = failing_config(tmp_path, 150)
    common = train_corridor(config, out, "--no-tune")
    done = hmarl(*common, "--stop-iters", "30")
    assert done.returncode == 1, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "task corridor: step" in lines[0] and "acting: walker" in lines[0]
    assert "the corridor broke on call 150" in lines[0]
    stopped = [c for c in find_checkpoints(out) if c.name.endswith("_stopped")]
    assert len(stopped) == 1 and f"iteration {read_marker(stopped[0])['iteration']}" in lines[0]

    last = read_marker(stopped[0])["iteration"]
    resumed = hmarl(*common, "--resume", "--stop-iters", str(last + 2))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"(iteration {last})" in resumed.stdout
    assert read_marker(find_checkpoints(out)[-1])["iteration"] == last + 2


def test_remote_runners_recover_and_the_failures_are_counted(tmp_path: Path, hmarl) -> None:
    """Each runner's envs count their own calls (10 an iteration here): they fail around
    iterations 5 and 10, and the runners go on."""
    out = tmp_path / "run"
    config = failing_config(tmp_path, 50)
    done = hmarl(*train_corridor(config, out, "--num-env-runners", "2", "--stop-iters", "12"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stdout + done.stderr
    failed = [line for line in done.stdout.splitlines() if line.startswith("env runner failed")]
    assert failed and all("the corridor broke on call 50" in line for line in failed)
    assert len(failed) == len(set(failed))  # each distinct failure once
    (log,) = out.rglob("result.json")
    last = json.loads(log.read_text().splitlines()[-1])
    assert last["training_iteration"] == 12
    assert last["hmarl"]["env_runner_failures"] >= 1
    assert last["fault_tolerance"]["num_remote_worker_restarts"] >= 1  # RLlib restored them
    assert done.stderr.strip() == ""


def test_a_runner_process_that_dies_is_restarted_and_training_goes_on(
    tmp_path: Path, hmarl
) -> None:
    """One runner's process exits (``os._exit``) in iteration 3; RLlib restarts it."""
    config = tmp_path / "dying.toml"
    flag = tmp_path / "died"
    config.write_text(FAILING.format(fault=f'die_at = 50\ndie_flag = "{flag}"'))
    out = tmp_path / "run"
    # 20 iterations: RLlib 2.60 restores a restarted runner before a training step
    # (Algorithm._run_one_training_iteration calls restore_env_runners) once
    # its health probe answers, which on a loaded machine can take several tiny ones.
    done = hmarl(*train_corridor(config, out, "--num-env-runners", "2", "--stop-iters", "20"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert flag.exists()  # a runner did die
    assert "Traceback" not in done.stdout + done.stderr
    failed = [line for line in done.stdout.splitlines() if line.startswith("env runner failed")]
    assert failed, done.stdout[-3000:]
    (log,) = out.rglob("result.json")
    last = json.loads(log.read_text().splitlines()[-1])
    assert last["training_iteration"] == 20
    assert last["hmarl"]["env_runner_failures"] >= 1
    assert last["fault_tolerance"]["num_remote_worker_restarts"] >= 1
    assert last["fault_tolerance"]["num_healthy_workers"] == 2  # both sampling again
    assert last["env_runners"]["num_env_steps_sampled"] > 0

"""``hmarl random`` and ``hmarl tasks``: a smoke run in a subprocess, and bad input."""

from __future__ import annotations

import pytest


def test_random_runs_in_a_subprocess(hmarl) -> None:
    done = hmarl("random", "--episodes", "2")
    assert done.returncode == 0, done.stderr
    assert "mean compatibility" in done.stdout
    assert "episode seed 0" in done.stdout
    assert done.stderr.strip() == ""


def test_a_baseline_on_another_yard(cli) -> None:
    done = cli("random", "--policy", "oracle", "--num-robots", "3", "--num-chickens", "4")
    assert done.returncode == 0, done.stderr
    assert "robot_3_high" in done.stdout and "oracle" in done.stdout


def test_random_on_a_task_of_ones_own(cli) -> None:
    done = cli("random", "--task", "tiny_task:TASK", "--episodes", "3", "--limit", "5")
    assert done.returncode == 2 and "task corridor has no settings" in done.stderr
    done = cli("random", "--task", "tiny_task:TASK", "--episodes", "3")
    assert done.returncode == 0, done.stderr
    assert "planner" in done.stdout and "return planner" in done.stdout


def test_tasks_lists_the_built_in_ones(cli) -> None:
    done = cli("tasks")
    assert done.returncode == 0
    assert any(
        line.startswith("chicken_yard") and "built-in" in line for line in done.stdout.splitlines()
    )


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (("random", "--episodes", "0"), "--episodes: must be at least 1, got 0"),
        (("random", "--num-robots", "0"), "num_robots must be at least 1, got 0"),
        (("random", "--num-robots", "x"), "--num-robots"),
        (("random", "--policy", "smart"), "no policy 'smart'; choose random, oracle"),
        (("random", "--task", "nowhere"), "no task named 'nowhere'"),
        (("inspect",), "the following arguments are required"),
        (("plot", "x", "--num-robots", "2"), "unrecognized arguments: --num-robots"),
    ],
    ids=["episodes", "num-robots", "not-a-number", "policy", "task", "missing", "no-task-flags"],
)
def test_bad_arguments_exit_2_with_one_line(args: tuple[str, ...], complaint: str, cli) -> None:
    done = cli(*args)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and complaint in done.stderr, done.stderr


def test_random_names_an_observation_of_the_wrong_shape(cli) -> None:
    done = cli("random", "--task", "broken_tasks:WRONG_SHAPE")
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert "its env breaks the protocol: episode 0, step 1: walker's observation" in line

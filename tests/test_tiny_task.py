"""A task that is not the yard, end to end through the command line, as a user meets it.

The corridor (``tests/tiny_task.py``) declares only the three required fields. It
is loaded from a module in the working directory, trained through Tune (whose
trial runs in a Ray worker process, which must import the module too), and then
every tool works on the run folder without ``--task``. The run is the session
fixture ``corridor_run`` (``tests/conftest.py``), which ``test_export.py`` shares.
"""

from __future__ import annotations

import json
from pathlib import Path


def test_the_run_records_the_real_task(corridor_run: Path) -> None:
    record = json.loads((corridor_run / "runs/corridor/hmarl_run.json").read_text())
    assert record["task"] == "corridor" and record["task_ref"] == "my_corridor:TASK"


def test_evaluate_needs_no_task(corridor_run: Path, hmarl) -> None:
    done = hmarl("evaluate", "runs/corridor", "--episodes", "20", "--json", cwd=corridor_run)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["task"] == "corridor"
    assert set(result["policies"]) == {"trained", "random"}
    for policy in result["policies"].values():
        assert set(policy) == {"returns"} and set(policy["returns"]) == {"planner", "walker"}
    assert result["normalized_score"] is None  # the task declares no score


def test_inspect_plot_and_watch(corridor_run: Path, hmarl) -> None:
    inspected = hmarl("inspect", "runs/corridor", "--json", cwd=corridor_run)
    assert inspected.returncode == 0, inspected.stderr[-2000:]
    summaries = json.loads(inspected.stdout)
    assert set(summaries) == {"planner", "walker"}
    assert "DefaultPPOTorchRLModule" in summaries["planner"]["module_class"]

    plotted = hmarl("plot", "runs/corridor", "--out", "curves.png", cwd=corridor_run)
    assert plotted.returncode == 0, plotted.stderr[-2000:]
    assert (corridor_run / "curves.png").stat().st_size > 0

    watched = hmarl("watch", "runs/corridor", "--out", "walk.gif", cwd=corridor_run)
    assert watched.returncode == 0, watched.stderr[-2000:]
    assert (corridor_run / "walk.gif").stat().st_size > 0


def test_train_says_when_it_stops_how_it_evaluated_and_the_checkpoint_once(
    corridor_run: Path,
) -> None:
    lines = (corridor_run / "train.out").read_text().splitlines()
    assert lines[0] == (
        "training corridor into runs/corridor (Ray Tune); stops after 2 iterations or 600 s "
        "(the time budget, closing evaluation included), whichever comes first"
    )
    assert lines[-2].startswith("trained: greedy actions (its most likely one at each step;")
    assert [line for line in lines if line.startswith("checkpoint: ")] == [lines[-1]]
    record = json.loads((corridor_run / "runs/corridor/hmarl_run.json").read_text())
    assert record["stop"] == {"stop_iters": 2, "time_budget": 600.0}


def test_resume_continues_toward_the_runs_own_stop(corridor_run: Path, cli, monkeypatch) -> None:
    monkeypatch.chdir(corridor_run)
    done = cli("train", "--resume", "--out", "runs/corridor")
    assert done.returncode == 2
    assert "nothing to do: runs/corridor is at iteration 2 and its stop is --stop-iters 2" in (
        done.stderr
    )

"""The tools around a trained policy: evaluate, watch and inspect, on a tiny run of the yard."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from hmarl.checkpoints import (
    MARKER,
    MODULES_DIR,
    CheckpointError,
    find_checkpoints,
    read_marker,
    write_marker,
)
from hmarl.evaluation import compare, episode_seeds
from hmarl.runs import RECORD_FILE, checkpoints_of, load_trained

YARD_METRICS = {"mean_compatibility", "success_rate", "mean_steps"}


def spoil(path: Path) -> None:
    """Garbage of the same size: the checkpoint looks whole but does not load."""
    path.write_bytes(b"\x80" + b"\x00" * (path.stat().st_size - 1))


def test_evaluate_json_has_exactly_the_documented_keys(trained_run: Path, hmarl) -> None:
    done = hmarl("evaluate", str(trained_run), "--episodes", "50", "--seed", "7", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert set(result) == {
        "task",
        "episodes",
        "seed",
        "actions",
        "checkpoint",
        "policies",
        "normalized_score",
    }
    assert (result["task"], result["episodes"], result["seed"]) == ("chicken_yard", 50, 7)
    assert result["actions"] == "greedy"
    assert result["checkpoint"] == str(checkpoints_of(trained_run)[0])
    assert set(result["policies"]) == {"trained", "random", "oracle"}
    for metrics in result["policies"].values():
        assert set(metrics) == {"returns", *YARD_METRICS}
        assert set(metrics["returns"]) == {"high_level_policy", "low_level_policy"}
    oracle, random = result["policies"]["oracle"], result["policies"]["random"]
    assert oracle["success_rate"] == 1.0
    assert oracle["mean_compatibility"] > random["mean_compatibility"]
    expected = (
        result["policies"]["trained"]["mean_compatibility"] - random["mean_compatibility"]
    ) / (oracle["mean_compatibility"] - random["mean_compatibility"])
    assert result["normalized_score"] == pytest.approx(expected)


def test_evaluate_uses_the_env_the_policy_was_trained_on(trained_run: Path) -> None:
    trained = load_trained(trained_run)
    assert trained.env_config["timeout"] == 200  # the tiny run's, not the default 1000
    other = load_trained(trained_run, env_overrides={"num_robots": 3, "num_chickens": 6})
    assert (other.env_config["num_robots"], other.env_config["timeout"]) == (3, 200)


def test_evaluate_table_and_other_yards(trained_run: Path, hmarl) -> None:
    # The set-structured high level takes any number of chickens; robots share it.
    done = hmarl(
        "evaluate", str(trained_run), "--episodes", "20", "--num-robots", "3", "--num-chickens", "6"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    for word in ("trained", "random", "oracle", "normalised score"):
        assert word in done.stdout


def test_one_chicken_makes_the_score_undefined(trained_run: Path, hmarl) -> None:
    done = hmarl("evaluate", str(trained_run), "--episodes", "10", "--num-chickens", "1", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["normalized_score"] is None
    table = hmarl("evaluate", str(trained_run), "--episodes", "10", "--num-chickens", "1")
    assert "undefined: oracle and random score the same" in table.stdout


def test_watch_writes_a_gif_with_one_frame_per_step(trained_run: Path, tmp_path, hmarl):
    out = tmp_path / "episode.gif"
    done = hmarl("watch", str(trained_run), "--out", str(out), "--seed", "3")
    assert done.returncode == 0, done.stderr[-2000:]
    frames = int(done.stdout.split("(")[-1].split(" frames")[0])
    with Image.open(out) as gif:
        assert gif.n_frames == frames
    from hmarl.evaluation import play_episode

    trained = load_trained(trained_run)
    env = trained.task.make_env(trained.env_config)
    steps = play_episode(trained.task, env, trained.policy, 3).steps
    assert frames == min(steps + 1, 300)


def test_inspect_names_every_policy(trained_run: Path, hmarl) -> None:
    done = hmarl("inspect", str(trained_run), "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    summaries = json.loads(done.stdout)
    assert set(summaries) == {"high_level_policy", "low_level_policy"}
    assert summaries["high_level_policy"]["module_class"].endswith("ChickenSetModule")


def test_sampled_evaluation_is_seeded_and_says_so(trained_run: Path, cli) -> None:
    trained = load_trained(trained_run)
    seeds = episode_seeds(3, 10)
    short = trained.task.env_config_dict({**trained.env_config, "timeout": 30})  # it wanders

    def score(policy: Any) -> Any:
        return compare(trained.task, short, policy, seeds).policies["trained"]

    sampled = score(trained.policy.sampling(3))
    assert score(trained.policy.sampling(3)) == sampled != score(trained.policy)
    flags = ("--episodes", "5", "--timeout", "30", "--actions", "sampled", "--json")
    done = cli("evaluate", str(trained_run), *flags)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["actions"] == "sampled"


def test_a_changed_newest_checkpoint_is_skipped_and_named(trained_run: Path, tmp_path, cli):
    """Bytes 200-2000 of a module's state zeroed: the same size, but not what was saved."""
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    newest, older = checkpoints_of(run)[:2]
    state = newest / MODULES_DIR / "high_level_policy" / "module_state.pkl"
    data = bytearray(state.read_bytes())
    data[200:2000] = bytes(len(data[200:2000]))
    state.write_bytes(bytes(data))
    trained = load_trained(run)
    assert trained.source == older
    (note,) = trained.skipped
    assert note.startswith(str(newest)) and "SHA-256 differs" in note
    with pytest.raises(CheckpointError, match=r"incomplete checkpoint: .* SHA-256 differs"):
        load_trained(newest)
    done = cli("evaluate", str(run), "--episodes", "5")
    assert done.returncode == 0, done.stderr
    assert f"skipped an incomplete checkpoint: {newest}: " in done.stdout
    assert f"checkpoint: {older}" in done.stdout


def test_a_whole_checkpoint_that_does_not_load_falls_back(trained_run: Path, tmp_path) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    newest, older = checkpoints_of(run)[:2]
    spoil(newest / MODULES_DIR / "high_level_policy" / "module_state.pkl")
    write_marker(newest, read_marker(newest)["iteration"])  # saved that way: hashes match
    trained = load_trained(run)
    assert trained.source == older and "cannot load high_level_policy" in trained.skipped[0]
    with pytest.raises(CheckpointError, match="cannot load high_level_policy"):
        load_trained(newest)


def test_a_half_written_checkpoint_is_never_picked(trained_run: Path, tmp_path) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    newest, older = checkpoints_of(run)[:2]
    state = newest / MODULES_DIR / "low_level_policy" / "module_state.pkl"
    state.write_bytes(state.read_bytes()[:10])  # cut short: sizes no longer match the marker
    assert checkpoints_of(run)[0] == older
    assert load_trained(run).skipped == [
        f"{newest}: {state.relative_to(newest)} is 10 bytes, not the "
        f"{read_marker(newest)['files'][str(state.relative_to(newest))]} it was saved with"
    ]
    (older / MARKER).unlink()  # a save that never finished has no marker
    assert find_checkpoints(run) == []
    with pytest.raises(CheckpointError, match="holds no complete checkpoint"):
        load_trained(run)


@pytest.mark.parametrize("damage", ["truncated", "changed"])
def test_resume_falls_back_past_a_damaged_learner_state(damage: str, trained_run: Path, tmp_path):
    """Not only the modules: every file of a checkpoint must be whole for --resume to take it."""
    from hmarl.training import TrainConfig, plan

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    newest, older = checkpoints_of(run)[:2]
    state = newest / "learner_group" / "learner" / "state.pkl"  # the optimizer's state
    data = state.read_bytes()
    half = len(data) // 2
    changed = data[:half] + bytes(len(data) - half)  # zeros: the same size
    state.write_bytes(data[:half] if damage == "truncated" else changed)
    p = plan(TrainConfig(out=run, resume=True, stop_iters=9), check_env=False)
    assert p.start_from == older and p.start_iteration == read_marker(older)["iteration"]
    (note,) = p.skipped
    assert note.startswith(f"{newest}: learner_group/learner/state.pkl ")


@pytest.mark.parametrize("command", ["evaluate", "watch", "inspect"])
def test_bad_checkpoints_are_one_line_errors(
    command: str, trained_run: Path, tmp_path, cli
) -> None:
    checkpoint = checkpoints_of(trained_run)[0]
    empty = tmp_path / "empty"
    empty.mkdir()
    other_kind = tmp_path / "other" / "checkpoint_000001"
    shutil.copytree(checkpoint, other_kind)
    shutil.rmtree(other_kind / MODULES_DIR / "high_level_policy")
    truncated = tmp_path / "truncated" / "checkpoint_000001"
    shutil.copytree(checkpoint, truncated)
    (truncated / MODULES_DIR / "low_level_policy" / "module_state.pkl").write_bytes(b"")
    corrupt = tmp_path / "corrupt" / "checkpoint_000001"
    shutil.copytree(checkpoint, corrupt)
    shutil.copy(trained_run / RECORD_FILE, corrupt.parent)
    spoil(corrupt / MODULES_DIR / "low_level_policy" / "module_state.pkl")
    write_marker(corrupt, 1)  # saved corrupt: its hashes match, its pickle does not load
    changed = tmp_path / "changed" / "checkpoint_000001"
    shutil.copytree(checkpoint, changed)
    spoil(changed / MODULES_DIR / "low_level_policy" / "module_state.pkl")
    cases = {
        str(tmp_path / "missing"): "does not exist",
        str(empty): "not an hmarl run folder",
        str(other_kind): "incomplete checkpoint",
        str(truncated): "incomplete checkpoint",
        str(corrupt): "cannot load low_level_policy",
        str(changed): "incomplete checkpoint: learner_group/learner/rl_module/low_level_policy/"
        "module_state.pkl has changed since it was saved",
        str(checkpoint.parent.parent.parent): "not an hmarl run folder",
        "/tmp": "not an hmarl run folder",
    }
    extra = {"watch": ["--out", str(tmp_path / "x.gif")], "evaluate": ["--episodes", "5"]}
    for path, message in cases.items():
        done = cli(command, path, *extra.get(command, []))
        assert done.returncode == 2, (path, done.stderr)
        assert message in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["evaluate", "--episodes", "0"], "--episodes"),
        (["evaluate", "--episodes", "-3"], "--episodes"),
        (["evaluate", "--num-chickens", "0"], "num_chickens"),
        (["watch", "--out", "/nonexistent-dir/x.gif"], "/nonexistent-dir"),
        (["watch", "--out", "episode.txt"], ".txt"),
    ],
)
def test_bad_options_are_one_line_errors(args, message, trained_run: Path, cli):
    command, *rest = args
    done = cli(command, str(trained_run), *rest)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr

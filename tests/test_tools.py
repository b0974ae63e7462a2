"""The tools around a trained policy: evaluate and watch, on a checkpoint from a tiny run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from hmarl.checkpoints import MODULES_DIR, CheckpointError, load_policy, resolve_checkpoint

POLICY_KEYS = {"mean_compatibility", "success_rate", "mean_steps"}


def test_evaluate_json_has_exactly_the_documented_keys(trained_checkpoint: Path, hmarl) -> None:
    done = hmarl("evaluate", str(trained_checkpoint), "--episodes", "50", "--seed", "7", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert set(result) == {"episodes", "seed", "checkpoint", "policies", "normalized_score"}
    assert (result["episodes"], result["seed"]) == (50, 7)
    assert result["checkpoint"] == str(trained_checkpoint)
    assert set(result["policies"]) == {"trained", "random", "oracle"}
    for metrics in result["policies"].values():
        assert set(metrics) == POLICY_KEYS
    oracle, random = result["policies"]["oracle"], result["policies"]["random"]
    assert oracle["success_rate"] == 1.0
    assert oracle["mean_compatibility"] > random["mean_compatibility"]
    expected = (
        result["policies"]["trained"]["mean_compatibility"] - random["mean_compatibility"]
    ) / (oracle["mean_compatibility"] - random["mean_compatibility"])
    assert result["normalized_score"] == pytest.approx(expected)


def test_evaluate_table_and_other_yards(trained_run: Path, hmarl) -> None:
    # The set-structured high level takes any number of chickens; robots share it.
    done = hmarl("evaluate", str(trained_run), "--episodes", "20", "--num-robots", "3",
                 "--num-chickens", "6")  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    for word in ("trained", "random", "oracle", "normalised high-level score"):
        assert word in done.stdout


def test_watch_writes_a_gif_with_one_frame_per_step(trained_checkpoint: Path, tmp_path, hmarl):
    out = tmp_path / "episode.gif"
    done = hmarl("watch", str(trained_checkpoint), "--out", str(out), "--seed", "3")
    assert done.returncode == 0, done.stderr[-2000:]
    frames = int(done.stdout.split("(")[-1].split(" frames")[0])
    with Image.open(out) as gif:
        assert gif.n_frames == frames
    # One frame after reset and one per environment step.
    from hmarl.evaluation import play_episode
    from hmarl.yard import ChickenYardEnv

    steps = play_episode(ChickenYardEnv(), load_policy(trained_checkpoint), 3).steps
    assert frames == min(steps, 299) + 1


def test_a_corrupt_newest_checkpoint_falls_back_to_the_one_before(trained_run: Path, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    older, newest = resolve_checkpoint(run)[1], resolve_checkpoint(run)[0]
    (newest / MODULES_DIR / "high_level_policy" / "module_state.pkl").write_bytes(b"\x80garbage")
    assert load_policy(run).checkpoint == older
    with pytest.raises(CheckpointError, match="cannot load high_level_policy"):
        load_policy(newest)


@pytest.mark.parametrize("command", ["evaluate", "watch"])
def test_bad_checkpoints_are_one_line_errors(command: str, trained_checkpoint: Path, tmp_path,
                                             hmarl) -> None:  # fmt: skip
    empty = tmp_path / "empty"
    empty.mkdir()
    other_kind = tmp_path / "other" / "checkpoint_000001"
    shutil.copytree(trained_checkpoint, other_kind)
    shutil.rmtree(other_kind / MODULES_DIR / "high_level_policy")
    corrupt = tmp_path / "corrupt" / "checkpoint_000001"
    shutil.copytree(trained_checkpoint, corrupt)
    (corrupt / MODULES_DIR / "low_level_policy" / "module_state.pkl").write_bytes(b"")
    cases = {
        str(tmp_path / "missing"): "does not exist",
        str(empty): "holds no RLlib checkpoint",
        str(other_kind): "not an hmarl checkpoint",
        str(corrupt): "cannot load low_level_policy",
    }
    extra = ["--out", str(tmp_path / "x.gif")] if command == "watch" else ["--episodes", "5"]
    for path, message in cases.items():
        done = hmarl(command, path, *extra)
        assert done.returncode == 2, (path, done.stderr)
        assert message in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["evaluate", "--episodes", "0"], "--episodes"),
        (["evaluate", "--episodes", "-3"], "--episodes"),
        (["watch", "--out", "/nonexistent-dir/x.gif"], "/nonexistent-dir"),
        (["watch", "--out", "episode.txt"], ".txt"),
    ],
)
def test_bad_options_are_one_line_errors(args, message, trained_checkpoint: Path, hmarl):
    command, *rest = args
    done = hmarl(command, str(trained_checkpoint), *rest)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr

"""Weights-only exports: written from a run, loaded without pickle, acting as the checkpoint did.

Covers the yard (the task's own Dict-observation modules), RLlib's default modules on
flattened observations, and the corridor (a user's task named by module:attribute);
the ONNX graphs against torch; every broken file as a one-line error; and the JSON
codec of spaces the description uses.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np
import onnxruntime
import pytest
import ray.cloudpickle as cloudpickle
import safetensors.torch
import torch
from tiny_task import TASK as CORRIDOR

from conftest import built_once
from hmarl.checkpoints import CheckpointError
from hmarl.evaluation import compare, episode_seeds, stack
from hmarl.export import DESCRIPTION_FILE, export, load_export, random_observations
from hmarl.policies import greedy_action
from hmarl.runs import load_trained
from hmarl.space_codec import SpaceCodecError, decode_space, encode_space
from hmarl.task import Task

POLICIES = {"high_level_policy", "low_level_policy"}


@pytest.fixture(scope="module")
def exported(trained_run: Path, tmp_path_factory: pytest.TempPathFactory, hmarl) -> Path:
    """The tiny yard run exported with ONNX graphs, through the command line."""
    out = tmp_path_factory.mktemp("exports") / "yard"
    done = hmarl("export", str(trained_run), "--out", str(out), "--format", "onnx")
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"wrote {out / DESCRIPTION_FILE}" in done.stdout
    return out


@pytest.fixture(scope="module")
def default_run(
    tmp_path_factory: pytest.TempPathFactory, tiny_config: Path, hmarl, worker_id: str
) -> Path:
    """One tiny iteration of the yard with RLlib's default modules, exported with ONNX."""
    with built_once("default_run", worker_id, tmp_path_factory) as (home, build):
        if build:
            done = hmarl(
                "train",
                "--config",
                str(tiny_config),
                "--modules",
                "default",
                "--stop-iters",
                "1",
                "--no-tune",
                "--no-evaluate",
                "--out",
                str(home / "run"),
            )
            assert done.returncode == 0, done.stderr[-3000:]
            export(home / "run", home / "export", ["safetensors,onnx"])
    return home


def same_evaluation(a: Path, b: Path, task: Task | None = None) -> None:
    """The trained policies of ``a`` and ``b`` score the same on the same seeded episodes."""
    first, second = load_trained(a, task=task), load_trained(b, task=task)
    seeds = episode_seeds(7, 30)
    results = [
        compare(t.task, t.env_config, t.policy, seeds).policies["trained"] for t in (first, second)
    ]
    assert results[0] == results[1]


def test_the_description_records_the_task_and_every_policy(exported: Path) -> None:
    description = json.loads((exported / DESCRIPTION_FILE).read_text())
    assert (description["task"], description["task_ref"]) == ("chicken_yard", "chicken_yard")
    assert description["env_config"]["timeout"] == 200  # the run's env, not the default
    assert set(description["policies"]) == POLICIES
    high = description["policies"]["high_level_policy"]
    assert high["module"]["qualname"] == "hmarl.tasks.chicken_yard.modules.ChickenSetModule"
    assert high["parameters"]["scorer.0.weight"] == [64, 18]
    assert set(high["files"]) == {"high_level_policy.safetensors", "high_level_policy.onnx"}
    inputs = [i["name"] for i in high["onnx_inputs"]]
    assert inputs == ["chicken_oceans", "chicken_positions", "robot_ocean", "robot_position"]
    assert sorted(p.name for p in exported.iterdir()) == sorted(
        [DESCRIPTION_FILE, *(f for p in description["policies"].values() for f in p["files"])]
    )


def test_an_export_evaluates_as_its_checkpoint(exported: Path, trained_checkpoint: Path) -> None:
    same_evaluation(exported, trained_checkpoint)


def test_tools_take_an_export(exported: Path, tmp_path: Path, cli, hmarl) -> None:
    evaluated = cli("evaluate", str(exported), "--episodes", "5", "--num-chickens", "4", "--json")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert json.loads(evaluated.stdout)["checkpoint"] == str(exported)
    inspected = cli("inspect", str(exported), "--json")
    assert inspected.returncode == 0, inspected.stderr[-2000:]
    assert set(json.loads(inspected.stdout)) == POLICIES
    watched = hmarl("watch", str(exported), "--out", str(tmp_path / "x.gif"))
    assert watched.returncode == 0, watched.stderr[-2000:]
    assert (tmp_path / "x.gif").stat().st_size > 0


def test_loading_an_export_never_unpickles(
    exported: Path, trained_checkpoint: Path, monkeypatch: pytest.MonkeyPatch, cli
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("something unpickled")

    # RLlib unpickles through ray.cloudpickle, whose load and loads are pickle's, bound
    # when it was imported; torch.load unpickles too.
    for module, names in (
        (pickle, ("load", "loads", "Unpickler")),
        (cloudpickle, ("load", "loads")),
    ):
        for name in names:
            monkeypatch.setattr(module, name, refuse)
    monkeypatch.setattr(torch, "load", refuse)
    with pytest.raises(CheckpointError, match="cannot load"):
        load_trained(trained_checkpoint)  # the patch bites: a checkpoint needs pickle
    trained = load_export(exported)
    seeds = episode_seeds(None, 5)
    assert compare(trained.task, trained.env_config, trained.policy, seeds).policies["trained"]
    done = cli("evaluate", str(exported), "--episodes", "5", "--json")
    assert done.returncode == 0, done.stderr


def test_onnx_graphs_act_as_torch(exported: Path, trained_checkpoint: Path) -> None:
    """The yard's own modules: one ONNX input per Dict key, fed the env's observations."""
    trained = load_trained(trained_checkpoint)
    description = json.loads((exported / DESCRIPTION_FILE).read_text())
    for policy_id, obs in random_observations(trained.policy.observation_spaces, 1).items():
        entry = description["policies"][policy_id]
        feeds = {i["name"]: obs[i["name"]] for i in entry["onnx_inputs"]}
        session = onnxruntime.InferenceSession(str(exported / f"{policy_id}.onnx"))
        assert [i.name for i in session.get_inputs()] == list(feeds)
        actions = session.run(["action"], feeds)[0]
        np.testing.assert_array_equal(actions, trained.policy.act(policy_id, obs))


def test_default_modules_export_and_their_onnx_takes_the_flat_vector(default_run: Path) -> None:
    checkpoint, folder = default_run / "run", default_run / "export"
    same_evaluation(folder, checkpoint)
    trained = load_trained(checkpoint)
    description = json.loads((folder / DESCRIPTION_FILE).read_text())
    for policy_id, obs in random_observations(trained.policy.observation_spaces, 1).items():
        entry = description["policies"][policy_id]
        assert entry["module"]["qualname"].endswith("DefaultPPOTorchRLModule")
        assert not any(name.startswith("vf.") for name in entry["parameters"])  # acting only
        [given] = entry["onnx_inputs"]
        assert given["name"] == "obs" and "flatten_inputs_to_1d_tensor" in given["layout"]
        flat = trained.policy.module_input(policy_id, obs).numpy()  # RLlib's own flattening
        assert given["shape"] == [None, flat.shape[1]]
        session = onnxruntime.InferenceSession(str(folder / f"{policy_id}.onnx"))
        actions = session.run(["action"], {"obs": flat})[0]
        np.testing.assert_array_equal(actions, trained.policy.act(policy_id, obs))


def test_a_users_task_exports_but_loads_only_with_task(corridor_run: Path, hmarl, cli) -> None:
    exported = hmarl(
        "export", "runs/corridor", "--out", "shared", "--format", "onnx", cwd=corridor_run
    )
    assert exported.returncode == 0, exported.stderr[-2000:]
    description = json.loads((corridor_run / "shared" / DESCRIPTION_FILE).read_text())
    for entry in description["policies"].values():  # Box observations: nothing to flatten
        [given] = entry["onnx_inputs"]
        assert (given["name"], given["layout"]) == ("obs", "as the env observes it")
    refused = cli("evaluate", str(corridor_run / "shared"), "--episodes", "5")
    assert refused.returncode == 2
    assert "give --task my_corridor:TASK" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    given = hmarl("inspect", "shared", "--task", "my_corridor:TASK", "--json", cwd=corridor_run)
    assert given.returncode == 0, given.stderr[-2000:]
    assert set(json.loads(given.stdout)) == {"planner", "walker"}
    same_evaluation(corridor_run / "shared", corridor_run / "runs/corridor", task=CORRIDOR)


def broken_copies(exported: Path, root: Path) -> dict[str, tuple[Path, str]]:
    """Copies of an export, each broken one way, and the error each must give."""

    def copy(name: str) -> tuple[Path, dict]:
        folder = root / name
        shutil.copytree(exported, folder)
        return folder, json.loads((folder / DESCRIPTION_FILE).read_text())

    def save(folder: Path, description: dict) -> None:
        (folder / DESCRIPTION_FILE).write_text(json.dumps(description))

    cases = {}
    folder, description = copy("foreign_class")
    description["policies"]["low_level_policy"]["module"]["qualname"] = "os.system"
    save(folder, description)
    cases["foreign class"] = (folder, "module class 'os.system' is not one hmarl builds")

    folder, description = copy("other_config")
    description["policies"]["high_level_policy"]["module"]["model_config"]["hidden_sizes"] = [32]
    save(folder, description)
    cases["other config"] = (
        folder,
        "weight scorer.0.weight has shape (64, 18) in the file, the module expects (32, 18)",
    )

    folder, description = copy("edited_shape")
    description["policies"]["low_level_policy"]["parameters"]["policy_net.0.bias"] = [65]
    save(folder, description)
    cases["edited shape"] = (folder, "has shape (64,) in the file, the description says (65,)")

    folder, _ = copy("truncated")
    weights = folder / "low_level_policy.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    cases["truncated"] = (folder, "low_level_policy.safetensors is truncated or corrupt")

    folder, _ = copy("changed")
    weights = folder / "high_level_policy.safetensors"
    tensors = safetensors.torch.load_file(weights)
    tensors["scorer.0.bias"] += 0.01
    safetensors.torch.save_file(tensors, weights)
    cases["changed"] = (folder, "does not match the SHA-256 in hmarl_policy.json")

    folder, _ = copy("missing")
    (folder / "high_level_policy.safetensors").unlink()
    cases["missing"] = (folder, "cannot read")

    folder, _ = copy("not_json")
    (folder / DESCRIPTION_FILE).write_text("{")
    cases["not json"] = (folder, "is not readable JSON")

    folder, description = copy("module_task")
    description["task_ref"] = "evil:TASK"
    save(folder, description)
    cases["module task"] = (folder, "give --task evil:TASK if you trust that module")
    return cases


def test_broken_exports_are_one_line_errors(exported: Path, tmp_path: Path, cli) -> None:
    for case, (folder, message) in broken_copies(exported, tmp_path).items():
        for command in ("evaluate", "inspect"):
            done = cli(
                command, str(folder), *(["--episodes", "2"] if command == "evaluate" else [])
            )
            assert done.returncode == 2, (case, done.stderr)
            assert message in done.stderr, (case, done.stderr)
            assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_export_errors_are_one_line_and_leave_nothing(
    trained_run: Path, exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    out = str(tmp_path / "out")
    cases = {
        (str(tmp_path / "missing"), "--out", out): "does not exist",
        (str(empty), "--out", out): "not an hmarl run folder",
        (str(trained_run), "--out", str(exported)): "already exists",
        (str(trained_run), "--out", out, "--format", "tflite"): "unknown export format tflite",
    }
    for args, message in cases.items():
        done = cli("export", *args)
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr

    # A module the loader would not rebuild, and an ONNX graph that acts otherwise than
    # torch, are refused and leave nothing behind.
    with monkeypatch.context() as patch:
        patch.setattr("hmarl.export.allowed_modules", lambda task: {})
        done = cli("export", str(trained_run), "--out", out)
    assert done.returncode == 2
    assert "is neither RLlib's default PPO module nor one the task declares" in done.stderr
    assert list(tmp_path.iterdir()) == [empty]
    with monkeypatch.context() as patch:
        patch.setattr(
            "hmarl.onnx_policy.greedy_action",
            lambda module, batch: 0 * greedy_action(module, batch),
        )
        done = cli("export", str(trained_run), "--out", out, "--format", "onnx")
    assert done.returncode == 2
    assert "ONNX self-check failed: high_level_policy: ONNX actions differ" in done.stderr
    assert list(tmp_path.iterdir()) == [empty]


# -- the JSON codec of spaces ----------------------------------------------------------

SPACES = {
    "uniform box": gym.spaces.Box(0.0, 1.0, (3, 2), np.float32),
    "unbounded box": gym.spaces.Box(-np.inf, np.inf, (4,), np.float32),
    "per-entry bounds": gym.spaces.Box(
        np.array([0.0, -np.inf, -2.5]), np.array([1.0, 3.0, np.inf]), dtype=np.float64
    ),
    "integer box": gym.spaces.Box(0, 255, (2, 2), np.uint8),
    "discrete": gym.spaces.Discrete(5, start=-2),
    "multi-discrete": gym.spaces.MultiDiscrete([3, 4], start=[1, 0]),
    "nested": gym.spaces.Dict(
        {
            "z": gym.spaces.Tuple((gym.spaces.Discrete(2), gym.spaces.Box(-1, 1, (1,)))),
            "a": gym.spaces.Dict({"b": gym.spaces.MultiDiscrete([2, 2, 2])}),
        }
    ),
}


@pytest.mark.parametrize("space", SPACES.values(), ids=SPACES.keys())
def test_spaces_round_trip_through_strict_json(space: gym.Space) -> None:
    text = json.dumps(encode_space(space), allow_nan=False)
    decoded = decode_space(json.loads(text))
    assert decoded == space
    assert encode_space(decoded) == encode_space(space)
    assert decoded.contains(space.sample())


def test_dict_key_order_survives() -> None:
    from collections import OrderedDict

    space = gym.spaces.Dict(OrderedDict(b=gym.spaces.Discrete(2), a=gym.spaces.Discrete(3)))
    assert list(decode_space(encode_space(space)).spaces) == ["b", "a"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"type": "Graph"}, "unknown space type 'Graph'"),
        ({"type": "Discrete", "n": 3}, "needs 'start'"),
        ({"type": "Discrete", "n": "3", "start": 0}, "whole number"),
        ({"type": "Box", "shape": [1], "dtype": "object", "low": 0, "high": 1}, "not allowed"),
        ({"type": "Box", "shape": [1], "dtype": "float32", "low": "nan", "high": 1}, "'inf'"),
        ({"type": "Dict", "spaces": [1]}, "JSON object"),
        ("Box", "a space is a JSON object"),
    ],
)
def test_malformed_spaces_are_refused(data: object, message: str) -> None:
    with pytest.raises(SpaceCodecError, match=message):
        decode_space(data)


def test_spaces_without_a_json_form_are_refused() -> None:
    with pytest.raises(SpaceCodecError, match="has no JSON form"):
        encode_space(gym.spaces.MultiBinary(3))


def test_load_policy_acts_for_the_agents_due(exported: Path, trained_checkpoint: Path) -> None:
    import hmarl

    policy = hmarl.load_policy(exported)
    checkpoint = load_trained(trained_checkpoint).policy
    env = policy.task.make_env(policy.env_config)
    obs, _ = env.reset(seed=5)
    actions = policy.actions(obs)
    assert sorted(actions) == ["robot_1_high", "robot_2_high"]
    batch = stack(env.get_observation_space("robot_1_high"), [obs[a] for a in actions])
    assert list(actions.values()) == list(checkpoint.act("high_level_policy", batch))
    obs, *_ = env.step(actions)  # the env takes them: the low level moves next
    assert sorted(policy.actions(obs)) == ["robot_1_low", "robot_2_low"]
    sampled = [hmarl.load_policy(exported, actions="sampled", seed=1) for _ in range(2)]
    assert sampled[0].actions(obs) == sampled[1].actions(obs)
    with pytest.raises(KeyError, match="no policy 'nobody'"):
        policy.act("nobody", batch)

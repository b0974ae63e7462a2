"""The task contract and finding tasks: what a user writes, and every way it can be wrong."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest
from tiny_task import TASK as CORRIDOR
from tiny_task import CorridorEnv

from hmarl.registry import available_tasks, load_task
from hmarl.task import TRAINING_SETTINGS, Metric, Schedule, Score, Task, TaskError
from hmarl.training import TrainConfig, plan, preflight, with_task_training


def task(**fields: Any) -> Task:
    return dataclasses.replace(CORRIDOR, **fields)


@dataclasses.dataclass(frozen=True)
class Settings:
    limit: int = 20
    """Steps before the time limit."""

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError(f"limit must be at least 1, got {self.limit}")


# -- the declaration ------------------------------------------------------------------


def test_three_fields_are_enough() -> None:
    minimal = Task(name="corridor", make_env=CORRIDOR.make_env, policy_of=CORRIDOR.policy_of)
    assert minimal.env_config() == {} and minimal.module_specs() == {}
    assert minimal.discounting == "smdp" and minimal.schedule is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "2fast"}, "must start with a letter"),
        ({"name": "a b"}, "must start with a letter"),
        ({"make_env": None}, "make_env must be callable"),
        ({"policy_of": "planner"}, "policy_of must be callable"),
        ({"config": dict}, "config must be a dataclass"),
        ({"discounting": "geometric"}, "discounting must be one of smdp, per-decision"),
        ({"ppo": {"planner": {"learning_rate": 1.0}}}, "unknown PPO setting(s) learning_rate"),
        ({"training": {"stop_iters": 3}}, "unknown training setting(s) stop_iters"),
        ({"metrics": (Metric("v", "planner", "value"), Metric("v", "planner", "x"))}, "repeat"),
        ({"baselines": {"random": lambda c: None}}, "'random' is built in"),
        ({"score": Score("value")}, "score's metric 'value' is not one of its metrics"),
        (
            {"metrics": (Metric("value", "planner", "value"),), "score": Score("value", "oracle")},
            "score's reference 'oracle' is not one of its baselines",
        ),
        (
            {"metrics": (Metric("value", "planner", "value"),), "score": Score("value")},
            "needs baselines",
        ),
        ({"schedule": Schedule("planner", "arrived", 0.9)}, "schedule's metric 'arrived'"),
        (
            {
                "metrics": (Metric("arrived", "walker", "arrived"),),
                "schedule": Schedule("planner", "arrived", 0.9, window=0),
            },
            "the schedule's window must be a whole number of values (at least 1), got 0",
        ),
    ],
)
def test_a_bad_declaration_says_what_is_wrong(fields: dict, message: str) -> None:
    with pytest.raises(TaskError) as caught:
        task(**fields)
    assert message in str(caught.value)


def test_a_tasks_training_settings_apply_where_the_user_set_none() -> None:
    assert {f.name for f in dataclasses.fields(TrainConfig)} >= TRAINING_SETTINGS
    own = task(training={"train_batch_size": 8192, "minibatch_size": 4096, "lr": 3e-4})
    cfg, applied = with_task_training(TrainConfig(lr=1e-2), own, told={"lr"})
    assert (cfg.train_batch_size, cfg.minibatch_size, cfg.lr) == (8192, 4096, 1e-2)
    assert applied == {"train_batch_size": 8192, "minibatch_size": 4096}
    with pytest.raises(ValueError, match="minibatch_size must not exceed train_batch_size"):
        with_task_training(TrainConfig(train_batch_size=2048), own, told={"train_batch_size"})


def test_typed_settings() -> None:
    typed = task(config=Settings)
    assert typed.env_config({"limit": 5}) == Settings(limit=5)
    assert typed.env_config_dict() == {"limit": 20}
    with pytest.raises(
        TaskError, match="task corridor has no setting limmit; its settings are limit"
    ):
        typed.env_config({"limmit": 5})
    with pytest.raises(TaskError, match="task corridor: limit must be at least 1"):
        typed.env_config({"limit": 0})


def test_policy_spaces_of_each_policy() -> None:
    spaces = CORRIDOR.policy_spaces(CorridorEnv())
    assert list(spaces) == ["planner", "walker"]
    assert spaces["planner"][1] == gym.spaces.Discrete(4)


def test_a_policy_of_that_fails_for_some_agents() -> None:
    def policy_of(agent: str) -> str:
        if agent == "walker":
            raise KeyError(agent)
        return agent

    with pytest.raises(TaskError, match=r"policy_of\('walker'\) failed: KeyError"):
        task(policy_of=policy_of).policy_spaces(CorridorEnv())
    with pytest.raises(TaskError, match=r"policy_of\('planner'\) returned None"):
        task(policy_of=lambda agent: None).policy_spaces(CorridorEnv())


def test_agents_of_one_policy_must_share_spaces() -> None:
    with pytest.raises(TaskError, match="agents planner and walker share policy 'both'"):
        task(policy_of=lambda agent: "both").policy_spaces(CorridorEnv())


# -- bad envs are caught before training ---------------------------------------------


class Revives(CorridorEnv):
    """Breaks the protocol: the planner observes again after it ended."""

    def step(self, actions: dict) -> tuple:
        obs, rewards, terminateds, truncateds, infos = super().step(actions)
        if terminateds.get("__all__") or truncateds.get("__all__"):
            terminateds = {k: v for k, v in terminateds.items() if k != "__all__"}
            terminateds["__all__"] = False
            truncateds = {"__all__": False}
            self.agents = ["planner"]
        return obs, rewards, terminateds, truncateds, infos


class PettingZooAgents(CorridorEnv):
    """Lists only the agents due to act in ``agents`` (PettingZoo's convention)."""

    def step(self, actions: dict) -> tuple:
        result = super().step(actions)
        ending = {a for a in result[0] if result[2].get(a) or result[3].get(a)}
        self.agents = [a for a in self.agents if a not in ending]
        return result


def failing_make_env(config: dict) -> Any:
    raise OSError("the simulator is not installed")


@pytest.mark.parametrize(
    ("make_env", "message"),
    [
        (failing_make_env, "make_env failed: OSError: the simulator is not installed"),
        (lambda config: gym.make("CartPole-v1"), "neither a ray.rllib.env.multi_agent_env"),
        (lambda config: Revives(config), "breaks the protocol"),
    ],
    ids=["raises", "not-multi-agent", "revives"],
)
def test_preflight_refuses_a_bad_env(make_env: Any, message: str) -> None:
    with pytest.raises(TaskError) as caught:
        preflight(task(make_env=make_env), {})
    assert message in str(caught.value)


def test_preflight_accepts_pettingzoos_convention() -> None:
    spaces, _ = preflight(task(make_env=lambda config: PettingZooAgents(config)), {})
    assert set(spaces) == {
        "planner",
        "walker",
    }


def test_a_schedule_metric_that_never_appears_is_reported(local_ray, tmp_path: Path) -> None:
    from hmarl.algorithm import HierarchicalPPO
    from hmarl.training import build_config

    held = task(
        metrics=(Metric("arrival", "planner", "not_in_the_infos"),),
        schedule=Schedule("planner", "arrival", 0.5),
    )
    p = plan(
        TrainConfig(
            task="tiny_task:TASK",
            out=tmp_path / "r",
            stop_iters=1,
            train_batch_size=200,
            minibatch_size=100,
            schedule_timeout=100,
        )
    )
    p.task = held
    algo = HierarchicalPPO(config=build_config(p))
    try:
        result = algo.train()
        assert result["hmarl"]["schedule_open"] == 0.0
        assert result["hmarl"]["schedule_stalled"] == 1.0
        assert "arrival" not in result["env_runners"].get("hmarl", {})
    finally:
        algo.stop()


# -- finding tasks -----------------------------------------------------------------------


def test_built_in_tasks_are_found_by_name() -> None:
    assert load_task("chicken_yard").name == "chicken_yard"
    assert any(t.name == "chicken_yard" and t.origin == "built-in" for t in available_tasks())


def test_tasks_of_installed_packages_are_found_by_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What `pip install` leaves behind: a dist-info folder with an entry_points.txt.
    info = tmp_path / "corridors-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: corridors\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[hmarl.tasks]\ncorridor = tiny_task:TASK\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    listing = {t.name: t for t in available_tasks()}
    assert listing["corridor"].origin == "corridors" and listing["corridor"].ref == "tiny_task:TASK"
    assert load_task("corridor") is CORRIDOR


def test_a_module_in_the_working_directory(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "my_corridor.py").write_text("from tiny_task import TASK\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    assert load_task("my_corridor:TASK") is CORRIDOR


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "--task needs a task name"),
        ("nowhere", "no task named 'nowhere'; known tasks: chicken_yard"),
        ("no_such_module:TASK", "no module named 'no_such_module'"),
        ("tiny_task:NOPE", "module tiny_task has no 'NOPE'"),
        ("tiny_task:make_env", "tiny_task.make_env is a function, not an hmarl.Task"),
        ("tiny_task:", "give module:attribute"),
        ("broken_task_module:TASK", "importing broken_task_module failed: ZeroDivisionError"),
    ],
)
def test_bad_task_references(spec: str, message: str, tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "broken_task_module.py").write_text("1 / 0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(TaskError) as caught:
        load_task(spec)
    assert message in str(caught.value)


def test_a_reward_for_a_waiting_agent_stops_train_before_ray_starts(
    cli, tmp_path: Path, monkeypatch
) -> None:
    """The scaffold's task with a user's mistake: one line naming the agent, step and rule."""
    import hmarl.training

    def no_ray(cfg: Any) -> None:
        raise AssertionError("Ray started")

    monkeypatch.setattr(hmarl.training, "_start_ray", no_ray)
    out = tmp_path / "run"
    done = cli("train", "--task", "broken_tasks:TAXIS", "--stop-iters", "1", "--out", str(out))
    assert done.returncode == 2 and not out.exists()
    (line,) = done.stderr.splitlines()
    assert line.startswith(
        "hmarl train: error: task taxis: its env breaks the protocol: episode 0, step 1: "
        "lift_1_dispatcher gets a reward but env.agents ['lift_1_motor'] does not list it; "
    )


def test_check_is_a_command(cli) -> None:
    done = cli("check", "--task", "tiny_task:TASK", "--episodes", "2")
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "task corridor: passed: hmarl's conformance checks, RLlib's episodes and RLlib's "
        "env checker (2 episodes), seeded runs identical\n"
    )
    done = cli("check", "--task", "broken_tasks:TAXIS")
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1
    assert "RLlib's env checker refuses a first step" in done.stderr


def test_the_tasks_training_settings_fill_what_neither_flags_nor_the_file_set(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    import hmarl.training
    from hmarl.cli import main

    class RayStarted(Exception):
        pass

    def no_ray(cfg: Any) -> None:
        raise RayStarted(cfg)

    monkeypatch.setattr(hmarl.training, "_start_ray", no_ray)
    (tmp_path / "tuned_corridor.py").write_text(
        "import dataclasses\n"
        "from tiny_task import TASK as CORRIDOR\n"
        "TASK = dataclasses.replace(CORRIDOR, training="
        "{'lr': 3e-4, 'entropy_coeff': 0.03, 'checkpoint_every': 7})\n"
    )
    (tmp_path / "mine.toml").write_text("entropy_coeff = 0.01\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    args = ["train", "--task", "tuned_corridor:TASK", "--config", str(tmp_path / "mine.toml")]
    with pytest.raises(RayStarted) as started:
        main([*args, "--checkpoint-every", "3", "--stop-iters", "1", "--out", str(tmp_path / "r")])
    cfg = started.value.args[0]
    assert (cfg.lr, cfg.entropy_coeff, cfg.checkpoint_every) == (3e-4, 0.01, 3)
    assert "the task's training settings: lr 0.0003\n" in capsys.readouterr().out

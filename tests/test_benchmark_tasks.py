"""The benchmark tasks `lbf` and `rware`: found by name, behind their extra, and their envs.

Without the extra ``benchmarks`` the tasks are listed with the command that installs
it and refused by name in one line; with it, their envs keep the protocol, end by the
time limit as a truncation, refuse bad actions before the package sees them, and
import no display library.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from hmarl import cli, registry
from hmarl.conformance import assert_same, check_determinism, check_env
from hmarl.task import TaskError

INSTALL = 'pip install -e ".[benchmarks]"'

# (task, env id, steps to its time limit)
TASKS = [
    ("lbf", "Foraging-8x8-2p-2f-coop-v3", 50),
    ("rware", "rware-tiny-2ag-v2", 500),
]


@pytest.fixture
def without_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if lbforaging and rware were not installed."""
    find_spec = importlib.util.find_spec

    def missing(name: str, *args: object) -> object:
        return None if name in ("lbforaging", "rware") else find_spec(name, *args)

    monkeypatch.setattr(registry.importlib.util, "find_spec", missing)


def test_without_the_extra_the_tasks_say_how_to_install_it(without_the_extra, capsys) -> None:
    listed = {t.name: t for t in registry.available_tasks()}
    assert INSTALL in listed["lbf"].missing and INSTALL in listed["rware"].missing
    assert listed["chicken_yard"].missing is None
    with pytest.raises(TaskError, match=r"task lbf is not installed: it needs the extra"):
        registry.load_task("lbf")
    assert cli.main(["tasks"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("rware") and INSTALL in line for line in lines), lines
    assert cli.main(["random", "--task", "lbf"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and INSTALL in err, err


def test_the_packages_import_without_a_display() -> None:
    """lbforaging and rware draw with pyglet, which wants a display: the packages, the
    batched envs and the baselines import no pyglet (and no Ray: batched evaluation
    needs none; the RLlib adapters add only RLlib to them). The task declarations
    import not even the packages (``hmarl tasks`` lists tasks without them)."""
    pytest.importorskip("lbforaging")
    code = (
        "import sys\n"
        "import hmarl.tasks.lbf, hmarl.tasks.rware\n"
        "assert 'lbforaging' not in sys.modules and 'rware' not in sys.modules\n"
        "import hmarl.tasks.lbf.batched, hmarl.tasks.rware.batched\n"
        "import hmarl.tasks.lbf.baselines, hmarl.tasks.rware.baselines\n"
        "assert 'lbforaging' in sys.modules and 'rware' in sys.modules\n"
        "assert 'pyglet' not in sys.modules, 'pyglet imported'\n"
        "assert 'ray' not in sys.modules, 'ray imported'\n"
    )
    env = {"PATH": "", "PYTHONPATH": os.pathsep.join(sys.path)}  # and no DISPLAY
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def make(task: str, env_id: str):
    pytest.importorskip("lbforaging" if task == "lbf" else "rware")
    return registry.load_task(task), {"env_id": env_id}


@pytest.mark.parametrize(("task", "env_id", "limit"), TASKS, ids=[t[0] for t in TASKS])
def test_the_env_keeps_the_protocol_and_is_deterministic(task: str, env_id: str, limit: int):
    task, config = make(task, env_id)
    check_env(task.make_env(config), seed=0, episodes=1)
    check_determinism(lambda: task.make_env(config), seed=5, episodes=1)


@pytest.mark.parametrize(("task", "env_id", "limit"), TASKS, ids=[t[0] for t in TASKS])
def test_the_time_limit_truncates(task: str, env_id: str, limit: int) -> None:
    task, config = make(task, env_id)
    env = task.make_env(config)
    env.reset(seed=0)
    idle = dict.fromkeys(env.possible_agents, 0)  # lbf: NONE, rware: NOOP
    for _ in range(limit - 1):
        *_, terminateds, truncateds, _ = env.step(idle)
        assert not (terminateds["__all__"] or truncateds["__all__"])
    _, _, terminateds, truncateds, infos = env.step(idle)
    assert truncateds == {**dict.fromkeys(env.possible_agents, True), "__all__": True}
    assert terminateds == {"__all__": False}
    assert infos["agent_0"] == {"episode_return": 0.0}
    with pytest.raises(ValueError, match="the episode is over"):
        env.step(idle)


@pytest.mark.parametrize(("task", "env_id", "limit"), TASKS, ids=[t[0] for t in TASKS])
def test_bad_actions_are_refused_before_the_package_sees_them(task, env_id, limit) -> None:
    task, config = make(task, env_id)
    env, twin = task.make_env(config), task.make_env(config)
    env.reset(seed=3)
    twin.reset(seed=3)
    good = dict.fromkeys(env.possible_agents, 1)
    n = env.action_spaces["agent_0"].n
    for bad, named in (
        ({}, "no action for agent_0"),
        ({**good, "agent_1": n}, "agent_1"),
        ({**good, "agent_1": -1}, "agent_1"),
        ({**good, "nobody": 0}, "nobody"),
        ({"agent_0": 1}, "no action for agent_1"),
    ):
        with pytest.raises(ValueError, match=named):
            env.step(bad)
    assert_same(env.step(good), twin.step(good), "after refused steps")


def test_a_bad_env_id_is_one_whole_line(capsys) -> None:
    pytest.importorskip("lbforaging")
    assert cli.main(["random", "--task", "lbf", "--env-id", "Foraging-99-v3"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err, err
    assert "'Foraging-99-v3' is not a registered LBF env; ids look like" in err, err
    assert err.endswith("Foraging-2s-10x10-3p-3f-v3"), err


def test_the_tasks_declare_one_shared_policy_and_the_return_metric() -> None:
    pytest.importorskip("lbforaging")
    for name in ("lbf", "rware"):
        task = registry.load_task(name)
        assert task.policy_of("agent_3") == "shared_policy"
        assert task.policy_of("agent_3_high") == "shared_policy_high"  # hierarchy = "goals"
        assert task.policy_of("agent_3_low") == "shared_policy_low"
        assert [m.name for m in task.metrics] == ["return"]
        with pytest.raises(TaskError, match="has no setting"):
            task.env_config({"num_robots": 2})
        with pytest.raises(TaskError, match="not a registered"):
            task.env_config({"env_id": "nonsense-v0"})
        with pytest.raises(TaskError, match="hierarchy must be one of flat, goals, got 'tree'"):
            task.env_config({"hierarchy": "tree"})


@pytest.mark.parametrize("hierarchy", ["flat", "goals"])
@pytest.mark.parametrize(("task", "env_id", "limit"), TASKS, ids=[t[0] for t in TASKS])
def test_a_gif_of_the_baseline_without_a_display(task, env_id, limit, hierarchy, tmp_path) -> None:
    """`hmarl watch` without a screen: frames drawn by the task's own renderer (the
    packages' need pyglet and a display), of the task's hand-written baseline, flat or
    split at the goal."""
    import imageio.v3 as iio

    from hmarl.evaluation import baseline_policies
    from hmarl.recording import record

    task, config = make(task, env_id)
    config["hierarchy"] = hierarchy
    name = next(iter(task.baselines))
    policy = baseline_policies(task, config, seed=0)[name]
    written = record(task, config, policy, [0], tmp_path / "episode.gif", max_frames=4)
    frames = iio.imread(tmp_path / "episode.gif")
    assert 2 <= written <= 4 and len(frames) == written
    assert frames.shape[-1] == 3 and frames.shape[1] % 16 == 0
    assert len(np.unique(frames[-1].reshape(-1, 3), axis=0)) > 8  # a picture, not a blank


@pytest.mark.parametrize(("task", "env_id", "limit"), TASKS, ids=[t[0] for t in TASKS])
def test_the_batched_env_refuses_bad_actions_and_ignores_those_of_ended_envs(
    task, env_id, limit
) -> None:
    task, config = make(task, env_id)
    batched = task.make_batched_env(config, 2)
    batched.reset([0, 1])
    n = batched.action_spaces["agents"].n
    with pytest.raises(ValueError, match="out of range"):
        batched.step({"agents": np.array([[0, 0], [0, n]])})
    with pytest.raises(ValueError, match="must have shape"):
        batched.step({"agents": np.zeros((2, 3), dtype=np.int64)})
    for _ in range(limit):
        step = batched.step({"agents": np.zeros((2, 2), dtype=np.int64)})
    assert step.over.all() and step.truncated["agents"].all()
    before = batched.observations("agents").copy()
    after = batched.step({"agents": np.full((2, 2), n + 7)})  # read by no one
    assert not after.over.any() and not after.rewards["agents"].any()
    assert np.array_equal(batched.observations("agents"), before)


@pytest.mark.parametrize(("task", "env_id", "limit"), TASKS, ids=[t[0] for t in TASKS])
def test_the_batched_env_moves_only_the_envs_where_told(task, env_id, limit) -> None:
    """``step(actions, where=...)``: the envs left out stand still (observations, state,
    clock), get nothing and do not end; the others step as if alone."""
    task, config = make(task, env_id)
    paused, alone = task.make_batched_env(config, 4), task.make_batched_env(config, 4)
    paused.reset([0, 1, 2, 3])
    alone.reset([0, 1, 2, 3])
    where = np.array([True, False, True, False])
    rng = np.random.default_rng(0)
    n = paused.action_spaces["agents"].n
    for t in range(limit):
        actions = {"agents": rng.integers(n, size=(4, 2))}
        obs, state = paused.observations("agents").copy(), paused.states().copy()
        step = paused.step(actions, where=where)
        reference = alone.step(actions)
        assert np.array_equal(paused.observations("agents")[~where], obs[~where]), t
        assert np.array_equal(paused.states()[~where], state[~where]), t
        assert not step.rewards["agents"][~where].any() and not step.over[~where].any()
        assert not (step.terminated["agents"] | step.truncated["agents"])[~where].any()
        for got, want in (
            (paused.observations("agents"), alone.observations("agents")),
            (paused.states(), alone.states()),
            (step.rewards["agents"], reference.rewards["agents"]),
            (step.over, reference.over),
        ):
            assert np.array_equal(got[where], want[where]), t
    assert step.over[where].all() and not paused.over[~where].any()
    assert (paused.steps == np.where(where, limit, 0)).all()

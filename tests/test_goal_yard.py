"""The goal yard (a flat yard plus a declared hierarchy) against the built-in chicken yard.

Same seeds, the oracle's decisions and moves in both: the built-in yard plays its
decision step first (a step of its clock, in which nobody moves), the goal yard's decision
takes no world time; then every world step is compared. They may differ only where the
flat world differs: a robot there catches whatever chicken it reaches, so an episode in
which a robot passes within reach of a chicken other than the one it chose (nearer than
that one) must match exactly up to that step and differ at it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from hmarl.conformance import check_batched_env, check_determinism, check_env
from hmarl.task_env import COMMON, ELAPSED, make_task_env
from hmarl.tasks.chicken_yard import baselines as yard_baselines
from hmarl.tasks.chicken_yard.agents import HIGH_LEVEL_POLICY as YARD_HIGH
from hmarl.tasks.chicken_yard.agents import LOW_LEVEL_POLICY as YARD_LOW
from hmarl.tasks.chicken_yard.env import ChickenYardEnv
from hmarl.tasks.chicken_yard.simulation import YardConfig
from hmarl.tasks.goal_yard import FLAT, TASK
from hmarl.tasks.goal_yard.agents import HIGH_LEVEL_POLICY, LOW_LEVEL_POLICY
from hmarl.tasks.goal_yard.baselines import OraclePolicy
from hmarl.tasks.goal_yard.env import FlatYardEnv
from hmarl.tasks.goal_yard.simulation import FlatYardConfig

LOCKSTEP = {
    "defaults": ({}, range(200)),
    # Three robots and 14 moves: many run out of time, so the time limit is compared too.
    "short": ({"num_robots": 3, "timeout": 15}, range(200, 300)),
}
"""Settings and seeds of the lockstep episodes."""


@dataclass
class Lockstep:
    """One episode played in both yards."""

    pass_by: int | None
    """The world step at which a robot first passed within reach of another chicken."""
    diverged: int | None
    """The world step at which the two yards first differed (None: never)."""
    differences: list[str]
    arrivals: int
    timeouts: int


def passes_by(yard: ChickenYardEnv, moved: list[int]) -> bool:
    """Whether a robot that moved ends within reach of a chicken other than its chosen
    one, and nearer to it: the flat yard would catch that one (worked out here from the
    distances, apart from the flat yard's own code)."""
    sim = yard.yard
    gaps = ((sim.positions[:, None, :] - sim.layout.chicken_positions[None]) ** 2).sum(-1)
    within = gaps <= yard.config.closeness_threshold**2
    for robot in moved:
        nearest = int(gaps[robot].argmin())
        if within[robot, nearest] and nearest != sim.targets[robot]:
            return True
    return False


def differences(yard: ChickenYardEnv, goal: Any, theirs: tuple, ours: tuple) -> list[str]:
    """How one step of the goal yard differs from the built-in yard's."""
    found = []
    flat_positions = goal.flat.yards.positions[0]
    if not np.array_equal(yard.yard.positions, flat_positions):
        found.append(f"positions {yard.yard.positions.tolist()} != {flat_positions.tolist()}")
    (y_obs, y_rew, y_term, y_trunc, y_info), (g_obs, g_rew, g_term, g_trunc, g_info) = theirs, ours
    if sorted(y_obs) != sorted(g_obs):
        found.append(f"observed {sorted(y_obs)} != {sorted(g_obs)}")
    for agent in sorted(set(y_rew) | set(g_rew)):
        if y_rew.get(agent, 0.0) != g_rew.get(agent, 0.0):
            found.append(f"{agent} reward {y_rew.get(agent)} != {g_rew.get(agent)}")
    for name, y_flags, g_flags in (("terminated", y_term, g_term), ("truncated", y_trunc, g_trunc)):
        y_set, g_set = {a for a, v in y_flags.items() if v}, {a for a, v in g_flags.items() if v}
        if y_set != g_set:
            found.append(f"{name} {sorted(y_set)} != {sorted(g_set)}")
    g_info = {a: i for a, i in g_info.items() if i and a != COMMON}
    if sorted(y_info) != sorted(g_info):
        found.append(f"infos for {sorted(y_info)} != for {sorted(g_info)}")
    for agent in set(y_info) & set(g_info):
        for key, value in y_info[agent].items():
            if key == "compatibility" and not y_info[agent]["arrived"]:
                # Out of time, the built-in yard reports the chosen chicken's; the flat yard
                # chose none and caught none.
                value = None
            if g_info[agent][key] != value:
                found.append(f"{agent} info {key} {value} != {g_info[agent][key]}")
    return found


def lockstep(seed: int, settings: dict[str, Any]) -> Lockstep:
    """One episode in both yards, the built-in yard's oracle choosing for both (the goal
    yard's oracle, asked on the goal yard's observations, must choose the same)."""
    yard = ChickenYardEnv(YardConfig(**settings))
    goal = make_task_env(TASK, settings)
    theirs = yard_baselines.OraclePolicy(yard.config)
    ours = OraclePolicy(FlatYardConfig(**settings))
    y_obs, _ = yard.reset(seed=seed)
    g_obs, _ = goal.reset(seed=seed)
    decisions = {a: int(theirs.act(YARD_HIGH, o)) for a, o in y_obs.items()}
    assert decisions == {a: int(ours.act(HIGH_LEVEL_POLICY, o)) for a, o in g_obs.items()}
    y = yard.step(decisions)
    g = goal.step(decisions)
    assert g[4][COMMON][ELAPSED] == 0 and not y[1] and not g[1]
    assert sorted(y[0]) == sorted(g[0]) == sorted(yard.due_agents)
    pass_by, t, arrivals, timeouts = None, 0, 0, 0
    while not y[2]["__all__"]:
        t += 1
        due = yard.due_agents
        moves = {a: int(theirs.act(YARD_LOW, y[0][a])) for a in due}
        assert moves == {a: int(ours.act(LOW_LEVEL_POLICY, g[0][a])) for a in due}, t
        y, g = yard.step(moves), goal.step(moves)
        if pass_by is None and passes_by(yard, [int(a.split("_")[1]) - 1 for a in due]):
            pass_by = t
        found = differences(yard, goal, y, g)
        if found:
            return Lockstep(pass_by, t, found, arrivals, timeouts)
        for agent, info in y[4].items():
            if agent.endswith("_high"):
                arrivals += info["arrived"]
                timeouts += not info["arrived"]
    return Lockstep(pass_by, None, [], arrivals, timeouts)


@pytest.mark.parametrize("case", LOCKSTEP, ids=LOCKSTEP.keys())
def test_the_goal_yard_moves_as_the_chicken_yard_until_a_robot_passes_another_chicken(
    case: str,
) -> None:
    settings, seeds = LOCKSTEP[case]
    runs = {seed: lockstep(seed, settings) for seed in seeds}
    for seed, run in runs.items():
        # Exactly equal without a pass-by; with one, equal before it and different at it.
        assert run.diverged == run.pass_by, (seed, run)
    passed = sum(run.pass_by is not None for run in runs.values())
    print(f"{case}: {passed} of {len(runs)} episodes with a pass-by ({passed / len(runs):.1%})")
    assert 0 < passed < len(runs)  # both kinds of episode are compared
    assert sum(run.arrivals for run in runs.values()) > 0
    if case == "short":
        assert sum(run.timeouts for run in runs.values()) > 0


def test_the_flat_and_goal_yards_pass_every_check() -> None:
    settings = {"num_robots": 3, "num_chickens": 4, "timeout": 30, "closeness_threshold": 0.1}
    check_env(FlatYardEnv(settings), seed=0, episodes=10)
    check_env(make_task_env(TASK, settings), seed=0, episodes=10)
    check_determinism(lambda: make_task_env(TASK, settings), seed=0, episodes=3)
    seeds = list(range(32))
    assert check_batched_env(FLAT, settings, seeds) > 0
    assert check_batched_env(TASK, settings, seeds) > 0


def test_a_robot_catches_the_nearest_chicken_within_reach() -> None:
    env = FlatYardEnv({"num_robots": 1, "num_chickens": 2, "timeout": 5})
    env.reset(seed=0)
    # Two chickens within reach of where the robot will stand, the second nearer.
    yards = env.yards
    yards.positions[0, 0] = 0.5, 0.5
    yards.chicken_positions[0] = [[0.5, 0.53 + 0.02], [0.5, 0.53 + 0.01]]
    _, rewards, terminateds, _, infos = env.step({"robot_1": 4})  # S: y + 0.03
    assert terminateds == {"robot_1": True, "__all__": True}
    assert rewards["robot_1"] == yards.compatibilities[0, 0, 1]
    assert infos["robot_1"] == {
        "compatibility": yards.compatibilities[0, 0, 1],
        "arrived": True,
        "steps": 1,
    }


def test_the_flat_yard_gives_its_robots_timeout_minus_one_moves() -> None:
    env = FlatYardEnv({"num_robots": 1, "num_chickens": 1, "timeout": 3})
    obs, _ = env.reset(seed=0)
    env.yards.chicken_positions[0] = [[1.0, 1.0]]
    env.yards.positions[0, 0] = 0.0, 0.0
    obs, rewards, terminateds, *_ = env.step({"robot_1": 6})  # W, clipped: stays
    assert rewards == {"robot_1": 0.0} and not terminateds["__all__"]
    assert obs["robot_1"]["time_left"].tolist() == [0.5]
    obs, rewards, terminateds, _, infos = env.step({"robot_1": 6})
    assert rewards == {"robot_1": -1.0} and terminateds["robot_1"] and terminateds["__all__"]
    assert infos["robot_1"] == {"compatibility": None, "arrived": False, "steps": 2}
    with pytest.raises(ValueError, match="timeout must be at least 2"):
        FlatYardConfig(timeout=1)

"""The chicken yard as an RLlib multi-agent env: API conformance, flow, rewards, bad input."""

from __future__ import annotations

import re
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from ray.rllib.utils.pre_checks.env import check_multiagent_environments

from hmarl.conformance import check_determinism, check_env
from hmarl.tasks.chicken_yard.env import ChickenYardEnv, YardConfig
from hmarl.tasks.chicken_yard.simulation import DIRECTION_NAMES

SIZES = [(2, 10), (3, 4), (8, 20), (1, 1)]
N, S = DIRECTION_NAMES.index("N"), DIRECTION_NAMES.index("S")


def make_env(**overrides: Any) -> ChickenYardEnv:
    return ChickenYardEnv(YardConfig(**overrides))


def choose(env: ChickenYardEnv, *chickens: int) -> dict[str, Any]:
    """Reset with seed 0 and let robot i+1 choose chickens[i]; return the low observations."""
    env.reset(seed=0)
    obs, *_ = env.step({f"robot_{i + 1}_high": c for i, c in enumerate(chickens)})
    return obs


def one_move_from(env: ChickenYardEnv, robot: int, chicken: int) -> int:
    """Put a robot one move from a chicken; return the move that lands on it."""
    x, y = env.yard.layout.chicken_positions[chicken]
    step = env.config.move_amount
    env.yard.positions[robot] = [x, y - step] if y >= step else [x, y + step]
    return S if y >= step else N


def far_from(env: ChickenYardEnv, robot: int, chicken: int) -> int:
    """Put a robot in the corner farthest from a chicken; return a move that keeps it there."""
    x, y = env.yard.layout.chicken_positions[chicken]
    corner = (float(x < 0.5), float(y < 0.5))
    env.yard.positions[robot] = corner
    return DIRECTION_NAMES.index({(0, 0): "NW", (1, 0): "NE", (0, 1): "SW", (1, 1): "SE"}[corner])


# -- construction and spaces ---------------------------------------------------


def test_constructor_takes_config_dict_or_nothing() -> None:
    assert ChickenYardEnv().config == YardConfig()
    assert ChickenYardEnv(YardConfig(num_robots=3)).config.num_robots == 3
    assert ChickenYardEnv({"num_robots": 3, "num_chickens": 4}).config.num_chickens == 4
    with pytest.raises(ValueError, match="num_robot"):
        ChickenYardEnv({"num_robot": 3})
    with pytest.raises(ValueError, match=r"YardConfig\.num_robots"):
        ChickenYardEnv({"num_robots": 0})


def test_agents_and_spaces() -> None:
    env = make_env(num_robots=2, num_chickens=7, num_ocean_features=4)
    assert env.possible_agents == ["robot_1_high", "robot_1_low", "robot_2_high", "robot_2_low"]
    assert env.due_agents == []
    high, low = env.observation_spaces["robot_1_high"], env.observation_spaces["robot_1_low"]
    assert isinstance(high, gym.spaces.Dict) and isinstance(low, gym.spaces.Dict)
    assert {k: s.shape for k, s in high.spaces.items()} == {
        "chicken_oceans": (7, 4),
        "chicken_positions": (7, 2),
        "robot_ocean": (4,),
        "robot_position": (2,),
    }
    assert {k: s.shape for k, s in low.spaces.items()} == {
        "robot_position": (2,),
        "target_position": (2,),
        "time_left": (1,),
    }
    assert env.action_spaces["robot_2_high"] == gym.spaces.Discrete(7)
    assert env.action_spaces["robot_2_low"] == gym.spaces.Discrete(8)
    assert env.get_observation_space("robot_2_low") is env.observation_spaces["robot_2_low"]


# -- conformance and determinism -------------------------------------------------


@pytest.mark.parametrize(("num_robots", "num_chickens"), SIZES)
def test_conformance(num_robots: int, num_chickens: int) -> None:
    check_env(make_env(num_robots=num_robots, num_chickens=num_chickens), seed=0, episodes=2)
    check_env(make_env(num_robots=num_robots, num_chickens=num_chickens, timeout=1), episodes=1)


@pytest.mark.parametrize(("num_robots", "num_chickens"), SIZES)
def test_seeded_runs_are_identical(num_robots: int, num_chickens: int) -> None:
    config = YardConfig(num_robots=num_robots, num_chickens=num_chickens, timeout=300)
    check_determinism(lambda: ChickenYardEnv(config), seed=3, episodes=2)


def test_same_seed_same_yard_other_seed_other_yard() -> None:
    env = make_env()
    a, b, c = (env.reset(seed=s)[0]["robot_1_high"] for s in (5, 5, 6))
    assert np.array_equal(a["chicken_positions"], b["chicken_positions"])
    assert not np.array_equal(a["chicken_positions"], c["chicken_positions"])


def test_rendering_gives_frames() -> None:
    pytest.importorskip("pygame")
    env = make_env(num_robots=2, num_chickens=3)
    assert env.render() is None  # no render_mode: Gymnasium's convention
    env.render_mode = "rgb_array"
    env.reset(seed=0)
    first = env.render()
    assert first.dtype == np.uint8 and first.ndim == 3 and first.shape[2] == 3
    env.step({"robot_1_high": 0, "robot_2_high": 1})
    env.step({"robot_1_low": 0, "robot_2_low": 4})
    assert env.returns["robot_1_low"] == pytest.approx(-0.001)
    assert (env.render() != first).any()


def test_conformance_check_catches_a_wrong_agents_list() -> None:
    class NoAgentsListed(ChickenYardEnv):
        def reset(self, **kwargs: Any) -> Any:
            result = super().reset(**kwargs)
            self.agents = []
            return result

    with pytest.raises(AssertionError, match=r"episode 0, step 0: env\.agents"):
        check_env(NoAgentsListed(), episodes=1)

    class EndedAgentsListed(ChickenYardEnv):
        """Robot 1 stands on its chicken once it chose, then stays listed after it arrives."""

        def step(self, actions: Any) -> Any:
            result = super().step(actions)
            target = self.yard.targets[0]
            if self.yard.steps == 1 and target is not None:
                self.yard.positions[0] = self.yard.layout.chicken_positions[target]
            self.agents = sorted({*self.agents, "robot_1_high", "robot_1_low"})
            return result

    with pytest.raises(
        AssertionError, match=r"no agent that ended before \['robot_1_high', 'robot_1_low'\]"
    ):
        check_env(EndedAgentsListed({"num_robots": 2}), episodes=3)


def test_rllib_env_checker_passes() -> None:
    check_multiagent_environments(ChickenYardEnv())
    check_multiagent_environments(make_env(num_robots=3, num_chickens=1))


# -- the flow of an episode ------------------------------------------------------


def test_turn_taking() -> None:
    env = make_env(num_robots=2, num_chickens=3)
    obs, infos = env.reset(seed=0)
    assert sorted(obs) == env.due_agents == ["robot_1_high", "robot_2_high"]
    assert infos == {}
    start = env.yard.positions.copy()

    obs, rewards, terminateds, truncateds, _ = env.step({"robot_1_high": 2, "robot_2_high": 0})
    assert sorted(obs) == env.due_agents == ["robot_1_low", "robot_2_low"]
    assert rewards == {}
    assert terminateds == {"__all__": False} and truncateds == {"__all__": False}
    assert np.array_equal(env.yard.positions, start), "nobody moves on the choosing step"
    chickens = obs["robot_1_low"], obs["robot_2_low"]
    layout = env.yard.layout
    chicken_positions = layout.chicken_positions.astype(np.float32)
    assert np.array_equal(chickens[0]["target_position"], chicken_positions[2])
    assert np.array_equal(chickens[1]["target_position"], chicken_positions[0])
    assert np.array_equal(chickens[0]["robot_position"], start[0].astype(np.float32))

    env.yard.positions[:] = 0.5  # mid-yard, so the moves are not clipped
    obs, rewards, *_ = env.step({"robot_1_low": N, "robot_2_low": S})
    np.testing.assert_allclose(env.yard.positions, [[0.5, 0.47], [0.5, 0.53]])
    np.testing.assert_allclose(obs["robot_1_low"]["robot_position"], [0.5, 0.47])
    assert rewards == {"robot_1_low": -0.001, "robot_2_low": -0.001}


def test_every_agent_due_must_act() -> None:
    env = make_env(num_robots=2, num_chickens=3)
    env.reset(seed=0)
    assert_refused(env, {"robot_2_high": 1}, "no action for robot_1_high")
    assert_refused(env, {}, "no action for robot_1_high, robot_2_high")


def test_low_level_sees_the_time_left() -> None:
    env = make_env(num_robots=1, num_chickens=3, timeout=4)
    obs = choose(env, 0)  # step 1 of 4
    assert obs["robot_1_low"]["time_left"] == pytest.approx([0.75])
    obs, *_ = env.step({"robot_1_low": far_from(env, 0, 0)})
    assert obs["robot_1_low"]["time_left"] == pytest.approx([0.5])


def test_arrival_rewards_and_ends_that_robot() -> None:
    env = make_env(num_robots=2, num_chickens=3)
    choose(env, 0, 1)
    move = one_move_from(env, 0, 0)
    other = far_from(env, 1, 1)
    obs, rewards, terminateds, truncateds, infos = env.step(
        {"robot_1_low": move, "robot_2_low": other}
    )
    compat = float(env.yard.layout.robot_oceans[0] @ env.yard.layout.chicken_oceans[0])
    assert rewards == {
        "robot_1_low": 1.0,
        "robot_1_high": pytest.approx(compat),
        "robot_2_low": -0.001,
    }
    assert terminateds == {"robot_1_low": True, "robot_1_high": True, "__all__": False}
    assert truncateds == {"__all__": False}
    assert infos["robot_1_high"] == {"compatibility": pytest.approx(compat), "arrived": True}
    assert infos["robot_1_low"] == {"steps": 1, "arrived": True}
    assert sorted(obs) == ["robot_1_high", "robot_1_low", "robot_2_low"]
    assert env.due_agents == ["robot_2_low"]

    move = one_move_from(env, 1, 1)
    obs, rewards, terminateds, truncateds, infos = env.step({"robot_2_low": move})
    assert sorted(rewards) == sorted(obs) == ["robot_2_high", "robot_2_low"]
    assert terminateds["__all__"] and not truncateds["__all__"]
    assert infos["robot_2_low"] == {"steps": 2, "arrived": True}
    assert env.due_agents == []


def test_passing_another_chicken_does_nothing() -> None:
    env = make_env(num_robots=1, num_chickens=3)
    choose(env, 0)
    layout = env.yard.layout
    assert np.linalg.norm(layout.chicken_positions[0] - layout.chicken_positions[2]) > 0.1
    move = one_move_from(env, 0, 2)
    obs, rewards, terminateds, truncateds, infos = env.step({"robot_1_low": move})
    np.testing.assert_allclose(env.yard.positions[0], layout.chicken_positions[2])
    assert rewards == {"robot_1_low": -0.001}
    assert terminateds == {"__all__": False} and truncateds == {"__all__": False}
    assert list(obs) == ["robot_1_low"] and infos == {}


def test_time_limit_terminates_robots_still_out() -> None:
    env = make_env(num_robots=2, num_chickens=3, timeout=5)
    choose(env, 0, 1)  # step 1 of 5
    moves = {"robot_1_low": far_from(env, 0, 0), "robot_2_low": far_from(env, 1, 1)}
    for _ in range(3):  # steps 2..4
        _, rewards, terminateds, truncateds, _ = env.step(moves)
        assert rewards == {"robot_1_low": -0.001, "robot_2_low": -0.001}
        assert not terminateds["__all__"] and not truncateds["__all__"]
    obs, rewards, terminateds, truncateds, infos = env.step(moves)  # step 5: the limit
    assert rewards == dict.fromkeys(env.possible_agents, -1.0)
    # The time limit is part of the task: a failure, terminated, nothing bootstrapped.
    assert terminateds == {**dict.fromkeys(env.possible_agents, True), "__all__": True}
    assert truncateds == {"__all__": False}
    assert sorted(obs) == sorted(env.possible_agents)
    assert obs["robot_1_low"]["time_left"] == pytest.approx([0.0])
    assert infos["robot_1_high"]["arrived"] is False
    assert infos["robot_1_high"]["compatibility"] == pytest.approx(env.yard.compatibilities[0, 0])
    assert infos["robot_2_low"] == {"steps": 4, "arrived": False}
    assert env.due_agents == []


def test_time_limit_after_an_arrival() -> None:
    env = make_env(num_robots=2, num_chickens=3, timeout=3)
    choose(env, 0, 1)
    env.step({"robot_1_low": one_move_from(env, 0, 0), "robot_2_low": far_from(env, 1, 1)})
    _, rewards, terminateds, truncateds, _ = env.step({"robot_2_low": far_from(env, 1, 1)})
    assert rewards == {"robot_2_low": -1.0, "robot_2_high": -1.0}
    assert terminateds == {"robot_2_high": True, "robot_2_low": True, "__all__": True}
    assert truncateds == {"__all__": False}


def test_timeout_one_ends_on_the_choosing_step() -> None:
    env = make_env(num_robots=2, num_chickens=3, timeout=1)
    env.reset(seed=0)
    obs, rewards, terminateds, truncateds, infos = env.step({"robot_1_high": 0, "robot_2_high": 2})
    high = ["robot_1_high", "robot_2_high"]
    assert sorted(obs) == sorted(rewards) == sorted(infos) == high
    assert rewards == dict.fromkeys(high, -1.0)
    assert terminateds == {**dict.fromkeys(high, True), "__all__": True}
    assert truncateds == {"__all__": False}
    assert infos["robot_2_high"]["compatibility"] == pytest.approx(env.yard.compatibilities[1, 2])
    assert env.due_agents == []


# -- bad input -------------------------------------------------------------------

HIGH_PHASE_ERRORS = [
    ({"robot_1_high": 3}, "robot_1_high: action 3 is out of range 0..2"),
    ({"robot_1_high": -1}, "robot_1_high: action -1 is out of range 0..2"),
    ({"robot_1_high": 1.5}, "robot_1_high: action must be an integer, got 1.5"),
    ({"robot_1_high": "a"}, "robot_1_high: action must be an integer, got 'a'"),
    ({"robot_1_high": True}, "robot_1_high: action must be an integer, got True"),
    ({"robot_1_high": None}, "robot_1_high: action must be an integer, got None"),
    ({"robot_1_high": np.array([1])}, "robot_1_high: action must be an integer"),
    ({"robot_9_high": 0}, "unknown agent id 'robot_9_high'"),
    ({"robot_1_low": 0}, "robot_1_low is not due to act"),
    ({"robot_1_high": 0, "robot_2_high": 7}, "robot_2_high: action 7 is out of range"),
    ({"robot_1_high": 0}, "no action for robot_2_high"),
    ([0, 1], "actions must be a dict"),
]
LOW_PHASE_ERRORS = [
    ({"robot_1_low": 8}, "robot_1_low: action 8 is out of range 0..7"),
    ({"robot_1_low": -1}, "robot_1_low: action -1 is out of range 0..7"),
    ({"robot_1_low": 0.0}, "robot_1_low: action must be an integer"),
    ({"robot_1_high": 0}, "robot_1_high is not due to act"),
    ({"robot_1_low": 2, "robot_2_low": 8}, "robot_2_low: action 8 is out of range"),
]


def snapshot(env: ChickenYardEnv) -> tuple[Any, ...]:
    yard = env.yard
    return yard.positions.copy(), list(yard.targets), yard.steps, list(env.due_agents)


def assert_refused(env: ChickenYardEnv, actions: Any, message: str) -> None:
    """The step is refused with this message and the state is untouched."""
    before = snapshot(env)
    with pytest.raises(ValueError, match=re.escape(message)):
        env.step(actions)
    after = snapshot(env)
    assert np.array_equal(before[0], after[0]) and before[1:] == after[1:]


@pytest.mark.parametrize(("actions", "message"), HIGH_PHASE_ERRORS)
def test_bad_high_actions_are_refused(actions: Any, message: str) -> None:
    env = make_env(num_robots=2, num_chickens=3)
    env.reset(seed=0)
    assert_refused(env, actions, message)
    obs, *_ = env.step({"robot_1_high": 0, "robot_2_high": 2})
    assert sorted(obs) == ["robot_1_low", "robot_2_low"]


@pytest.mark.parametrize(("actions", "message"), LOW_PHASE_ERRORS)
def test_bad_low_actions_are_refused(actions: Any, message: str) -> None:
    env = make_env(num_robots=2, num_chickens=3)
    choose(env, 0, 2)
    assert_refused(env, actions, message)
    _, rewards, *_ = env.step({"robot_1_low": np.int64(0), "robot_2_low": np.array(7)})
    assert sorted(rewards) == ["robot_1_low", "robot_2_low"]


def test_an_arrived_robot_may_not_act() -> None:
    env = make_env(num_robots=2, num_chickens=3)
    choose(env, 0, 1)
    env.step({"robot_1_low": one_move_from(env, 0, 0), "robot_2_low": far_from(env, 1, 1)})
    assert_refused(env, {"robot_1_low": 0}, "robot_1_low is not due to act (due: robot_2_low)")
    assert_refused(env, {"robot_1_high": 0}, "robot_1_high is not due to act")
    env.step({"robot_2_low": 0})


def test_step_before_reset_and_after_the_end() -> None:
    env = make_env(num_robots=1, num_chickens=2, timeout=2)
    with pytest.raises(ValueError, match="before reset"):
        env.step({"robot_1_high": 0})
    choose(env, 1)
    _, _, terminateds, _, _ = env.step({"robot_1_low": 0})
    assert terminateds["__all__"]
    with pytest.raises(ValueError, match="episode is over"):
        env.step({"robot_1_low": 0})
    obs, _ = env.reset(seed=1)
    assert list(obs) == ["robot_1_high"]

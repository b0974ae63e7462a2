"""The round-up as an RLlib multi-agent env: config, conformance, re-planning, bad input."""

from __future__ import annotations

import re
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from ray.rllib.utils.pre_checks.env import check_multiagent_environments

from hmarl.conformance import check_determinism, check_env, play
from hmarl.tasks.chicken_yard.simulation import DIRECTION_NAMES, draw_count
from hmarl.tasks.round_up.env import RoundUpConfig, RoundUpEnv
from hmarl.tasks.round_up.simulation import HORIZONS, new_chickens, respawn_draws

N, S = DIRECTION_NAMES.index("N"), DIRECTION_NAMES.index("S")
SIZES = [(3, 10), (1, 1), (2, 3), (8, 20)]


def make_env(**overrides: Any) -> RoundUpEnv:
    """Robots paid for their own catches only, so each reward shows whose catch it was
    (the team's share, on by default, has a test of its own)."""
    return RoundUpEnv(RoundUpConfig(**{"team_reward": 0.0, **overrides}))


def decide(env: RoundUpEnv, *chickens: int, seed: int | None = 0) -> dict[str, Any]:
    """(Reset with ``seed``, unless None, then) robot i+1 chooses chickens[i]; the observations."""
    if seed is not None:
        env.reset(seed=seed)
    obs, *_ = env.step({f"robot_{i + 1}_high": c for i, c in enumerate(chickens)})
    return obs


def one_move_from(env: RoundUpEnv, robot: int, chicken: int) -> int:
    """Put a robot one move from a chicken; return the move that lands on it."""
    x, y = env.round_up.yard.layout.chicken_positions[chicken]
    step = env.config.move_amount
    env.round_up.yard.positions[robot] = [x, y - step] if y >= step else [x, y + step]
    return S if y >= step else N


def far_from(env: RoundUpEnv, robot: int, chicken: int) -> int:
    """Put a robot in the corner farthest from a chicken; return a move that keeps it there."""
    x, y = env.round_up.yard.layout.chicken_positions[chicken]
    corner = (float(x < 0.5), float(y < 0.5))
    env.round_up.yard.positions[robot] = corner
    return DIRECTION_NAMES.index({(0, 0): "NW", (1, 0): "NE", (0, 1): "SW", (1, 1): "SE"}[corner])


def compat(env: RoundUpEnv, robot: int, chicken: int) -> float:
    layout = env.round_up.yard.layout
    return float(layout.robot_oceans[robot] @ layout.chicken_oceans[chicken])


# -- config and spaces ---------------------------------------------------------------


def test_defaults_and_the_yard_they_run_on() -> None:
    config = RoundUpConfig()
    assert (config.num_robots, config.num_chickens, config.episode_steps) == (3, 10, 500)
    assert (config.personality_low, config.replan_every) == (-1.0, 0)
    yard = config.yard
    assert (yard.timeout, yard.timeout_reward, yard.personality_low) == (500, 0.0, -1.0)
    assert RoundUpConfig.from_dict({"num_robots": 2}) == RoundUpConfig(num_robots=2)
    assert RoundUpEnv({"replan_every": 5}).config.replan_every == 5


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("num_robots", 0),
        ("num_chickens", 2.5),
        ("episode_steps", 0),
        ("replan_every", -1),
        ("replan_every", True),
        ("move_amount", 0),
        ("closeness_threshold", -0.1),
        ("step_reward", 0.5),
        ("arrival_reward", float("nan")),
        ("personality_low", 1.0),
        ("personality_low", "low"),
        ("team_reward", 1.5),
        ("team_reward", -0.1),
    ],
)
def test_bad_values_are_refused_by_name(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"RoundUpConfig\.{field}\b"):
        RoundUpConfig(**{field: value})


def test_unknown_settings_are_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown RoundUpConfig field.*timeout"):
        RoundUpEnv({"timeout": 100})


def test_agents_and_spaces() -> None:
    env = make_env(num_robots=3, num_chickens=7, num_ocean_features=4)
    assert env.possible_agents == [
        f"robot_{i}_{level}" for i in (1, 2, 3) for level in ("high", "low")
    ]
    high, low = env.observation_spaces["robot_1_high"], env.observation_spaces["robot_1_low"]
    assert {k: s.shape for k, s in high.spaces.items()} == {
        "chicken_claimed": (7,),
        "chicken_oceans": (7, 4),
        "chicken_positions": (7, 2),
        "other_oceans": (2, 4),
        "other_positions": (2, 2),
        "other_targets": (2, 7),
        "robot_ocean": (4,),
        "robot_position": (2,),
        "time_left": (1,),
    }
    assert {k: s.shape for k, s in low.spaces.items()} == {
        "robot_position": (2,),
        "target_position": (2,),
        "time_left": (1,),
    }
    # Personalities drawn in [-1, 1) before normalising: entries reach down to -1.
    assert high["chicken_oceans"].low.min() == -1.0 and high["robot_position"].low.min() == 0.0
    assert env.action_spaces["robot_3_high"] == gym.spaces.Discrete(7)
    assert env.action_spaces["robot_3_low"] == gym.spaces.Discrete(8)
    # One object per level, shared by its agents and handed out every call.
    assert env.get_observation_space("robot_3_high") is high
    assert env.get_action_space("robot_2_low") is env.action_spaces["robot_1_low"]


# -- conformance and determinism -----------------------------------------------------


@pytest.mark.parametrize(("num_robots", "num_chickens"), SIZES)
def test_conformance(num_robots: int, num_chickens: int) -> None:
    sizes = {"num_robots": num_robots, "num_chickens": num_chickens}
    check_env(make_env(**sizes, episode_steps=200), seed=0, episodes=2)
    # A wide reach makes random walkers catch: catches, respawns and interruptions.
    check_env(make_env(**sizes, episode_steps=200, closeness_threshold=0.3), episodes=2)
    check_env(make_env(**sizes, episode_steps=100, replan_every=2), episodes=1)
    check_env(make_env(**sizes, episode_steps=1), episodes=1)


@pytest.mark.parametrize(("num_robots", "num_chickens"), SIZES)
def test_seeded_runs_are_identical(num_robots: int, num_chickens: int) -> None:
    config = RoundUpConfig(
        num_robots=num_robots, num_chickens=num_chickens, episode_steps=150, closeness_threshold=0.3
    )
    check_determinism(lambda: RoundUpEnv(config), seed=3, episodes=2)


@pytest.mark.parametrize("config", [{}, {"num_robots": 1, "num_chickens": 1}, {"episode_steps": 1}])
def test_rllib_env_checker_passes(config: dict) -> None:
    check_multiagent_environments(RoundUpEnv(config))


def test_agents_are_never_revived_and_act_intermittently() -> None:
    """Nothing ends before the time limit; each agent observes, pauses, observes again."""
    env = make_env(num_robots=3, num_chickens=4, episode_steps=120, closeness_threshold=0.3)
    observed: dict[str, list[int]] = {a: [] for a in env.possible_agents}
    for t in play(env, seed=0, episodes=1, max_steps=200):
        for agent in t.obs:
            observed[agent].append(t.step)
        if t.step < 120:
            assert not t.ending and not t.over, f"step {t.step}: {sorted(t.ending)} ended early"
    assert t.step == 120 and t.over and t.ending == set(env.possible_agents)
    assert all(t.terminateds[a] for a in env.possible_agents) and not t.truncateds["__all__"]
    for agent, steps in observed.items():
        gaps = np.diff(steps)
        assert (gaps > 1).any(), f"{agent} never paused"  # intermittent, not every step
        assert len(steps) >= 3, f"{agent} observed only at steps {steps}"


# -- the flow: catches, respawns, interruptions, re-planning ---------------------------


def test_a_catch_pays_both_levels_and_the_robot_decides_again() -> None:
    env = make_env(num_robots=2, num_chickens=3)
    decide(env, 0, 1)
    before = env.round_up.yard.layout.chicken_positions[0].copy()
    gained = compat(env, 0, 0)
    obs, rewards, terminateds, truncateds, infos = env.step(
        {"robot_1_low": one_move_from(env, 0, 0), "robot_2_low": far_from(env, 1, 1)}
    )
    assert rewards == {
        "robot_1_low": 1.0,
        "robot_1_high": pytest.approx(gained),
        "robot_2_low": -0.001,
    }
    assert terminateds == {"__all__": False} and truncateds == {"__all__": False}
    assert infos == {}
    # Robot 1's high level is due; its low level rests (not ended: it will act again).
    assert sorted(obs) == env.due_agents == ["robot_1_high", "robot_2_low"]
    assert list(env.round_up.catches) == [1, 0]
    # The chicken is replaced at once, and the observation shows the new one.
    layout = env.round_up.yard.layout
    assert not np.array_equal(layout.chicken_positions[0], before)
    np.testing.assert_array_equal(
        obs["robot_1_high"]["chicken_positions"][0], layout.chicken_positions[0].astype(np.float32)
    )
    assert env.round_up.yard.compatibilities[0, 0] == pytest.approx(compat(env, 0, 0))
    # Robot 2 heads for chicken 1: claimed, in robot 1's view.
    assert list(obs["robot_1_high"]["chicken_claimed"]) == [0.0, 1.0, 0.0]
    np.testing.assert_array_equal(
        obs["robot_1_high"]["other_positions"], env.round_up.yard.positions[1:].astype(np.float32)
    )
    # For the critic: robot 2's personality, and the chicken it heads for.
    np.testing.assert_array_equal(
        obs["robot_1_high"]["other_oceans"], layout.robot_oceans[1:].astype(np.float32)
    )
    np.testing.assert_array_equal(obs["robot_1_high"]["other_targets"], [[0.0, 1.0, 0.0]])

    # On the step a robot's high level decides, that robot does not move.
    standing = env.round_up.yard.positions[0].copy()
    obs, rewards, *_ = env.step({"robot_1_high": 2, "robot_2_low": far_from(env, 1, 1)})
    assert rewards == {"robot_2_low": -0.001}
    assert np.array_equal(env.round_up.yard.positions[0], standing)
    assert sorted(obs) == ["robot_1_low", "robot_2_low"]
    target = layout.chicken_positions[2].astype(np.float32)
    np.testing.assert_array_equal(obs["robot_1_low"]["target_position"], target)


def test_a_robot_whose_chicken_is_caught_is_interrupted() -> None:
    env = make_env(num_robots=3, num_chickens=3)
    decide(env, 0, 0, 1)
    obs, rewards, *_ = env.step(
        {
            "robot_1_low": far_from(env, 0, 0),
            "robot_2_low": one_move_from(env, 1, 0),
            "robot_3_low": far_from(env, 2, 1),
        }
    )
    assert rewards == {
        "robot_1_low": -0.001,
        "robot_1_high": 0.0,  # interrupted: decides again, nothing gained
        "robot_2_low": 1.0,
        "robot_2_high": pytest.approx(env.round_up.caught_compatibility[1]),
        "robot_3_low": -0.001,
    }
    assert sorted(obs) == ["robot_1_high", "robot_2_high", "robot_3_low"]
    assert list(env.round_up.catches) == [0, 1, 0]


@pytest.mark.parametrize("share", [1.0, 0.25])
def test_a_team_reward_pays_every_robot_its_part_of_a_catch(share: float) -> None:
    env = make_env(num_robots=3, num_chickens=3, team_reward=share)
    decide(env, 0, 0, 1)
    obs, rewards, *_ = env.step(
        {
            "robot_1_low": far_from(env, 0, 0),
            "robot_2_low": one_move_from(env, 1, 0),
            "robot_3_low": far_from(env, 2, 1),
        }
    )
    caught = env.round_up.caught_compatibility[1]
    team = caught / 3
    assert rewards["robot_2_high"] == pytest.approx((1 - share) * caught + share * team)
    assert rewards["robot_1_high"] == pytest.approx(share * team)  # interrupted
    assert rewards["robot_3_high"] == pytest.approx(share * team)  # still on its way
    assert "robot_3_high" not in obs
    # The score stays each robot's own catches.
    assert list(env.round_up.caught_compatibility) == pytest.approx([0.0, caught, 0.0])


def test_of_two_robots_reaching_one_chicken_the_first_catches_it() -> None:
    env = make_env(num_robots=2, num_chickens=3)
    decide(env, 1, 1)
    move = one_move_from(env, 1, 1)
    env.round_up.yard.positions[0] = env.round_up.yard.positions[1]
    obs, rewards, *_ = env.step({"robot_1_low": move, "robot_2_low": move})
    assert rewards["robot_1_low"] == 1.0 and rewards["robot_2_low"] == -0.001
    assert rewards["robot_2_high"] == 0.0
    assert sorted(obs) == ["robot_1_high", "robot_2_high"]
    assert list(env.round_up.catches) == [1, 0]


def test_choosing_a_chicken_caught_on_the_same_step_interrupts_at_once() -> None:
    env = make_env(num_robots=2, num_chickens=3)
    decide(env, 0, 1)
    # Robot 2 catches chicken 1 and decides next, while robot 1 still heads for chicken 0.
    obs, *_ = env.step(
        {"robot_1_low": far_from(env, 0, 0), "robot_2_low": one_move_from(env, 1, 1)}
    )
    assert sorted(obs) == ["robot_1_low", "robot_2_high"]
    assert list(obs["robot_2_high"]["chicken_claimed"]) == [1.0, 0.0, 0.0]
    # Robot 2 picks chicken 0 on the very step robot 1 catches it.
    obs, rewards, *_ = env.step({"robot_1_low": one_move_from(env, 0, 0), "robot_2_high": 0})
    assert sorted(obs) == ["robot_1_high", "robot_2_high"]
    # Robot 2's high level acted and observes again on this step: it gets a reward, 0.
    assert rewards["robot_2_high"] == 0.0 and "robot_2_low" not in rewards
    assert env.round_up.option_moves[1] == 0


def test_replan_every_cuts_a_choice_after_that_many_moves() -> None:
    env = make_env(num_robots=1, num_chickens=3, replan_every=3)
    decide(env, 0)
    move = far_from(env, 0, 0)
    for _ in range(2):
        obs, rewards, *_ = env.step({"robot_1_low": move})
        assert list(obs) == ["robot_1_low"] and rewards == {"robot_1_low": -0.001}
    obs, rewards, *_ = env.step({"robot_1_low": move})
    assert list(obs) == ["robot_1_high"]
    assert rewards == {"robot_1_low": -0.001, "robot_1_high": 0.0}
    assert obs["robot_1_high"]["chicken_claimed"].sum() == 0.0
    decide(env, 2, seed=None)
    obs, *_ = env.step({"robot_1_low": far_from(env, 0, 2)})
    assert list(obs) == ["robot_1_low"]  # the count starts again with each choice


def test_without_replan_every_a_choice_lasts() -> None:
    env = make_env(num_robots=1, num_chickens=3, episode_steps=100)
    decide(env, 0)
    move = far_from(env, 0, 0)
    for _ in range(50):
        obs, *_ = env.step({"robot_1_low": move})
        assert list(obs) == ["robot_1_low"]


def respawned_chicken(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The chicken that replaces chicken 0 after a scripted catch in an episode of ``seed``."""
    env = make_env(num_robots=1, num_chickens=2)
    decide(env, 0, seed=seed)
    env.step({"robot_1_low": one_move_from(env, 0, 0)})
    layout = env.round_up.yard.layout
    return layout.chicken_positions[0].copy(), layout.chicken_oceans[0].copy()


def test_respawns_are_seeded() -> None:
    first, again, other = respawned_chicken(7), respawned_chicken(7), respawned_chicken(8)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[0], other[0]) and not np.array_equal(first[1], other[1])
    # Drawn from the episode's generator, right after the yard's own draws.
    config = RoundUpConfig(num_robots=1, num_chickens=2)
    rng = np.random.default_rng(7)
    rng.random(draw_count(config.yard))
    position, ocean = new_chickens(rng.random(respawn_draws(config)), config)
    assert np.array_equal(first[0], position) and np.array_equal(first[1], ocean)
    np.testing.assert_allclose(np.linalg.norm(ocean), 1.0)


# -- the end of an episode ---------------------------------------------------------------


@pytest.mark.parametrize("horizon", HORIZONS)
def test_the_horizon_ends_every_agent_that_observed(horizon: str) -> None:
    """Truncated (a time limit) or terminated (the task's end), as the config says; the
    other flag never."""
    env = make_env(num_robots=2, num_chickens=3, episode_steps=4, horizon=horizon)
    decide(env, 0, 1)  # step 1
    gained = compat(env, 0, 0)
    env.step({"robot_1_low": one_move_from(env, 0, 0), "robot_2_low": far_from(env, 1, 1)})
    env.step({"robot_1_high": 2, "robot_2_low": far_from(env, 1, 1)})  # step 3
    obs, rewards, terminateds, truncateds, infos = env.step(
        {"robot_1_low": far_from(env, 0, 2), "robot_2_low": far_from(env, 1, 1)}
    )
    assert sorted(obs) == env.possible_agents  # a final observation for everyone
    # No penalty: the rewards of the step, and 0.0 for every other agent observed.
    assert rewards == {
        "robot_1_high": 0.0,
        "robot_1_low": -0.001,
        "robot_2_high": 0.0,
        "robot_2_low": -0.001,
    }
    ended, clear = (
        (terminateds, truncateds) if horizon == "terminated" else (truncateds, terminateds)
    )
    assert clear == {"__all__": False}
    assert ended == {**dict.fromkeys(env.possible_agents, True), "__all__": True}
    assert obs["robot_1_high"]["time_left"] == pytest.approx([0.0])
    assert infos["robot_1_high"] == {"caught_compatibility": pytest.approx(gained), "catches": 1}
    assert infos["robot_2_high"] == {"caught_compatibility": 0.0, "catches": 0}
    assert infos["robot_1_low"] == {"moves": 2, "moves_per_catch": 2.0}
    assert infos["robot_2_low"] == {"moves": 3, "moves_per_catch": None}
    assert env.due_agents == []


def test_a_low_agent_that_never_observed_gets_no_final_observation() -> None:
    env = make_env(num_robots=2, num_chickens=3, episode_steps=1)
    env.reset(seed=0)
    obs, rewards, terminateds, truncateds, _ = env.step({"robot_1_high": 0, "robot_2_high": 1})
    assert truncateds == {"__all__": False}
    assert sorted(obs) == sorted(rewards) == ["robot_1_high", "robot_2_high"]
    assert rewards == {"robot_1_high": 0.0, "robot_2_high": 0.0}
    assert terminateds == {"robot_1_high": True, "robot_2_high": True, "__all__": True}


def test_the_clock_in_every_observation() -> None:
    env = make_env(num_robots=1, num_chickens=2, episode_steps=4)
    obs, _ = env.reset(seed=0)
    assert obs["robot_1_high"]["time_left"] == pytest.approx([1.0])
    obs = decide(env, 0, seed=None)
    assert obs["robot_1_low"]["time_left"] == pytest.approx([0.75])


# -- bad input -------------------------------------------------------------------------

HIGH_PHASE_ERRORS = [
    ({"robot_1_high": 3}, "robot_1_high: action 3 is out of range 0..2"),
    ({"robot_1_high": -1}, "robot_1_high: action -1 is out of range 0..2"),
    ({"robot_1_high": 1.5}, "robot_1_high: action must be an integer, got 1.5"),
    ({"robot_1_high": True}, "robot_1_high: action must be an integer, got True"),
    ({"robot_9_high": 0}, "unknown agent id 'robot_9_high'"),
    ({"robot_1_low": 0}, "robot_1_low is not due to act"),
    ({"robot_1_high": 0}, "no action for robot_2_high"),
    ({}, "no action for robot_1_high, robot_2_high"),
    ([0, 1], "actions must be a dict"),
]
LOW_PHASE_ERRORS = [
    ({"robot_1_low": 8, "robot_2_low": 0}, "robot_1_low: action 8 is out of range 0..7"),
    ({"robot_1_low": 0.0, "robot_2_low": 0}, "robot_1_low: action must be an integer"),
    ({"robot_1_high": 0}, "robot_1_high is not due to act"),
    ({"robot_1_low": 2}, "no action for robot_2_low"),
]


def snapshot(env: RoundUpEnv) -> tuple[Any, ...]:
    sim = env.round_up
    arrays = (sim.yard.positions, sim.yard.layout.chicken_positions, sim.catches, sim.moves)
    return (
        *(a.copy() for a in arrays),
        list(sim.targets),
        sim.steps,
        env.due_agents,
        env.np_random.bit_generator.state,
    )


def assert_refused(env: RoundUpEnv, actions: Any, message: str) -> None:
    """The step is refused with this message and the state is untouched."""
    before = snapshot(env)
    with pytest.raises(ValueError, match=re.escape(message)):
        env.step(actions)
    after = snapshot(env)
    for a, b in zip(before, after, strict=True):
        assert np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b


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
    decide(env, 0, 2)
    assert_refused(env, actions, message)
    _, rewards, *_ = env.step({"robot_1_low": np.int64(0), "robot_2_low": np.array(7)})
    assert sorted(rewards) == ["robot_1_low", "robot_2_low"]


def test_a_resting_low_agent_may_not_act() -> None:
    env = make_env(num_robots=2, num_chickens=3)
    decide(env, 0, 1)
    env.step({"robot_1_low": one_move_from(env, 0, 0), "robot_2_low": far_from(env, 1, 1)})
    assert_refused(
        env,
        {"robot_1_low": 0, "robot_2_low": 0},
        "robot_1_low is not due to act (due: robot_1_high, robot_2_low)",
    )


def test_step_before_reset_and_after_the_end() -> None:
    env = make_env(num_robots=1, num_chickens=2, episode_steps=2)
    with pytest.raises(ValueError, match="before reset"):
        env.step({"robot_1_high": 0})
    decide(env, 1)
    _, _, terminateds, _, _ = env.step({"robot_1_low": 0})
    assert terminateds["__all__"]
    with pytest.raises(ValueError, match="episode is over"):
        env.step({"robot_1_low": 0})
    obs, _ = env.reset(seed=1)
    assert list(obs) == ["robot_1_high"]


# -- frames --------------------------------------------------------------------------------


def test_rendering_shows_catches_and_respawns() -> None:
    pytest.importorskip("pygame")
    env = make_env(num_robots=2, num_chickens=3)
    assert env.render() is None  # no render_mode: Gymnasium's convention
    env.render_mode = "rgb_array"
    decide(env, 0, 1)
    env.step({"robot_1_low": far_from(env, 0, 0), "robot_2_low": far_from(env, 1, 1)})
    quiet = env.render()
    assert quiet.dtype == np.uint8 and quiet.ndim == 3 and quiet.shape[2] == 3
    env.step({"robot_1_low": one_move_from(env, 0, 0), "robot_2_low": far_from(env, 1, 1)})
    assert env.last.caught.keys() == {0} and env.last.respawned == [0]
    catch = env.render()
    assert catch.shape == quiet.shape and (catch != quiet).any()
    assert env.returns["robot_1_low"] == pytest.approx(0.999)

    def gold_in_the_yard(frame: np.ndarray) -> int:
        """The new chicken's dots: nothing else in the yard is this near gold (a beak is not)."""
        yard = frame[: frame.shape[1]].astype(int)
        return int((np.abs(yard - (255, 196, 0)) < 20).all(axis=-1).sum())

    assert gold_in_the_yard(quiet) == 0 < gold_in_the_yard(catch)


def test_frames_of_an_env_not_reset_are_refused() -> None:
    pytest.importorskip("pygame")
    from hmarl.tasks.round_up.render import RoundUpRenderer

    renderer = RoundUpRenderer(RoundUpConfig())
    with pytest.raises(ValueError, match="reset the env"):
        renderer.draw(RoundUpEnv(), {})
    env = RoundUpEnv(render_mode="rgb_array")
    env.reset(seed=0)
    assert env.render().shape == (renderer.height, renderer.width, 3)

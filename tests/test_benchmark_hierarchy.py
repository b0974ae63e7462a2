"""The hierarchical variants of lbf and rware (``hierarchy = "goals"``), step by step.

Hand-checked episodes: what each high level may choose, when an option ends (reached,
invalid, waited), what each level is paid (the flat reward, the bonus, the shaping),
and the same envs batched. The flat variant's envs are held to the packages by
test_lbf_batched.py and test_rware_batched.py.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("lbforaging")
pytest.importorskip("rware")

from hmarl.conformance import check_batched_env, check_env
from hmarl.evaluation import baseline_policies, episode_seeds, evaluate
from hmarl.registry import load_task
from hmarl.task_env import COMMON, make_task_env

NONE, NORTH, SOUTH, WEST, EAST, LOAD = range(6)  # LBF
NOOP, FORWARD, LEFT, RIGHT, TOGGLE = range(5)  # RWARE
UP, DOWN = 0, 1  # RWARE headings


def goal_env(task: str, env_id: str):
    return make_task_env(load_task(task), {"env_id": env_id, "hierarchy": "goals"})


def test_lbf_a_food_walked_to_loaded_together_and_a_wait() -> None:
    """Seed 0: food A (2, 5) and B (4, 6), level 2 each; agent_0 (level 1) at (5, 4),
    agent_1 (level 1) at (2, 0). agent_0 goes for B, agent_1 waits a step, then goes
    for B too; they load it together."""
    env = goal_env("lbf", "Foraging-8x8-2p-2f-coop-v3")
    obs, _ = env.reset(seed=0)
    assert sorted(obs) == ["agent_0_high", "agent_1_high"]
    high = obs["agent_0_high"]
    np.testing.assert_array_equal(
        high["observation"]["goals"], [[2, 5, 2, 0], [4, 6, 2, 0], [5, 4, 0, 1]]
    )
    assert high["action_mask"].tolist() == [1, 1, 1]
    obs, rewards, *_, infos = env.step({"agent_0_high": 1, "agent_1_high": 2})
    assert infos[COMMON]["elapsed"] == 0 and rewards == {}
    np.testing.assert_array_equal(obs["agent_0_low"]["goal"], [4, 6, 2, 0])
    np.testing.assert_array_equal(obs["agent_1_low"]["goal"], [2, 0, 0, 1])

    # agent_0 east, a step closer to B (paid 0.1); agent_1's wait is over, unpaid.
    obs, rewards, *_ = env.step({"agent_0_low": EAST, "agent_1_low": NONE})
    assert sorted(obs) == ["agent_1_high"]
    assert rewards == pytest.approx(
        {"agent_0_low": 0.1, "agent_0_high": 0.0, "agent_1_low": 0.0, "agent_1_high": 0.0}
    )
    obs, *_ = env.step({"agent_1_high": 1})
    assert sorted(obs) == ["agent_0_low", "agent_1_low"]

    # agent_0 beside B (0.1 more), then loading alone: level 1 of 2, nothing happens.
    # agent_1 walks south twice and east five times, to (4, 5) beside B: 0.1 a step.
    moves = [SOUTH, SOUTH, EAST, EAST, EAST, EAST, EAST]
    for t, move in enumerate(moves):
        obs, rewards, *_ = env.step({"agent_0_low": EAST if t == 0 else LOAD, "agent_1_low": move})
        assert sorted(obs) == ["agent_0_low", "agent_1_low"], t
        assert rewards["agent_0_low"] == pytest.approx(0.1 if t == 0 else 0.0)
        assert rewards["agent_1_low"] == pytest.approx(0.1) and rewards["agent_1_high"] == 0.0
    assert [p.position for p in env.flat.package.players] == [(5, 6), (4, 5)]

    # Both load: each is paid 1 * 2 / (2 * 4) (its level times B's, over the loaders'
    # levels times all food's), the low levels 1 more; both options are reached.
    obs, rewards, terminateds, *_ = env.step({"agent_0_low": LOAD, "agent_1_low": LOAD})
    assert rewards == pytest.approx(
        {"agent_0_low": 1.25, "agent_0_high": 0.25, "agent_1_low": 1.25, "agent_1_high": 0.25}
    )
    assert sorted(obs) == ["agent_0_high", "agent_1_high"] and not terminateds["__all__"]
    # B is gone: A moves up to the first slot, the second is empty and masked.
    np.testing.assert_array_equal(
        obs["agent_0_high"]["observation"]["goals"][:2], [[2, 5, 2, 0], [-1, -1, 0, 0]]
    )
    assert obs["agent_0_high"]["action_mask"].tolist() == [1, 0, 1]


def test_lbf_in_a_partial_view_an_option_holds_while_the_view_stands() -> None:
    """-2s, seed 0: agent_0 at (5, 4) sees B (4, 6) at (1, 4) of its view (corner (3, 2)).
    Loading in place keeps its view, and its option; a step east moves the view, so B
    is no longer where it saw it: invalid, unpaid (no shaping in partial views)."""
    env = goal_env("lbf", "Foraging-2s-8x8-2p-2f-coop-v3")
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs["agent_0_high"]["observation"]["goals"][0], [1, 4, 2, 0])
    env.step({"agent_0_high": 0, "agent_1_high": 2})
    obs, rewards, *_ = env.step({"agent_0_low": LOAD, "agent_1_low": NONE})
    assert sorted(obs) == ["agent_1_high"] and rewards["agent_0_low"] == 0.0
    env.step({"agent_1_high": 2})
    obs, rewards, *_ = env.step({"agent_0_low": EAST, "agent_1_low": NONE})
    assert sorted(obs) == ["agent_0_high", "agent_1_high"] and rewards["agent_0_low"] == 0.0
    np.testing.assert_array_equal(obs["agent_0_high"]["observation"]["goals"][0], [1, 3, 2, 0])


def place(env, robot: int, x: int, y: int, heading: int, shelf: int | None = None) -> None:
    """Put a robot of the goal env's warehouse at (x, y), carrying ``shelf`` (its index)."""
    from rware.warehouse import Direction

    package = env.flat.package
    agent = package.agents[robot]
    agent.x, agent.y, agent.dir = x, y, Direction(heading)
    if shelf is not None:
        agent.carrying_shelf = package.shelfs[shelf]
        agent.carrying_shelf.x, agent.carrying_shelf.y = x, y
    package._recalc_grid()


def test_rware_fetch_deliver_and_return_read_from_the_warehouse() -> None:
    env = goal_env("rware", "rware-tiny-2ag-v2")
    package = env.flat.package
    obs, _ = env.reset(seed=0)
    # Both wait a step, while the robots are placed: robot 0 under requested shelf T,
    # robot 1 on the corridor below the shelves.
    env.step({"agent_0_high": 6, "agent_1_high": 6})  # 2 shelves, 2 goals, 2 places, wait
    asked = sorted(s.id - 1 for s in package.request_queue)
    t = package.shelfs[asked[0]]
    place(env, 0, t.x, t.y, DOWN)
    place(env, 1, 0, 9, UP)
    obs, rewards, *_ = env.step({"agent_0_low": NOOP, "agent_1_low": NOOP})
    assert sorted(obs) == ["agent_0_high", "agent_1_high"]
    assert rewards["agent_0_low"] == 0.0  # waited: no bonus
    high = obs["agent_0_high"]
    goals = high["observation"]["goals"]
    shelves = [(package.shelfs[i].x, package.shelfs[i].y) for i in asked]
    np.testing.assert_array_equal(goals[:2, :2], shelves)  # the requests, in shelf order
    np.testing.assert_array_equal(goals[2:4, :2], [g for g in package.goals])
    assert goals[:, 2:].argmax(1).tolist() == [0, 0, 1, 1, 2, 2, 3]  # fetch, deliver, return, wait
    assert high["action_mask"].tolist() == [1, 1, 0, 0, 0, 0, 1]  # nothing carried: fetch or wait

    # Both choose T; robot 0 lifts it: reached (paid 1); robot 1's goal is gone: invalid.
    env.step({"agent_0_high": 0, "agent_1_high": 0})
    obs, rewards, *_ = env.step({"agent_0_low": TOGGLE, "agent_1_low": NOOP})
    assert sorted(obs) == ["agent_0_high", "agent_1_high"]
    assert rewards["agent_0_low"] == pytest.approx(1.0)
    assert rewards["agent_1_low"] == 0.0
    assert obs["agent_0_high"]["action_mask"].tolist() == [0, 0, 1, 1, 0, 0, 1]  # deliver
    assert obs["agent_1_high"]["action_mask"].tolist() == [0, 1, 0, 0, 0, 0, 1]  # T is taken

    # Robot 0 to the first goal, placed a cell above it facing down; robot 1 waits.
    env.step({"agent_0_high": 2, "agent_1_high": 6})
    gx, gy = package.goals[0]
    place(env, 0, gx, gy - 1, DOWN, shelf=asked[0])
    env.step({"agent_0_low": NOOP, "agent_1_low": NOOP})  # robot 1's wait ends
    env.step({"agent_1_high": 6})
    obs, rewards, *_ = env.step({"agent_0_low": FORWARD, "agent_1_low": NOOP})
    # Delivered: 1 from the warehouse to both levels, the bonus and a cell closer below.
    assert rewards["agent_0_high"] == 1.0
    assert rewards["agent_0_low"] == pytest.approx(1.0 + 1.0 + 0.05)
    # The new request is drawn among the others: T may go back, to the one free place,
    # where it stood.
    assert asked[0] not in {s.id - 1 for s in package.request_queue}
    high = obs["agent_0_high"]
    assert high["action_mask"].tolist() == [0, 0, 0, 0, 1, 0, 1]
    np.testing.assert_array_equal(high["observation"]["goals"][4, :2], shelves[0])


def test_rware_lifting_a_shelf_and_putting_it_back_pays_nothing() -> None:
    """Fetch reached pays the bonus; putting the shelf down before delivering it gives
    the bonus back (a lift-and-drop loop would otherwise pay 1 every two steps)."""
    env = goal_env("rware", "rware-tiny-2ag-v2")
    package = env.flat.package
    env.reset(seed=0)
    env.step({"agent_0_high": 6, "agent_1_high": 6})  # both wait while robot 0 is placed
    t = package.shelfs[sorted(s.id - 1 for s in package.request_queue)[0]]
    place(env, 0, t.x, t.y, DOWN)
    env.step({"agent_0_low": NOOP, "agent_1_low": NOOP})
    env.step({"agent_0_high": 0, "agent_1_high": 6})  # robot 0 fetches T, from under it
    obs, rewards, *_ = env.step({"agent_0_low": TOGGLE, "agent_1_low": NOOP})
    assert rewards["agent_0_low"] == pytest.approx(1.0)  # lifted: reached
    assert obs["agent_0_high"]["action_mask"].tolist() == [0, 0, 1, 1, 0, 0, 1]
    env.step({"agent_0_high": 2, "agent_1_high": 6})  # deliver it
    env.step({"agent_0_low": NOOP, "agent_1_low": NOOP})  # robot 1's wait ends
    env.step({"agent_1_high": 6})
    obs, rewards, *_ = env.step({"agent_0_low": TOGGLE, "agent_1_low": NOOP})  # puts T down
    assert rewards["agent_0_low"] == pytest.approx(-1.0)  # the bonus given back
    assert rewards["agent_0_high"] == 0.0
    assert obs["agent_0_high"]["action_mask"].tolist() == [1, 1, 0, 0, 0, 0, 1]  # invalid


@pytest.mark.parametrize(
    ("task", "env_id", "seeds"),
    [
        ("lbf", "Foraging-8x8-2p-2f-coop-v3", 16),
        ("lbf", "Foraging-2s-10x10-3p-3f-v3", 8),
        ("rware", "rware-tiny-2ag-v2", 2),
    ],
)
def test_the_goal_envs_keep_the_protocol_and_equal_their_batched_twins(task, env_id, seeds) -> None:
    config = {"env_id": env_id, "hierarchy": "goals"}
    check_env(goal_env(task, env_id), seed=0, episodes=2)
    assert check_batched_env(load_task(task), config, range(seeds), seed=1) > 0


@pytest.mark.parametrize(
    ("task", "env_id", "baseline"),
    [("lbf", "Foraging-10x10-3p-3f-v3", "together"), ("rware", "rware-tiny-2ag-v2", "fetch")],
)
def test_the_return_counts_each_flat_agent_once(task, env_id, baseline) -> None:
    """`return` is the episode's package return summed over the agents, in both variants:
    the hierarchy's high levels carry it, never both levels; the baseline split at the
    goal scores as the flat one does."""
    task = load_task(task)
    scores = {}
    for hierarchy in ("flat", "goals"):
        config = task.env_config_dict({"env_id": env_id, "hierarchy": hierarchy})
        policy = baseline_policies(task, config, seed=0)[baseline]
        result = evaluate(task, config, policy, episode_seeds(None, 12))
        per_agent = next(v for k, v in result.returns.items() if not k.endswith("_low"))
        agents = len(make_task_env(task, {"env_id": env_id}).possible_agents)
        assert result.metrics["return"] == pytest.approx(agents * per_agent)
        scores[hierarchy] = result.metrics["return"]
    assert scores["goals"] == pytest.approx(scores["flat"], rel=0.15)

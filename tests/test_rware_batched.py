"""The batched RWARE against rware itself, step for step, and against the task's env.

The lockstep runs copy each package env's state after its reset into the batched env
and step both with the same actions (the fetch baseline's, mixed with random ones):
every step, robots, shelves, requests, observations, rewards and episode ends must be
identical (the new requests too: each env draws them from its own copy of the
package's generator). Crafted states pin down how the package resolves contested
moves, its quirks included; random ones hold the array resolution to the package's
networkx code.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("rware")

from rware.warehouse import Direction

from hmarl.conformance import check_batched_env
from hmarl.task import PolicyContext
from hmarl.tasks.rware import TASK
from hmarl.tasks.rware.baselines import FetchPolicy
from hmarl.tasks.rware.batched import (
    FORWARD,
    NOOP,
    BatchedWarehouse,
    resolve_moves,
    resolve_with_networkx,
)
from hmarl.tasks.rware.config import WarehouseConfig
from hmarl.tasks.rware.state import package_state

UP, DOWN, LEFT, RIGHT = (d.value for d in Direction)

# A short-lived variant (rware's tiny warehouse, 60 steps, 25 steps without a
# delivery at most), so that the lockstep runs see episodes end and envs reset; its
# coordinates normalised (a setting no registered id uses).
SHORT = "rware-test-tiny-2ag-60steps-v2"
if SHORT not in gym.registry:
    gym.register(
        SHORT,
        entry_point="rware.warehouse:Warehouse",
        kwargs={
            **gym.spec("rware-tiny-2ag-v2").kwargs,
            "max_steps": 60,
            "max_inactivity_steps": 25,
            "normalised_coordinates": True,
        },
    )


def package_env(env_id: str):
    WarehouseConfig(env_id)  # registers the variants rware registers only on request
    return gym.make(env_id, disable_env_checker=True).unwrapped


def assert_same_state(batched: BatchedWarehouse, row: int, env, where: str) -> None:
    """Robots, shelves (both by their grids: one robot and one shelf a cell at most),
    headings, loads, requests, clocks and the generator that draws the next request."""
    assert np.array_equal(batched.robot_grid[row], env.grid[0]), f"{where}: robots"
    assert np.array_equal(batched.shelf_grid[row], env.grid[1]), f"{where}: shelves"
    robots = [
        (a.dir.value, -1 if a.carrying_shelf is None else a.carrying_shelf.id - 1)
        for a in env.agents
    ]
    assert (
        list(zip(batched.dir[row].tolist(), batched.carrying[row].tolist(), strict=True)) == robots
    ), f"{where}: headings, loads"
    queue = sorted(s.id - 1 for s in env.request_queue)
    assert np.flatnonzero(batched.requested[row]).tolist() == queue, f"{where}: requests"
    assert batched.steps[row] == env._cur_steps, f"{where}: clock"
    assert batched.inactive[row] == env._cur_inactive_steps, f"{where}: inactivity"
    assert batched.generators[row].bit_generator.state == env.np_random.bit_generator.state, (
        f"{where}: generator"
    )
    assert np.array_equal(batched.states()[row], package_state(env)), f"{where}: global state"


# (env id, envs, steps, deliveries at least): the RWARE suite, a longer
# request queue, a sensor range of 2 (registered by the task), a crowded warehouse
# with the global reward, one with the two-stage reward, and the short-lived one.
LOCKSTEP = [
    ("rware-tiny-2ag-v2", 20, 200, 5),
    ("rware-tiny-4ag-v2", 8, 150, 5),
    ("rware-small-4ag-v2", 6, 150, 1),
    ("rware-tiny-4ag-easy-v2", 4, 150, 1),
    ("rware-2s-tiny-8h-2ag-v2", 6, 150, 1),
    ("rware-1x3-3h-10ag-2req-global-v2", 4, 120, 5),
    ("rware-1x3-4h-4ag-4req-twostage-v2", 4, 150, 1),
    (SHORT, 10, 150, 1),
]


@pytest.mark.parametrize(
    ("env_id", "num_envs", "steps", "deliveries"), LOCKSTEP, ids=[v[0] for v in LOCKSTEP]
)
def test_lockstep_with_the_package(env_id: str, num_envs: int, steps: int, deliveries: int) -> None:
    envs = [package_env(env_id) for _ in range(num_envs)]
    obs = [np.stack(env.reset(seed=seed)[0]) for seed, env in enumerate(envs)]
    batched = BatchedWarehouse(WarehouseConfig(env_id), num_envs)
    for row, env in enumerate(envs):
        batched.adopt(row, env)
    driver = FetchPolicy(PolicyContext(WarehouseConfig(env_id), {}, {}, seed=0))
    driver.bind(batched)
    rng = np.random.default_rng(1)
    share = np.linspace(0.05, 0.6, num_envs)[:, None]  # random actions, per env
    delivered = ends = 0
    next_seed = num_envs
    for t in range(steps):
        assert np.array_equal(batched.observations("agents"), np.stack(obs)), f"step {t}: obs"
        actions = driver.plan(batched)
        noise = rng.integers(5, size=actions.shape)
        actions = np.where(rng.random(actions.shape) < share, noise, actions)
        step = batched.step({"agents": actions})
        for row, env in enumerate(envs):
            where = f"{env_id} env {row}, step {t + 1}"
            observation, rewards, done, truncated, _ = env.step(actions[row].tolist())
            assert np.array_equal(step.rewards["agents"][row], np.asarray(rewards, float)), where
            assert bool(step.over[row]) == done and not truncated, where
            assert_same_state(batched, row, env, where)
            obs[row] = np.stack(observation)
            delivered += sum(r > 0 for r in rewards)
            if done:  # only a time limit ends RWARE's episodes: a truncation
                ends += 1
                assert step.truncated["agents"][row].all(), where
                assert not step.terminated["agents"][row].any(), where
        if step.over.any():
            rows = np.flatnonzero(step.over)
            seeds = list(range(next_seed, next_seed + len(rows)))
            next_seed += len(rows)
            for row, seed in zip(rows, seeds, strict=True):
                obs[row] = np.stack(envs[row].reset(seed=seed)[0])
            batched.reset(seeds, where=step.over)
            for row in rows:
                assert_same_state(batched, row, envs[row], f"{env_id} env {row}, reset")
    assert delivered >= deliveries
    assert ends or env_id != SHORT


# -- crafted moves ---------------------------------------------------------------------


def crafted(env_id: str, robots: list[tuple[int, int, int]], carrying: tuple[int, ...] = ()):
    """A package env reset, then its robots placed by hand: (x, y, heading) each; the
    robots in ``carrying`` pick up the shelf they stand on."""
    env = package_env(env_id)
    env.reset(seed=0)
    for agent, (x, y, heading) in zip(env.agents, robots, strict=True):
        agent.x, agent.y, agent.dir = x, y, Direction(heading)
    env._recalc_grid()
    for i in carrying:
        agent = env.agents[i]
        agent.carrying_shelf = env.shelfs[env.grid[1, agent.y, agent.x] - 1]
    return env


def step_both(env, actions: list[int]) -> list[tuple[int, int]]:
    """One step of the package env and of a batched copy; asserts they agree and returns
    where the robots are."""
    batched = BatchedWarehouse(WarehouseConfig(env.spec.id), 1)
    batched.adopt(0, env)
    step = batched.step({"agents": np.array([actions])})
    observation, rewards, *_ = env.step(actions)
    assert_same_state(batched, 0, env, "crafted")
    assert np.array_equal(batched.observations("agents")[0], np.stack(observation))
    assert np.array_equal(step.rewards["agents"][0], np.asarray(rewards, float))
    return [(a.x, a.y) for a in env.agents]


def test_two_robots_into_one_free_cell_the_first_in_graph_order_goes() -> None:
    env = crafted("rware-tiny-2ag-v2", [(0, 0, RIGHT), (2, 0, LEFT)])
    assert step_both(env, [FORWARD, FORWARD]) == [(1, 0), (2, 0)]
    env = crafted("rware-tiny-2ag-v2", [(2, 0, LEFT), (0, 0, RIGHT)])
    assert step_both(env, [FORWARD, FORWARD]) == [(1, 0), (0, 0)]


def test_a_tie_goes_to_the_robot_whose_cell_entered_the_graph_first() -> None:
    # Robots 1 and 2 head for (3, 0), each with a robot queued behind it. Robot 0
    # drives into robot 2's cell, so that cell enters networkx's graph before robot
    # 1's does: robot 2 (and its queue) goes, although robot 1 comes first.
    robots = [(5, 0, LEFT), (2, 0, RIGHT), (4, 0, LEFT), (1, 0, RIGHT)]
    env = crafted("rware-tiny-4ag-v2", robots)
    assert step_both(env, [FORWARD] * 4) == [(4, 0), (2, 0), (3, 0), (1, 0)]


def test_quirk_who_wins_a_tie_depends_on_robots_elsewhere() -> None:
    # Robots 0 and 1 head for (1, 3). With robots 2 and 3 standing still robot 0 goes;
    # with them driving (far away, into free cells), networkx breaks the tie by the
    # order of a Python set of cell tuples, and robot 1 goes.
    robots = [(0, 3, RIGHT), (2, 3, LEFT), (0, 0, RIGHT), (9, 9, UP)]
    env = crafted("rware-tiny-4ag-v2", robots)
    assert step_both(env, [FORWARD, FORWARD, NOOP, NOOP])[:2] == [(1, 3), (2, 3)]
    env = crafted("rware-tiny-4ag-v2", robots)
    assert step_both(env, [FORWARD] * 4)[:2] == [(0, 3), (1, 3)]


def test_swaps_never_happen_rotations_do() -> None:
    env = crafted("rware-tiny-2ag-v2", [(0, 0, RIGHT), (1, 0, LEFT)])
    assert step_both(env, [FORWARD, FORWARD]) == [(0, 0), (1, 0)]
    square = [(3, 0, RIGHT), (4, 0, DOWN), (4, 1, LEFT), (3, 1, UP)]
    env = crafted("rware-tiny-4ag-v2", square)
    assert step_both(env, [FORWARD] * 4) == [(4, 0), (4, 1), (3, 1), (3, 0)]


def test_a_queue_moves_into_a_free_cell_but_not_into_a_robot_that_stays() -> None:
    queue = [(0, 0, RIGHT), (1, 0, RIGHT), (2, 0, RIGHT), (3, 0, RIGHT)]
    env = crafted("rware-tiny-4ag-v2", queue)
    assert step_both(env, [FORWARD] * 4) == [(1, 0), (2, 0), (3, 0), (4, 0)]
    env = crafted("rware-tiny-4ag-v2", queue)
    assert step_both(env, [FORWARD, FORWARD, FORWARD, NOOP]) == [(x, 0) for x in range(4)]


def test_a_loaded_robot_stops_at_standing_shelves_not_at_a_loaded_robot_driving_on() -> None:
    # Shelves stand on (1, 1) and (2, 1); robot 0 has picked up the one on (1, 1).
    env = crafted("rware-tiny-2ag-v2", [(1, 1, RIGHT), (0, 4, UP)], carrying=(0,))
    assert step_both(env, [FORWARD, NOOP])[0] == (1, 1)
    # Robot 1 has picked up the one on (2, 1): robot 0 may try, and goes if robot 1 does.
    env = crafted("rware-tiny-2ag-v2", [(1, 1, RIGHT), (2, 1, RIGHT)], carrying=(0, 1))
    assert step_both(env, [FORWARD, NOOP]) == [(1, 1), (2, 1)]
    assert step_both(env, [FORWARD, FORWARD]) == [(2, 1), (3, 1)]


def test_a_robot_facing_the_wall_stays_and_turns() -> None:
    env = crafted("rware-tiny-2ag-v2", [(0, 0, UP), (9, 10, DOWN)])
    assert step_both(env, [FORWARD, FORWARD]) == [(0, 0), (9, 10)]
    step_both(env, [2, 3])  # left, right
    assert [a.dir.value for a in env.agents] == [LEFT, LEFT]


def test_quirk_a_shelf_waiting_on_a_goal_is_delivered_again_when_requested_again() -> None:
    # Robot 0 waits on goal (4, 10) with shelf 0, which is not requested; it becomes
    # requested: the next step delivers it, though nothing moved.
    env = crafted("rware-tiny-2ag-v2", [(1, 1, DOWN), (9, 0, UP)], carrying=(0,))
    robot = env.agents[0]
    robot.x, robot.y = 4, 10
    robot.carrying_shelf.x, robot.carrying_shelf.y = 4, 10
    env._recalc_grid()
    env.request_queue[0] = robot.carrying_shelf
    batched = BatchedWarehouse(WarehouseConfig(env.spec.id), 1)
    batched.adopt(0, env)
    step = batched.step({"agents": np.array([[NOOP, NOOP]])})
    _, rewards, *_ = env.step([NOOP, NOOP])
    assert rewards == [1.0, 0.0] and step.rewards["agents"][0].tolist() == [1.0, 0.0]
    assert robot.carrying_shelf not in env.request_queue
    assert_same_state(batched, 0, env, "after the delivery")


def test_the_array_resolution_is_networkx_on_random_crowds() -> None:
    """Hundreds of crowded random moves on a 5 x 5 grid: the arrays (with their networkx
    fallback for set-ordered ties) give the package's networkx code's answer."""
    rng = np.random.default_rng(0)
    steps = np.array([[0, -1], [0, 1], [-1, 0], [1, 0]])
    kinds = {"fallback": 0, "swap": 0, "queue": 0}
    for _ in range(800):
        n = int(rng.integers(2, 9))
        cells = rng.choice(25, size=n, replace=False)
        start = np.stack([cells % 5, cells // 5], 1)
        heading = rng.integers(4, size=n)
        forward = rng.random(n) < 0.8
        target = np.where(forward[:, None], np.clip(start + steps[heading], 0, 4), start)
        starts = [tuple(map(int, s)) for s in start]
        targets = [tuple(map(int, t)) for t in target]
        want = resolve_with_networkx(starts, targets)
        moves = resolve_moves(
            (start[:, 1] * 5 + start[:, 0])[None], (target[:, 1] * 5 + target[:, 0])[None]
        )
        got = moves.committed[0]
        if moves.fallback[0]:
            kinds["fallback"] += 1
            got = want
        assert np.array_equal(got, want), (starts, targets)
        kinds["swap"] += longest_cycle(starts, targets) == 2
        kinds["queue"] += (
            sum(t in starts for s, t in zip(starts, targets, strict=True) if s != t) > 1
        )
    assert all(kinds.values()), kinds


def longest_cycle(starts: list, targets: list) -> int:
    """The longest cycle of robots each driving into the next one's cell (0 if none)."""
    after = [
        starts.index(t) if t in starts and t != s else -1
        for s, t in zip(starts, targets, strict=True)
    ]
    longest = 0
    for i in range(len(starts)):
        j, k = after[i], 1
        while j not in (-1, i) and k <= len(starts):
            j, k = after[j], k + 1
        if j == i:
            longest = max(longest, k)
    return longest


def test_resets_start_as_the_package() -> None:
    env_id = "rware-small-4ag-v2"
    batched = BatchedWarehouse(WarehouseConfig(env_id), 30)
    batched.reset(list(range(500, 530)))
    for row in range(30):
        env = package_env(env_id)
        env.reset(seed=500 + row)
        assert_same_state(batched, row, env, f"reset {row}")


def test_the_batched_env_equals_the_task_env() -> None:
    steps = check_batched_env(TASK, {"env_id": "rware-tiny-4ag-v2"}, range(2), seed=3)
    assert steps == 500


def test_unknown_and_unsupported_env_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="not a registered RWARE env"):
        WarehouseConfig("rware-huge-2ag-v2")
    with pytest.raises(ValueError, match="odd number of shelf columns"):
        WarehouseConfig("rware-1x4-8h-2ag-2req-indiv-v2")
    image = "rware-img-tiny-2ag-v2"  # rware's name; it registers these on request
    if image not in gym.registry:
        from rware.warehouse import ObservationType

        kwargs = {**gym.spec("rware-tiny-2ag-v2").kwargs, "observation_type": ObservationType.IMAGE}
        gym.register(image, entry_point="rware.warehouse:Warehouse", kwargs=kwargs)
    with pytest.raises(ValueError, match="only flattened observations"):
        BatchedWarehouse(WarehouseConfig(image), 1)

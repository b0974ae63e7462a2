"""Scoring policies on seeded episodes: the numbers `hmarl evaluate` and the benchmarks print.

Every policy is scored on the same seeds, so the trained, random and oracle
policies face the same yards. :func:`evaluate` runs them all at once on the
batched yard; :func:`evaluate_env` runs the same episodes through
:class:`~hmarl.yard.ChickenYardEnv` (one env per seed, stepped in lockstep so a
policy sees the same arrays), which the tests use to hold the two equal.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from hmarl.baselines import OraclePolicy, Policy, RandomPolicy
from hmarl.batched import BatchedYard
from hmarl.simulation import YardConfig
from hmarl.yard import ChickenYardEnv, high_agent, low_agent, robot_index


@dataclass(frozen=True)
class Metrics:
    """How a policy did, per robot, over a set of episodes."""

    mean_compatibility: float
    """Compatibility with the chosen chicken, averaged over robots (the high level's score)."""
    success_rate: float
    """Fraction of robots that reached their chicken before the time limit."""
    mean_steps: float
    """Low-level moves to arrive, averaged over the robots that arrived (NaN if none)."""

    def to_dict(self) -> dict[str, float | None]:
        return {k: (None if math.isnan(v) else v) for k, v in asdict(self).items()}


def metrics_from(compatibility: np.ndarray, arrived: np.ndarray, moves: np.ndarray) -> Metrics:
    """Metrics from per-robot arrays of any shape."""
    return Metrics(
        mean_compatibility=float(np.mean(compatibility)),
        success_rate=float(np.mean(arrived)),
        mean_steps=float(np.mean(moves[arrived])) if arrived.any() else math.nan,
    )


def normalized_score(trained: Metrics, random: Metrics, oracle: Metrics) -> float:
    """(trained - random) / (oracle - random) on mean compatibility: 0 is random, 1 the oracle."""
    return (trained.mean_compatibility - random.mean_compatibility) / (
        oracle.mean_compatibility - random.mean_compatibility
    )


@dataclass(frozen=True)
class Comparison:
    """A policy against the random and oracle baselines on the same seeded episodes."""

    policies: dict[str, Metrics]
    """Metrics of ``"trained"``, ``"random"`` and ``"oracle"``."""

    @property
    def normalized_score(self) -> float:
        return normalized_score(*(self.policies[k] for k in ("trained", "random", "oracle")))


def compare(trained: Policy, config: YardConfig, seeds: Sequence[int]) -> Comparison:
    """Score ``trained``, random (seeded with the first episode's seed) and the oracle."""
    return Comparison(
        {
            "trained": evaluate(trained, config, seeds),
            "random": evaluate(RandomPolicy(config, seeds[0]), config, seeds),
            "oracle": evaluate(OraclePolicy(config), config, seeds),
        }
    )


def episode_seeds(seed: int, episodes: int) -> list[int]:
    """The episode seeds an evaluation with this base seed uses."""
    return [seed + i for i in range(episodes)]


def evaluate(policy: Policy, config: YardConfig, seeds: Sequence[int]) -> Metrics:
    """Run one episode per seed on the batched yard, all at once."""
    yard = BatchedYard(config)
    yard.reset(seeds)
    yard.step(policy.high(yard.high_observations()))
    while not yard.all_done:
        # Only yards with a robot still out ask the policy: late in an evaluation
        # a few slow yards would otherwise cost a forward pass over all of them.
        live = ~yard.done.all(axis=1)
        actions = np.zeros(yard.targets.shape, dtype=np.int64)
        actions[live] = policy.low({k: v[live] for k, v in yard.low_observations().items()})
        yard.step(actions)
    return metrics_from(yard.chosen_compatibility(), yard.arrived, yard.moves)


def evaluate_env(policy: Policy, config: YardConfig, seeds: Sequence[int]) -> Metrics:
    """The same as :func:`evaluate`, through one :class:`ChickenYardEnv` per seed."""
    envs = [ChickenYardEnv(config) for _ in seeds]
    robots = range(1, config.num_robots + 1)
    # Each robot's latest observation, kept after it is done so the policy is
    # called on (live yards, R) arrays, exactly as on the batched yard.
    latest = [env.reset(seed=int(s))[0] for env, s in zip(envs, seeds, strict=True)]
    compat = np.zeros((len(envs), config.num_robots))
    arrived = np.zeros_like(compat, dtype=bool)
    moves = np.zeros_like(compat, dtype=np.int64)
    done = [False] * len(envs)
    level, agent_of = "high", high_agent
    while not all(done):
        live = [b for b in range(len(envs)) if not done[b]]
        stacked = _stack([[latest[b][agent_of(i)] for i in robots] for b in live])
        actions = policy.high(stacked) if level == "high" else policy.low(stacked)
        for row, b in enumerate(live):
            env = envs[b]
            due = {a: actions[row, robot_index(a)] for a in env.due_agents}
            obs, _, _, _, infos = env.step(due)
            _record_finished(infos, compat[b], arrived[b], moves[b])
            latest[b] = {**latest[b], **{a: o for a, o in obs.items() if a.endswith("low")}}
            done[b] = not env.due_agents
        level, agent_of = "low", low_agent
    return metrics_from(compat, arrived, moves)


def _record_finished(infos: dict, compat: list, arrived: list, moves: list) -> None:
    """Copy what finishing agents report (their infos) into per-robot records."""
    for agent, info in infos.items():
        robot = robot_index(agent)
        if agent.endswith("_high"):
            compat[robot] = info["compatibility"]
        else:
            arrived[robot], moves[robot] = info["arrived"], info["steps"]


def _stack(rows: list[list[dict[str, np.ndarray]]]) -> dict[str, np.ndarray]:
    """(B, R) nested observations into one dict of (B, R, ...) arrays."""
    return {k: np.array([[o[k] for o in row] for row in rows]) for k in rows[0][0]}


@dataclass
class Episode:
    """One episode through :class:`ChickenYardEnv`, as ``hmarl random`` prints it."""

    seed: int
    returns: dict[str, float]
    """Summed reward per agent id."""
    compatibility: list[float]
    """Per robot, with its chosen chicken."""
    arrived: list[bool]
    moves: list[int]
    steps: int
    """Environment steps, the choosing step included."""


StepCallback = Callable[[ChickenYardEnv, dict[str, float]], None]
"""Called with the env and the summed reward per agent id so far (a live dict: copy to keep)."""


def play_episode(
    env: ChickenYardEnv, policy: Policy, seed: int, on_step: StepCallback | None = None
) -> Episode:
    """Play one episode agent by agent, the way RLlib's env runners drive the env.

    ``on_step``, if given, is called after the reset and after every step: the
    hook :mod:`hmarl.render` draws its frames from.
    """
    obs, _ = env.reset(seed=seed)
    n = env.config.num_robots
    returns = dict.fromkeys(env.possible_agents, 0.0)
    compat, arrived, moves = [math.nan] * n, [False] * n, [0] * n
    steps = 0
    if on_step is not None:
        on_step(env, returns)
    while env.due_agents:
        actions = {
            a: policy.high(obs[a]) if a.endswith("high") else policy.low(obs[a])
            for a in env.due_agents
        }
        obs, rewards, _, _, infos = env.step(actions)
        steps += 1
        for agent, reward in rewards.items():
            returns[agent] += reward
        _record_finished(infos, compat, arrived, moves)
        if on_step is not None:
            on_step(env, returns)
    return Episode(seed, returns, compat, arrived, moves, steps)

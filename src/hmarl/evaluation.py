"""Scoring policies on seeded episodes of a task: what `hmarl evaluate` and the benchmarks print.

Every policy faces the same episodes (the same seeds). For each policy id this
reports the mean return per agent-episode, and the task's :class:`~hmarl.task.Metric`
values, read from each agent's last info. :func:`compare` puts the trained policy
beside the random policy and the task's baselines and works out the task's
:class:`~hmarl.task.Score`.

Episodes run on the task's batched env when it declares one (:func:`run_batched`,
thousands of episodes a second) and otherwise through its env (:func:`run_envs`,
many envs stepped in lockstep so that a policy acts on all due agents at once).
The tests hold the two equal on the same seeds.

Evaluation seeds start at :data:`EVAL_SEED_BASE` unless given: training never
resets an env with a seed that high, so the episodes a policy is scored on are
not the ones it trained on.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hmarl.action_masks import MaskError, check_legal
from hmarl.batched_env import select
from hmarl.policies import RandomPolicy
from hmarl.task import Policy, PolicyContext, Task, TaskError

EVAL_SEED_BASE = 1_000_000_000
"""Evaluation episodes are seeded from here on; training seeds stay below it."""


def episode_seeds(seed: int | None, episodes: int) -> list[int]:
    """The seeds of an evaluation: ``episodes`` of them from ``seed`` (default: the base)."""
    first = EVAL_SEED_BASE if seed is None else seed
    return [first + i for i in range(episodes)]


@dataclass
class Tally:
    """Finished agent-episodes of one policy: returns and the last infos' values."""

    keys: frozenset[str]
    """The info keys the task's metrics read."""
    returns: list[np.ndarray] = field(default_factory=list)
    values: dict[str, list[np.ndarray]] = field(default_factory=lambda: defaultdict(list))

    def add(self, returns: np.ndarray, infos: Mapping[str, Any]) -> None:
        """Agent-episodes that ended: their returns (n,) and info values (n,) per key."""
        returns = np.atleast_1d(np.asarray(returns, dtype=np.float64))
        self.returns.append(returns)
        for key in self.keys:
            self.values[key].append(_as_floats(infos.get(key), len(returns)))

    def column(self, key: str) -> np.ndarray:
        return np.concatenate(self.values[key]) if self.values[key] else np.zeros(0)

    @property
    def count(self) -> int:
        return sum(len(r) for r in self.returns)


def _as_floats(values: Any, n: int) -> np.ndarray:
    """Info values as floats; missing or None become NaN (left out of every metric)."""
    if values is None:
        return np.full(n, np.nan)
    array = np.asarray(values, dtype=object).reshape(n)
    return np.array([np.nan if v is None else float(v) for v in array], dtype=np.float64)


@dataclass(frozen=True)
class Result:
    """How one policy did: mean return per agent-episode of each policy id, and task metrics."""

    returns: dict[str, float]
    metrics: dict[str, float]
    agent_episodes: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        """``{"returns": {policy: mean}, metric: value, ...}``; NaN (no data) becomes None."""
        return {
            "returns": {k: _none_if_nan(v) for k, v in self.returns.items()},
            **{k: _none_if_nan(v) for k, v in self.metrics.items()},
        }


def _none_if_nan(value: float) -> float | None:
    return None if math.isnan(value) else value


def summarize(task: Task, tallies: Mapping[str, Tally]) -> Result:
    returns = {
        policy: float(np.mean(np.concatenate(t.returns))) if t.count else math.nan
        for policy, t in tallies.items()
    }
    metrics = {}
    for metric in task.metrics:
        read = [tallies[p] for p in metric.policies if p in tallies]
        values = np.concatenate([np.zeros(0)] + [t.column(metric.key) for t in read])
        if metric.where is not None:
            wheres = np.concatenate([np.zeros(0)] + [t.column(metric.where) for t in read])
            values = values[np.nan_to_num(wheres) != 0]
        values = values[np.isfinite(values)]
        metrics[metric.name] = float(values.mean()) if len(values) else math.nan
    return Result(returns, metrics, {p: t.count for p, t in tallies.items()})


def metric_keys(task: Task) -> dict[str, frozenset[str]]:
    """The info keys each policy's metrics read."""
    keys: dict[str, set[str]] = defaultdict(set)
    for metric in task.metrics:
        for policy in metric.policies:
            keys[policy] |= {metric.key, *([metric.where] if metric.where else [])}
    return {policy: frozenset(k) for policy, k in keys.items()}


# -- running episodes ----------------------------------------------------------


def run_envs(
    task: Task, env_config: Mapping[str, Any], policy: Policy, seeds: Sequence[int]
) -> dict[str, Tally]:
    """One episode per seed through the task's env, all envs stepped in lockstep.

    Each step, the observations of every due agent of a policy (across all envs)
    go to the policy in one batch.
    """
    from hmarl.task_env import make_task_env

    envs = [make_task_env(task, env_config) for _ in seeds]
    spaces = task.policy_spaces(envs[0])
    runs = [EnvRun(env, int(seed)) for env, seed in zip(envs, seeds, strict=True)]
    bind(policy, envs)
    while any(run.due for run in runs):
        asking = [(run, agent) for run in runs for agent in run.due]
        for run, actions in _act(task, policy, spaces, asking).items():
            run.step(actions)
    keys = metric_keys(task)
    tallies = {p: Tally(keys.get(p, frozenset())) for p in spaces}
    for run in runs:
        for agent, episode_return in run.returns.items():
            tallies[task.policy_id(agent)].add(episode_return, run.infos.get(agent) or {})
    return tallies


def bind(policy: Policy, env: Any) -> None:
    """Show a policy that reads the env's state (it has ``bind``) the env it acts in."""
    binder = getattr(policy, "bind", None)
    if callable(binder):
        binder(env)


def _act(
    task: Task,
    policy: Policy,
    spaces: Mapping[str, tuple[Any, Any]],
    asking: list[tuple[Any, str]],
) -> dict[Any, dict[str, Any]]:
    """Actions for (run, agent) pairs: one ``policy.act`` call per policy id.

    ``spaces`` holds each policy's (observation, action) space. The pair is the agent's
    key for a policy with memory.
    """
    found = act_batched(
        task, policy, spaces, [(agent, run.obs[agent]) for run, agent in asking], keys=asking
    )
    actions: dict[Any, dict[str, Any]] = defaultdict(dict)
    for (run, agent), action in zip(asking, found, strict=True):
        actions[run][agent] = action
    return actions


def act_batched(
    task: Task,
    policy: Policy,
    spaces: Mapping[str, tuple[Any, Any]],
    asking: Sequence[tuple[str, Any]],
    keys: Sequence[Hashable] | None = None,
) -> list[Any]:
    """An action for each (agent, observation): one ``policy.act`` call per policy id.

    ``spaces`` holds each policy's (observation, action) space: the observations are
    stacked in the one, and an action a mask forbids is an error (see ``legal_actions``).
    ``keys`` name the agents for a policy with memory (default: their ids).
    """
    keys = [agent for agent, _ in asking] if keys is None else keys
    rows: dict[str, list[int]] = defaultdict(list)
    for i, (agent, _) in enumerate(asking):
        rows[task.policy_id(agent)].append(i)
    actions: list[Any] = [None] * len(asking)
    for policy_id, indices in rows.items():
        batch = stack(spaces[policy_id][0], [asking[i][1] for i in indices])
        chosen = legal_actions(
            policy, policy_id, batch, spaces[policy_id], agents=[keys[i] for i in indices]
        )
        for i, action in zip(indices, chosen, strict=True):
            actions[i] = action
    return actions


def legal_actions(
    policy: Policy,
    policy_id: str,
    obs: Any,
    spaces: tuple[Any, Any],
    agents: Sequence[Hashable] | None = None,
) -> Any:
    """``policy.act(policy_id, obs)`` (with ``agents``, a key per row, for a policy with
    memory); an action its observation's mask forbids is an error that names the policy
    (see :mod:`hmarl.action_masks`)."""
    if getattr(policy, "remembers", False):
        actions = policy.act(policy_id, obs, agents=agents)
    else:
        actions = policy.act(policy_id, obs)
    try:
        check_legal(policy_id, obs, actions, spaces, who=type(policy).__name__)
    except MaskError as err:
        raise TaskError(str(err)) from None
    return actions


def stack(space: Any, items: list[Any]) -> Any:
    """Observations of one space stacked into a batch (dicts of arrays for Dict spaces)."""
    from gymnasium.vector.utils import concatenate, create_empty_array

    return concatenate(space, items, create_empty_array(space, len(items)))


class EnvRun:
    """One episode of a task's env, played agent by agent as RLlib's env runners do.

    ``returns`` and ``infos`` hold, for every agent that observed, its summed reward
    and its last info.
    """

    def __init__(self, env: Any, seed: int) -> None:
        self.env, self.seed = env, seed
        self.obs, infos = env.reset(seed=seed)
        self.returns = dict.fromkeys(self.obs, 0.0)
        self.infos = {a: i for a, i in infos.items() if a in self.obs}
        self.due = list(self.obs)
        self.steps = 0
        self._early: dict[str, float] = {}

    def step(self, actions: dict[str, Any]) -> None:
        from hmarl.task_env import elapsed_of

        obs, rewards, terminateds, truncateds, infos = self.env.step(actions)
        self.steps += elapsed_of(infos)
        for agent in obs:
            if agent not in self.returns:
                self.returns[agent] = self._early.pop(agent, 0.0)
        for agent, reward in rewards.items():
            into = self.returns if agent in self.returns else self._early
            into[agent] = into.get(agent, 0.0) + float(reward)
        self.infos.update({a: i for a, i in infos.items() if a in self.returns})
        self.obs = obs
        over = terminateds.get("__all__") or truncateds.get("__all__")
        ending = {a for a in obs if terminateds.get(a) or truncateds.get(a)}
        self.due = [] if over else [a for a in obs if a not in ending]


@dataclass
class Episode:
    """One episode through a task's env, as ``hmarl random`` prints it."""

    seed: int
    returns: dict[str, float]
    """Summed reward per agent id."""
    infos: dict[str, Any]
    """Last info per agent id."""
    steps: int
    """Environment steps of world time (a decision that takes none counts 0)."""


def play_episode(
    task: Task,
    env: Any,
    policy: Policy,
    seed: int,
    on_step: Callable[[EnvRun, bool], None] | None = None,
) -> Episode:
    """Play one episode; ``on_step(run, over)`` is called after the reset and every step."""
    spaces = task.policy_spaces(env)
    run = EnvRun(env, int(seed))
    bind(policy, env)
    if on_step is not None:
        on_step(run, False)
    while run.due:
        run.step(_act(task, policy, spaces, [(run, agent) for agent in run.due])[run])
        if on_step is not None:
            on_step(run, not run.due)
    return Episode(int(seed), run.returns, run.infos, run.steps)


def run_batched(
    task: Task, env_config: Mapping[str, Any], policy: Policy, seeds: Sequence[int]
) -> dict[str, Tally]:
    """One episode per seed on the task's batched env, all at once.

    Only agents due to act ask the policy, so envs whose episode is over cost
    nothing while slower ones finish.
    """
    if task.make_batched_env is None:
        raise TaskError(f"task {task.name} declares no batched env")
    env = task.make_batched_env(dict(env_config), len(seeds))
    env.reset([int(s) for s in seeds])
    bind(policy, env)
    policies = group_policies(task, env)
    keys = metric_keys(task)
    tallies = {p: Tally(keys.get(p, frozenset())) for p in dict.fromkeys(policies.values())}
    returns = {g: np.zeros((env.num_envs, len(a))) for g, a in env.groups.items()}
    over = np.zeros(env.num_envs, dtype=bool)
    while not over.all():
        actions, asked = {}, False
        for group, policy_id in policies.items():
            due, space = env.due(group), env.action_spaces[group]
            actions[group] = np.zeros(due.shape + space.shape, dtype=space.dtype)
            if due.any():
                pair = (env.observation_spaces[group], space)
                obs = select(env.observations(group), due)
                agents = [(group, b, n) for b, n in zip(*np.nonzero(due), strict=True)]
                actions[group][due] = legal_actions(policy, policy_id, obs, pair, agents)
                asked = True
        if not asked:
            raise TaskError(
                f"task {task.name}: batched envs {np.flatnonzero(~over)[:5].tolist()} are "
                "not over, but no agent is due to act"
            )
        step = env.step(actions)
        for group, policy_id in policies.items():
            returns[group] += step.rewards[group]
            ended = step.terminated[group] | step.truncated[group]
            if ended.any():
                infos = {k: v[ended] for k, v in step.infos[group].items()}
                tallies[policy_id].add(returns[group][ended], infos)
                returns[group][ended] = 0.0
        over |= step.over
    return tallies


def group_policies(task: Task, env: Any) -> dict[str, str]:
    """The policy of each group of a batched env (every agent of a group must share it)."""
    policies = {}
    for group, agents in env.groups.items():
        found = {task.policy_id(agent) for agent in agents}
        if len(found) != 1:
            raise TaskError(
                f"task {task.name}: batched group {group!r} mixes policies {sorted(found)}"
            )
        policies[group] = found.pop()
    return policies


def evaluate(
    task: Task,
    env_config: Mapping[str, Any],
    policy: Policy,
    seeds: Sequence[int],
    batched: bool | None = None,
) -> Result:
    """Score ``policy`` on one episode per seed (batched when the task can, unless told)."""
    if not len(seeds):
        raise ValueError("no episodes to evaluate")
    use_batched = task.make_batched_env is not None if batched is None else batched
    run = run_batched if use_batched else run_envs
    return summarize(task, run(task, env_config, policy, seeds))


# -- the trained policy against the baselines ------------------------------------


@dataclass(frozen=True)
class Comparison:
    """Policies on the same seeded episodes, and the task's score of the trained one."""

    policies: dict[str, Result]
    """``trained``, ``random``, then the task's baselines."""
    score: float | None
    """(trained - random) / (reference - random) on the task's score metric, if defined."""
    score_note: str
    """What the score means, or why it is undefined."""


def baseline_policies(
    task: Task, env_config: Mapping[str, Any], seed: int | None = None
) -> dict[str, Policy]:
    """``random`` and the task's named baselines, built for ``env_config``'s env."""
    from hmarl.task_env import make_task_env

    env = make_task_env(task, env_config)
    spaces = task.policy_spaces(env)
    context = PolicyContext(
        env_config=task.env_config(env_config),
        observation_spaces={p: pair[0] for p, pair in spaces.items()},
        action_spaces={p: pair[1] for p, pair in spaces.items()},
        seed=seed,
    )
    made: dict[str, Policy] = {
        "random": RandomPolicy(context.action_spaces, seed, context.observation_spaces)
    }
    for name, factory in task.baselines.items():
        made[name] = factory(context)
    return made


def compare(
    task: Task,
    env_config: Mapping[str, Any],
    trained: Policy,
    seeds: Sequence[int],
    *,
    batched: bool | None = None,
    run: Callable[..., Result] = evaluate,
    known: Mapping[str, Result] | None = None,
) -> Comparison:
    """``trained``, random (seeded with the first episode's seed) and the task's baselines.

    ``known`` holds results of random and baselines already measured on these very
    seeds (by :func:`evaluate_baselines`); only the others are played.
    """
    known = dict(known or {})
    baselines = {} if known else baseline_policies(task, env_config, int(seeds[0]))
    contenders = {"trained": trained, **baselines}
    results = {name: run(task, env_config, p, seeds, batched) for name, p in contenders.items()}
    results |= {name: known[name] for name in known if name not in results}
    score, note = task_score(task, results)
    return Comparison(results, score, note)


def evaluate_baselines(
    task: Task, env_config: Mapping[str, Any], seeds: Sequence[int]
) -> tuple[dict[str, Result], dict[str, float]]:
    """Random and the task's baselines on ``seeds``, as :func:`compare` plays them.

    Returns their results and the seconds each took.
    """
    import time

    results, seconds = {}, {}
    for name, policy in baseline_policies(task, env_config, int(seeds[0])).items():
        began = time.perf_counter()
        results[name] = evaluate(task, env_config, policy, seeds)
        seconds[name] = time.perf_counter() - began
    return results, seconds


def task_score(task: Task, results: Mapping[str, Result]) -> tuple[float | None, str]:
    """The task's score of ``trained`` among ``results``, and what it means (or why none)."""
    score = task.score
    if score is None:
        return None, "the task declares no score"
    value = {name: r.metrics[score.metric] for name, r in results.items()}
    baselines = [name for name in results if name not in ("trained", "random")]
    reference = (
        max(baselines, key=lambda n: value[n]) if score.reference == "best" else score.reference
    )
    span = value[reference] - value["random"]
    if not math.isfinite(span) or abs(span) < 1e-9:
        return None, (
            f"undefined: {reference} and random score the same {score.metric} "
            f"({value['random']:.3f}) on these episodes, so there is no range to place "
            "the trained policy in"
        )
    normalized = (value["trained"] - value["random"]) / span
    return normalized, f"0 = random, 1 = {reference}"

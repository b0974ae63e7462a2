"""Conformance checks for hierarchical multi-agent environments, shipped as library functions.

The same idea as PettingZoo's ``parallel_api_test``, written for environments that
follow RLlib's ``MultiAgentEnv`` with dynamic agent ids: fixed ``possible_agents``,
per-agent ``observation_spaces`` and ``action_spaces``, observations only for the
agents due to act next (and the final ones of agents that finish), and ``agents``
listing the agents still in the episode. ``hmarl train`` runs :func:`check_env` on
every task before training starts.
RLlib's own env checker looks at one reset and one step; these checks play whole seeded
episodes with random actions, because the mistakes a hierarchy invites (an agent revived
after it ended, a level that acts out of turn, an episode that never sets ``__all__``)
only show later in an episode.

:func:`check_env` asserts, at every step:

- the observations' keys are exactly the agents due to act next (``env.due_agents``
  where the env has it), plus the final observations of agents ending on this step;
  every id is one of ``possible_agents``; an agent that ends is given its final
  observation; ``env.agents`` lists every agent due to act next and no agent that
  ended before this step (RLlib's "agents in the episode": all that are alive, the
  ones ending now may stay listed; or, PettingZoo's way, just those due to act);
- every observation is inside its space, and that space is the same object every call;
- an action mask (:mod:`hmarl.action_masks`) of an agent due to act has one 0 or 1 per
  action and allows at least one; random actions are drawn among the legal ones;
- a global state (``state_space`` and ``state()``, :mod:`hmarl.global_state`) is
  inside its space while the episode runs;
- no agent observes (so acts) again once it was terminated or truncated;
- rewards, terminateds, truncateds and infos name only possible agents; an agent
  that acted and observes on the same step has a reward on that step (RLlib's
  episodes refuse the step otherwise);
- ``__all__`` is in ``terminateds`` and ``truncateds``, and one of them is True
  exactly when no agent is due any more; by then every agent that observed has ended;
- what RLlib refuses (:func:`check_rllib_rules`): a reward or an info for an agent
  that ended; and on an episode's first step, an agent named in the step's results
  that ``env.agents`` does not list after it (and that does not end on it).

:func:`check_determinism` asserts that two fresh environments, reset with the same
seeds and given the same seeded actions, return identical results step for step.

Both raise :class:`AssertionError` naming the episode, the step and the agent. Both
play random actions sampled from the action spaces, or the actions a ``choose``
function picks (property-based tests draw them with Hypothesis).

>>> from hmarl.tasks.chicken_yard.env import ChickenYardEnv
>>> check_env(ChickenYardEnv({"timeout": 50}), seed=0, episodes=2)
>>> check_determinism(lambda: ChickenYardEnv({"timeout": 50}), seed=0, episodes=2)

:func:`check_batched_env` holds a task's batched env equal to its env, step for
step, on the same seeds and actions.

What RLlib itself enforces once training runs, checked before it does:
:func:`check_rllib_episodes` replays whole episodes through RLlib's own
``MultiAgentEpisode`` as its env runner feeds it, and :func:`check_rllib_env_checker`
runs RLlib's env checker; both name the step, the agent and the rule in one line.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from hmarl.action_masks import MASK_KEY, mask_problem, observation_key, random_legal_actions
from hmarl.batched_env import agent_groups, world_time
from hmarl.global_state import check_state, state_space_of

if TYPE_CHECKING:
    from ray.rllib.env.multi_agent_env import MultiAgentEnv

    from hmarl.task import Task

__all__ = [
    "Chooser",
    "Transition",
    "assert_same",
    "check_batched_env",
    "check_determinism",
    "check_env",
    "check_rllib_env_checker",
    "check_rllib_episodes",
    "check_rllib_rules",
]

AgentDict = dict[str, Any]
"""A per-agent dict keyed by agent id (plus ``__all__`` or ``__common__``)."""


@dataclass
class Transition:
    """What one ``reset`` (step 0, no actions or rewards) or ``step`` returned."""

    episode: int
    step: int
    actions: AgentDict
    obs: AgentDict
    rewards: AgentDict
    terminateds: AgentDict
    truncateds: AgentDict
    infos: AgentDict

    @property
    def where(self) -> str:
        return f"episode {self.episode}, step {self.step}"

    @property
    def ending(self) -> set[str]:
        """Agents terminated or truncated on this step."""
        return {
            a
            for a in (*self.terminateds, *self.truncateds)
            if a != "__all__" and (self.terminateds.get(a) or self.truncateds.get(a))
        }

    @property
    def due(self) -> set[str]:
        """Agents observed on this step that have to act next."""
        return set(self.obs) - self.ending

    @property
    def over(self) -> bool:
        return bool(self.terminateds.get("__all__") or self.truncateds.get("__all__"))


Chooser = Callable[[Transition, str, Any], Any]
"""``choose(last, agent, action_space)``: the action of a due agent after transition ``last``.

For :func:`check_determinism` it must give the same action when asked again for the
same episode, step and agent.
"""


def play(
    env: MultiAgentEnv,
    seed: int,
    episodes: int,
    max_steps: int,
    step_budget: int | None = None,
    choose: Chooser | None = None,
) -> Iterator[Transition]:
    """Play episodes with actions sampled from the action spaces; yield every reset and step.

    Episode ``i`` is reset with ``seed + i``; the action spaces are seeded from
    ``seed``, so the same arguments on a fresh environment give the same actions.
    With ``choose``, it picks the actions instead. With ``step_budget``, play stops
    quietly after that many steps in all.
    """
    spaces = {agent: env.get_action_space(agent) for agent in env.possible_agents}
    for i, agent in enumerate(env.possible_agents):
        spaces[agent].seed(seed + i)
    mask_keys = {a: observation_key(env.get_observation_space(a)) for a in env.possible_agents}

    def sample(last: Transition, agent: str) -> Any:
        if choose is not None:
            return choose(last, agent, spaces[agent])
        if mask_keys[agent] is None:
            return spaces[agent].sample()
        legal = np.asarray(last.obs[agent][MASK_KEY], dtype=np.int8)
        return spaces[agent].sample(mask=legal)

    played = 0
    for episode in range(episodes):
        obs, infos = env.reset(seed=seed + episode)
        last = Transition(episode, 0, {}, obs, {}, {}, {}, infos)
        yield last
        while not last.over and last.due:
            if last.step >= max_steps:
                raise AssertionError(f"{last.where}: the episode did not end in {max_steps} steps")
            if step_budget is not None and played >= step_budget:
                return
            actions = {a: sample(last, a) for a in last.obs if a in last.due}
            last = Transition(episode, last.step + 1, actions, *env.step(actions))
            played += 1
            yield last


def check_env(
    env: MultiAgentEnv,
    seed: int = 0,
    episodes: int = 3,
    max_steps: int = 100_000,
    step_budget: int | None = None,
    choose: Chooser | None = None,
) -> None:
    """Play seeded random episodes and assert the API contract (see the module docstring).

    With ``choose``, it picks the actions; with ``step_budget``, the check stops after
    that many steps in all.
    """
    possible = set(env.possible_agents)
    spaces = {a: env.get_observation_space(a) for a in possible}
    masks = {a: observation_key(spaces[a]) for a in possible}
    state_space = state_space_of(env)
    ended: set[str] = set()
    observed: set[str] = set()
    for t in play(env, seed, episodes, max_steps, step_budget, choose):
        if t.step == 0:
            ended, observed = set(), set()
            assert t.obs, f"{t.where}: reset() returned no observations"
        for name, d, extra in (
            ("observation", t.obs, set()),
            ("reward", t.rewards, set()),
            ("terminated", t.terminateds, {"__all__"}),
            ("truncated", t.truncateds, {"__all__"}),
            ("info", t.infos, {"__common__"}),
        ):
            strangers = set(d) - possible - extra
            assert not strangers, f"{t.where}: {name} for unknown agent(s) {sorted(strangers)}"
        for agent, ob in t.obs.items():
            assert agent not in ended, f"{t.where}: {agent} observed again after it ended"
            space = env.get_observation_space(agent)
            assert space is spaces[agent], (
                f"{t.where}: observation_spaces[{agent!r}] is a new object; "
                "spaces must not change after construction"
            )
            assert space.contains(ob), f"{t.where}: {agent}'s observation {ob!r} is not in {space}"
            if masks[agent] is not None and agent in t.due:
                problem = mask_problem(ob[MASK_KEY], env.get_action_space(agent))
                assert problem is None, f"{t.where}: {agent}'s observation: {problem}"
        if state_space is not None and not t.over:
            problem = check_state(env, state_space)
            assert problem is None, f"{t.where}: {problem}"
        for agent, reward in t.rewards.items():
            assert isinstance(reward, int | float | np.number) and not isinstance(reward, bool), (
                f"{t.where}: {agent}'s reward {reward!r} is not a number"
            )
        for agent in set(t.actions) & set(t.obs):
            assert agent in t.rewards, (
                f"{t.where}: {agent} acted and observes again, but got no reward on this step"
            )
        for agent in t.ending:
            assert agent not in ended, f"{t.where}: {agent} ended a second time"
            assert agent in t.obs, f"{t.where}: {agent} ended without a final observation"
        listed = set(env.agents)
        check_rllib_rules(t, listed, ended)
        assert t.due <= listed <= possible - ended, (
            f"{t.where}: env.agents {sorted(listed)} must list every agent due to act "
            f"{sorted(t.due)} and no agent that ended before {sorted(ended & listed)}"
        )
        due = getattr(env, "due_agents", None)
        assert due is None or set(due) == t.due, (
            f"{t.where}: env.due_agents {sorted(due)} are not the agents observed to act "
            f"next {sorted(t.due)}"
        )
        observed |= set(t.obs)
        ended |= t.ending
        if t.step == 0:
            continue
        for name, d in (("terminateds", t.terminateds), ("truncateds", t.truncateds)):
            assert "__all__" in d, f"{t.where}: {name} has no '__all__'"
        assert t.over == (not t.due), (
            f"{t.where}: '__all__' is {t.over} but agents due to act are {sorted(t.due)}"
        )
        if t.over:
            hanging = observed - ended
            assert not hanging, f"{t.where}: the episode ended but {sorted(hanging)} never did"


def check_determinism(
    make_env: Callable[[], MultiAgentEnv],
    seed: int = 0,
    episodes: int = 3,
    max_steps: int = 100_000,
    choose: Chooser | None = None,
) -> None:
    """Two fresh environments, the same seeds and actions: assert identical results."""
    runs = (play(make_env(), seed, episodes, max_steps, choose=choose) for _ in range(2))
    for a, b in zip(*runs, strict=True):
        for name in ("obs", "rewards", "terminateds", "truncateds", "infos"):
            assert_same(getattr(a, name), getattr(b, name), f"{a.where}: {name}")


def assert_same(a: Any, b: Any, where: str) -> None:
    """Assert equal values, recursing into dicts and sequences; NaN equals NaN."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert list(a) == list(b), f"{where}: keys {list(a)} != {list(b)}"
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, list | tuple) and isinstance(b, list | tuple):
        assert len(a) == len(b), f"{where}: lengths {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray | np.generic) or isinstance(b, np.ndarray | np.generic):
        a, b = np.asarray(a), np.asarray(b)
        nan_ok = a.dtype.kind in "fc" and b.dtype.kind in "fc"
        assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=nan_ok), (
            f"{where}: {a!r} != {b!r}"
        )
    elif isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return
    else:
        assert type(a) is type(b) and a == b, f"{where}: {a!r} != {b!r}"


def check_batched_env(
    task: Task,
    env_config: dict[str, Any],
    seeds: Sequence[int],
    seed: int = 0,
    max_steps: int = 100_000,
) -> int:
    """The task's batched env against its env, one env per seed, the same random actions.

    Asserts at every step, for every env: the same agents due, the same observations
    of due and ending agents, the same rewards, the same terminated and truncated
    agents with the same last infos, the same end of the episode, and the same global
    state while it runs (when the env has one), and the same world time per step
    (:mod:`hmarl.task_env`). Returns the number of steps compared.
    """
    from hmarl.task_env import elapsed_of, make_task_env

    batched = task.make_batched_env(dict(env_config), len(seeds))
    batched.reset([int(s) for s in seeds])
    envs = [make_task_env(task, env_config) for _ in seeds]
    observed = [env.reset(seed=int(s))[0] for env, s in zip(envs, seeds, strict=True)]
    index = agent_groups(batched)
    rng = np.random.default_rng(seed)
    over = np.zeros(len(seeds), dtype=bool)
    with_state = state_space_of(envs[0]) is not None
    for b, obs in enumerate(observed):
        _same_obs(batched, index, b, obs, set(obs), "after reset")
        if with_state:
            _same_state(batched, envs[b], b, "after reset")
    steps = 0
    while not over.all():
        assert steps < max_steps, f"the episodes did not end in {max_steps} steps"
        steps += 1
        actions = {
            group: _random_actions(
                rng, batched.action_spaces[group], (len(seeds), len(agents)), _legal(batched, group)
            )
            for group, agents in batched.groups.items()
        }
        results = []
        for b, env in enumerate(envs):
            if over[b]:
                results.append(None)
                continue
            due = {a for a in index if batched.due(index[a][0])[b, index[a][1]]}
            assert due == set(observed[b]), (
                f"env {b} (seed {seeds[b]}), step {steps}: batched due {sorted(due)}, "
                f"env due {sorted(observed[b])}"
            )
            results.append(
                env.step({a: actions[index[a][0]][b, index[a][1]] for a in sorted(observed[b])})
            )
        step = batched.step(actions)
        for b, result in enumerate(results):
            if result is None:
                continue
            where = f"env {b} (seed {seeds[b]}), step {steps}"
            obs, rewards, terminateds, truncateds, infos = result
            for agent, (group, i) in index.items():
                got = float(step.rewards[group][b, i])
                assert math.isclose(got, float(rewards.get(agent, 0.0)), abs_tol=1e-9), (
                    f"{where}: {agent} reward {got} != {rewards.get(agent, 0.0)}"
                )
                for name, flags, ours in (
                    ("terminated", terminateds, step.terminated),
                    ("truncated", truncateds, step.truncated),
                ):
                    assert bool(ours[group][b, i]) == bool(flags.get(agent, False)), (
                        f"{where}: {agent} {name} {bool(ours[group][b, i])} != "
                        f"{bool(flags.get(agent, False))}"
                    )
                if terminateds.get(agent) or truncateds.get(agent):
                    for key, value in (infos.get(agent) or {}).items():
                        if key in step.infos[group]:
                            theirs = math.nan if value is None else float(value)
                            got = float(step.infos[group][key][b, i])
                            assert (math.isnan(got) and math.isnan(theirs)) or math.isclose(
                                got, theirs, abs_tol=1e-9
                            ), f"{where}: {agent} info {key} {got} != {value}"
            ending = {a for a in obs if terminateds.get(a) or truncateds.get(a)}
            all_over = bool(terminateds.get("__all__") or truncateds.get("__all__"))
            assert bool(step.over[b]) == all_over, f"{where}: over {bool(step.over[b])}"
            took = int(world_time(step, len(seeds))[b])
            assert took == elapsed_of(infos), f"{where}: elapsed {took} != {elapsed_of(infos)}"
            _same_obs(batched, index, b, obs, set(obs), where)
            if with_state and not all_over:
                _same_state(batched, envs[b], b, where)
            observed[b] = {} if all_over else {a: o for a, o in obs.items() if a not in ending}
            over[b] = all_over
    return steps


def _legal(batched: Any, group: str) -> np.ndarray | None:
    """(B, N, n) the legal actions of a group whose observations carry an action mask."""
    if observation_key(batched.observation_spaces[group]) is None:
        return None
    legal = np.asarray(batched.observations(group)[MASK_KEY]) > 0
    legal[~legal.any(axis=-1)] = True  # agents not due may hold any mask; their action is unread
    return legal


def _random_actions(
    rng: np.random.Generator, space: Any, shape: tuple[int, int], legal: np.ndarray | None = None
) -> np.ndarray:
    """Random actions for a (B, N) group, only ``legal`` ones (B, N, n) where given."""
    import gymnasium as gym

    if legal is not None:
        rows = legal.reshape(-1, legal.shape[-1])
        return random_legal_actions(rows, space, rng).reshape(shape)
    if isinstance(space, gym.spaces.Discrete):
        return space.start + rng.integers(space.n, size=shape)
    return np.stack([space.sample() for _ in range(shape[0] * shape[1])]).reshape(
        *shape, *space.shape
    )


def _same_obs(batched: Any, index: dict, b: int, obs: dict, agents: set[str], where: str) -> None:
    groups = {group: batched.observations(group) for group in batched.groups}
    for agent in agents:
        group, i = index[agent]
        assert_same(_row(groups[group], b, i), obs[agent], f"{where}: {agent}'s observation")


def _same_state(batched: Any, env: Any, b: int, where: str) -> None:
    assert_same(_map_rows(batched.states(), b), env.state(), f"{where}: the global state")


def _map_rows(states: Any, b: int) -> Any:
    if isinstance(states, dict):
        return {key: _map_rows(value, b) for key, value in states.items()}
    return np.asarray(states[b])


def _row(obs: Any, b: int, i: int) -> Any:
    if isinstance(obs, dict):
        return {key: _row(value, b, i) for key, value in obs.items()}
    return np.asarray(obs[b, i])


# -- what RLlib enforces -------------------------------------------------------------
#
# RLlib refuses some envs only once training runs: its env checker when an env runner
# builds its envs, and its MultiAgentEpisode at any step of any episode. The checks
# below run those rules before Ray starts and name the agent, the step and the rule.

RLLIB_EPISODE_CHUNK = 64
"""The env step at which the replay cuts each episode into a second chunk, as RLlib's
env runner cuts episodes at the end of every ``sample()`` call (mid-decision agents
included). Once an episode: each cut walks the chunk's whole history."""

RLLIB_EPISODE_RULES = (
    (
        "already had its `SingleAgentEpisode.is_done` set to True",
        "an agent that ended gets no more observations, rewards or infos",
    ),
    (
        "acted (and received next obs), but did NOT receive any reward",
        "an agent that acted and observes again gets a reward on that step",
    ),
    (
        "acted and then got truncated, but did NOT receive a last",
        "an agent truncated after it acted needs a final observation",
    ),
)
"""RLlib 2.60's ``MultiAgentEnvError`` messages (``env/multi_agent_episode.py``,
``add_env_step``) and the rule each enforces; ``test_conformance.py`` holds them."""


def check_rllib_rules(t: Transition, listed: set[str], ended: set[str]) -> None:
    """Two rules RLlib enforces at a step, where :func:`check_env` plays the step.

    - No reward and no info for an agent that ended before this step: RLlib's
      ``MultiAgentEpisode`` refuses the step otherwise.
    - On an episode's first step, every agent the step names (observations, rewards,
      terminateds, truncateds, infos) is in ``env.agents`` after it, or ends on it:
      RLlib's env checker (``check_multiagent_environments``, which every
      ``MultiAgentEnvRunner`` runs on its envs) takes one step after a reset and
      refuses the env otherwise. With ``env.agents`` listing only the agents due to
      act (PettingZoo's way), an agent that acted and now waits (a high level while
      its low level works) gets its reward when it next observes; or ``env.agents``
      lists every agent still in the episode (RLlib's way).
    """
    for name, d in (("a reward", t.rewards), ("an info", t.infos)):
        for agent in ended & set(d):
            raise AssertionError(
                f"{t.where}: {agent} gets {name} after it ended; RLlib's episodes refuse "
                "any data for an agent that ended"
            )
    if t.step != 1:
        return
    for name, d in (
        ("an observation", t.obs),
        ("a reward", t.rewards),
        ("a terminated flag", t.terminateds),
        ("a truncated flag", t.truncateds),
        ("an info", t.infos),
    ):
        for agent in d:
            if agent in ("__all__", "__common__") or agent in listed:
                continue
            if t.over or agent in t.ending:
                continue
            raise AssertionError(
                f"{t.where}: {agent} gets {name} but env.agents {sorted(listed)} does not "
                "list it; RLlib's env checker refuses a first step that names an agent "
                "env.agents does not list (list every agent still in the episode, or give "
                "a waiting agent its reward when it next observes)"
            )


def check_rllib_episodes(
    env: MultiAgentEnv,
    policy_of: Callable[[str], str],
    seed: int = 0,
    episodes: int = 2,
    step_budget: int | None = None,
    max_steps: int = 100_000,
) -> int:
    """Replay seeded random episodes through RLlib's own ``MultiAgentEpisode``.

    Fed as RLlib 2.60's ``MultiAgentEnvRunner._sample`` feeds it
    (``env/multi_agent_env_runner.py``): ``add_env_reset`` with the reset's
    observations and infos, then ``add_env_step`` with each step's results and the
    actions of the agents due (each with extra model outputs, as the runner's module
    gives them), each episode cut into a second chunk at step
    :data:`RLLIB_EPISODE_CHUNK`. Episodes are played whole; with ``step_budget``, no
    new episode starts once that many steps are played. Raises AssertionError naming
    the episode, the step, the agent and the rule RLlib enforces. Returns the steps
    played.
    """
    from ray.rllib.env.multi_agent_episode import MultiAgentEpisode

    agents = list(env.possible_agents)
    observation_spaces = {a: env.get_observation_space(a) for a in agents}
    action_spaces = {a: env.get_action_space(a) for a in agents}

    def new_episode() -> MultiAgentEpisode:
        return MultiAgentEpisode(
            observation_space=observation_spaces,
            action_space=action_spaces,
            agent_to_module_mapping_fn=lambda agent, episode: policy_of(agent),
        )

    episode, played = new_episode(), 0
    for t in play(env, seed, episodes, max_steps):
        if t.step == 0:
            if step_budget is not None and played >= step_budget:
                break
            episode = new_episode()
        elif t.step == RLLIB_EPISODE_CHUNK:
            episode = episode.cut(len_lookback_buffer=1)
        try:
            if t.step == 0:
                episode.add_env_reset(observations=t.obs, infos=t.infos)
            else:
                episode.add_env_step(
                    observations=t.obs,
                    actions=t.actions,
                    rewards=t.rewards,
                    infos=t.infos,
                    terminateds=t.terminateds,
                    truncateds=t.truncateds,
                    extra_model_outputs={a: {"action_logp": 0.0} for a in t.actions},
                )
        except Exception as err:
            raise AssertionError(f"{t.where}: {_rllib_rule(err)}") from None
        played += t.step > 0
    return played


def _rllib_rule(error: Exception) -> str:
    """RLlib's episode error as the agent and the rule it broke, in one line."""
    import re

    text = str(error)
    agent = re.match(r"Agent (\S+) ", text)
    for fragment, rule in RLLIB_EPISODE_RULES:
        if fragment in text:
            who = f"{agent.group(1)}: " if agent else ""
            return f"{who}RLlib's episode refuses the step: {rule}"
    first = text.strip().splitlines()[0] if text.strip() else ""
    return f"RLlib's episode refuses the step: {type(error).__name__}: {first}"


def check_rllib_env_checker(env: MultiAgentEnv) -> None:
    """RLlib's own env checker, as every ``MultiAgentEnvRunner`` runs it on its envs.

    ``check_multiagent_environments`` (RLlib 2.60, ``utils/pre_checks/env.py``) resets
    the env with seed 42 and takes one step of sampled actions; its ValueError is
    raised as an AssertionError of one line, without its advice about an ``agents``
    attribute (the env has one; the step named an agent it does not list).
    """
    from ray.rllib.utils.pre_checks.env import check_multiagent_environments

    try:
        check_multiagent_environments(env)
    except ValueError as err:
        cause = err.__cause__
        text = " ".join(str(err).split())
        if cause is not None:  # reset or step raised; RLlib wraps it in advice about gym
            text = f"{type(cause).__name__}: {' '.join(str(cause).split())}"
        text = text.split(" You likely need to add the attribute")[0]
        raise AssertionError(
            f"RLlib's env checker (reset with seed 42, one step): {text}"
        ) from None

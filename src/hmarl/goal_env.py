"""The envs a goal declaration builds (:mod:`hmarl.goals`): one over a flat env, one batched.

:class:`GoalEnv` wraps a flat RLlib ``MultiAgentEnv`` (a PettingZoo env arrives adapted,
:mod:`hmarl.parallel_env`); :class:`BatchedGoalEnv` wraps a task's batched flat env
(:mod:`hmarl.batched_env`) and follows the same rules as arrays, so the batched sampler
keeps its speed. ``hmarl.conformance.check_batched_env`` holds the two equal.

The batched flat env must accept ``step(actions, where=...)``: envs whose high levels are
choosing stand still while the others move.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from ray.rllib.env.multi_agent_env import MultiAgentEnv

from hmarl.action_masks import MASK_KEY, observation_key
from hmarl.batched_env import select
from hmarl.goals import HIGH, LOW, Goals, flat_id, high_id, low_id
from hmarl.task import TaskError
from hmarl.task_env import COMMON, ELAPSED

AgentDict = dict[str, Any]


def _stack(rows: list[Any]) -> Any:
    """Observations of n agents as one batch (a dict of arrays for a Dict space)."""
    if isinstance(rows[0], Mapping):
        return {key: _stack([row[key] for row in rows]) for key in rows[0]}
    return np.stack([np.asarray(row) for row in rows])


def _env_rows(states: Any, envs: np.ndarray) -> Any:
    """Rows ``envs`` of a batched env's states (a dict of arrays for a Dict space)."""
    if isinstance(states, Mapping):
        return {key: _env_rows(value, envs) for key, value in states.items()}
    return np.asarray(states)[envs]


def _inner(obs: Any, key: str | None) -> Any:
    """A flat observation without its action mask."""
    return obs if key is None else obs[key]


class GoalEnv(MultiAgentEnv):
    """A high and a low level per agent of a flat env (see :mod:`hmarl.goals`)."""

    def __init__(self, flat: MultiAgentEnv, goals: Goals) -> None:
        super().__init__()
        self.flat, self.goals = flat, goals
        self.flat_agents = list(flat.possible_agents)
        self.possible_agents = [level(a) for a in self.flat_agents for level in (high_id, low_id)]
        self.observation_spaces: dict[str, gym.Space] = {}
        self.action_spaces: dict[str, gym.Space] = {}
        self._mask_key: dict[str, str | None] = {}
        for agent in self.flat_agents:
            space = flat.get_observation_space(agent)
            self._mask_key[agent] = observation_key(space)
            self.observation_spaces[high_id(agent)] = goals.high_observation_space(space)
            self.observation_spaces[low_id(agent)] = goals.low_observation_space(space)
            self.action_spaces[high_id(agent)] = gym.spaces.Discrete(goals.count)
            self.action_spaces[low_id(agent)] = flat.get_action_space(agent)
        self.metadata = getattr(flat, "metadata", {})
        if getattr(flat, "state_space", None) is not None:
            self.state_space = flat.state_space
        elif goals.reads_state:
            raise TaskError("Goals.reads_state: the flat env declares no global state")
        self.agents: list[str] = []
        self.due: set[str] = set()

    # -- what passes through -------------------------------------------------------------

    def state(self) -> Any:
        return self.flat.state()

    def render(self) -> Any:
        return self.flat.render()

    @property
    def render_mode(self) -> str | None:
        return getattr(self.flat, "render_mode", None)

    @render_mode.setter
    def render_mode(self, value: str | None) -> None:
        if hasattr(self, "flat"):
            self.flat.render_mode = value

    def close(self) -> None:
        self.flat.close()

    # -- the hierarchy -------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple:
        obs, infos = self.flat.reset(seed=seed, options=options)
        self.obs = dict(obs)
        self.live = set(obs)
        self.goal: dict[str, np.ndarray] = {}
        self.steps: dict[str, int] = {}
        self.choices: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        deciding = sorted(obs)
        out = self._high_obs(deciding, deciding)
        self._set_due(out)
        return out, {high_id(a): (infos or {}).get(a, {}) for a in deciding}

    def step(self, actions: AgentDict) -> tuple:
        # Every check before anything changes: a refused step leaves the env as it was.
        if not self.due:
            raise ValueError("no agent is due to act: reset() first (again after the end)")
        unexpected = sorted(set(actions) - self.due)
        if unexpected:
            raise ValueError(f"agents {unexpected} are not due to act")
        missing = sorted(self.due - set(actions))
        if missing:
            raise ValueError(f"no action for {missing}: every agent due to act must act")
        for agent, action in actions.items():
            # A choice of goal, or a flat Discrete action, is refused here, naming the level;
            # other actions (a Box's, which the flat env may clip) are the flat env's to judge.
            space = self.action_spaces[agent]
            if isinstance(space, gym.spaces.Discrete) and not space.contains(action):
                raise ValueError(f"{agent}: action {action!r} is not in {space}")
        if any(agent.endswith(HIGH) for agent in actions):
            return self._decide(actions)
        return self._world_step(actions)

    def _set_due(self, obs: AgentDict, ended: set[str] = frozenset()) -> None:
        self.due = {agent for agent in obs if flat_id(agent) not in ended}
        self.agents = sorted(self.due)

    def _decide(self, actions: AgentDict) -> tuple:
        """The high levels due choose; the flat env stands still (no world time passes)."""
        for agent, action in actions.items():
            if not self.choices[flat_id(agent)][1][int(action)]:
                raise ValueError(f"{agent} chose goal {int(action)}, which is not available")
        for agent, action in actions.items():
            flat = flat_id(agent)
            self.goal[flat] = self.choices.pop(flat)[0][int(action)]
            self.steps[flat] = 0
        obs = {low_id(a): self._low_obs(a) for a in sorted(self.live)}
        self._set_due(obs)
        return obs, {}, {"__all__": False}, {"__all__": False}, {COMMON: {ELAPSED: 0}}

    def _world_step(self, actions: AgentDict) -> tuple:
        """Every low level due acts; the flat env steps once."""
        acting = sorted(flat_id(agent) for agent in actions)
        before = _stack([self.obs[a] for a in acting])
        obs, rewards, terminateds, truncateds, infos = self.flat.step(
            {flat_id(agent): action for agent, action in actions.items()}
        )
        self.obs.update(obs)
        all_over = bool(terminateds.get("__all__") or truncateds.get("__all__"))
        ended = {a for a in self.live if terminateds.get(a) or truncateds.get(a)}
        if all_over:
            ended = set(self.live)
        flat_rewards = np.array([float(rewards.get(a, 0.0)) for a in acting])
        goal = np.stack([self.goal[a] for a in acting])
        for a in acting:
            self.steps[a] += 1
        after = _stack([self.obs[a] for a in acting])
        steps = np.array([self.steps[a] for a in acting])
        reached, over = self.goals.done(after, goal, flat_rewards, steps, self._states(acting))
        low = self.goals.low_rewards(flat_rewards, reached, before, after, goal)
        out_rewards = {high_id(a): float(rewards[a]) for a in self.live if a in rewards}
        out_rewards |= {low_id(a): float(low[i]) for i, a in enumerate(acting)}
        out_obs: AgentDict = {}
        out_infos: AgentDict = {}
        terminated: dict[str, bool] = {}
        truncated: dict[str, bool] = {}
        for agent in sorted(ended):
            # Both levels end with their final observations (the high level's shows the
            # goals as they stand, none of which it will choose).
            out_obs |= self._high_obs([agent], [])
            out_obs[low_id(agent)] = self._low_obs(agent)
            end = bool(terminateds.get(agent)) or (
                bool(terminateds.get("__all__")) and not truncateds.get(agent)
            )
            for level in (high_id(agent), low_id(agent)):
                terminated[level], truncated[level] = end, not end
                out_rewards.setdefault(level, 0.0)
                out_infos[level] = infos.get(agent, {})
        self.live -= ended
        deciding = [a for i, a in enumerate(acting) if over[i] and a in self.live]
        if deciding:  # the others wait through the decision step
            out_obs |= self._high_obs(deciding, deciding)
            for agent in deciding:
                out_infos[high_id(agent)] = infos.get(agent, {})
        else:
            for agent in sorted(self.live & set(obs)):
                out_obs[low_id(agent)] = self._low_obs(agent)
                out_infos[low_id(agent)] = infos.get(agent, {})
        for agent in out_obs:  # RLlib wants a reward for an agent that observes
            out_rewards.setdefault(agent, 0.0)
        self._set_due(out_obs, ended)
        terminated["__all__"] = all_over and bool(terminateds.get("__all__"))
        truncated["__all__"] = all_over and not terminated["__all__"]
        if COMMON in infos:
            out_infos[COMMON] = infos[COMMON]
        return out_obs, out_rewards, terminated, truncated, out_infos

    def _high_obs(self, agents: Sequence[str], deciding: Sequence[str]) -> AgentDict:
        """The high levels' observations of ``agents``; the ``deciding`` ones may choose."""
        if not agents:
            return {}
        inner = [_inner(self.obs[a], self._mask_key[a]) for a in agents]
        features, available = self.goals.choices(
            _stack(inner), np.array([a in deciding for a in agents]), self._states(agents)
        )
        out = {}
        for i, agent in enumerate(agents):
            if agent in deciding:
                self.choices[agent] = (features[i], available[i])
            out[high_id(agent)] = {
                "observation": {"observation": inner[i], "goals": features[i]},
                MASK_KEY: available[i],
            }
        return out

    def _states(self, agents: Sequence[str]) -> Any:
        """The env's global state now, a row per agent, if the goal functions read it."""
        return _stack([self.flat.state()] * len(agents)) if self.goals.reads_state else None

    def _low_obs(self, agent: str) -> dict[str, Any]:
        flat = self.obs[agent]
        goal = self.goal.get(agent, np.zeros(self.goals.size, np.float32))
        out = {"observation": _inner(flat, self._mask_key[agent]), "goal": goal}
        if self._mask_key[agent] is not None:
            out[MASK_KEY] = flat[MASK_KEY]
        return out


# -- batched ----------------------------------------------------------------------------------

DECIDING, ACTING, WAITING, ENDED = 0, 1, 2, 3
"""What each flat agent of a batched goal env is doing."""


@dataclass
class GoalStep:
    """What one step of a :class:`BatchedGoalEnv` did (hmarl.batched_env.BatchedStep)."""

    rewards: dict[str, np.ndarray]
    terminated: dict[str, np.ndarray]
    truncated: dict[str, np.ndarray]
    infos: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    over: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    elapsed: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


class BatchedGoalEnv:
    """:class:`GoalEnv`'s rules over a batched flat env, as arrays (see the module)."""

    def __init__(self, flat: Any, goals: Goals) -> None:
        self.flat, self.goals = flat, goals
        self.num_envs = flat.num_envs
        self.groups: dict[str, list[str]] = {}
        self.observation_spaces: dict[str, gym.Space] = {}
        self.action_spaces: dict[str, gym.Space] = {}
        self._mask_key: dict[str, str | None] = {}
        for group, agents in flat.groups.items():
            space = flat.observation_spaces[group]
            self._mask_key[group] = observation_key(space)
            self.groups[group + HIGH] = [high_id(a) for a in agents]
            self.groups[group + LOW] = [low_id(a) for a in agents]
            self.observation_spaces[group + HIGH] = goals.high_observation_space(space)
            self.observation_spaces[group + LOW] = goals.low_observation_space(space)
            self.action_spaces[group + HIGH] = gym.spaces.Discrete(goals.count)
            self.action_spaces[group + LOW] = flat.action_spaces[group]
        if getattr(flat, "state_space", None) is not None:
            self.state_space = flat.state_space
        elif goals.reads_state:
            raise TaskError("Goals.reads_state: the batched flat env declares no global state")
        shape = {g: (self.num_envs, len(a)) for g, a in flat.groups.items()}
        self.phase = {g: np.full(s, ENDED) for g, s in shape.items()}
        self.steps = {g: np.zeros(s, np.int64) for g, s in shape.items()}
        self.goal = {g: np.zeros((*s, goals.size), np.float32) for g, s in shape.items()}
        self.features = {
            g: np.zeros((*s, goals.count, goals.size), np.float32) for g, s in shape.items()
        }
        self.available = {g: np.zeros((*s, goals.count), np.int8) for g, s in shape.items()}

    def states(self) -> Any:
        return self.flat.states()

    def reset(self, seeds: Sequence[int], where: np.ndarray | None = None) -> None:
        where = np.ones(self.num_envs, bool) if where is None else np.asarray(where, bool)
        self.flat.reset(seeds, where=where if not where.all() else None)
        for group in self.flat.groups:
            self.phase[group][where] = DECIDING
            self.steps[group][where] = 0
            self.goal[group][where] = 0.0
            self._choose_from(group, where[:, None] & np.ones_like(self.steps[group], bool))

    def _choose_from(self, group: str, rows: np.ndarray) -> None:
        """Candidate goals of the ``rows`` (B, N) agents from their flat observations now."""
        if not rows.any():
            return
        obs = select(_inner(self.flat.observations(group), self._mask_key[group]), rows)
        features, available = self.goals.choices(
            obs, self.phase[group][rows] == DECIDING, self._states(rows)
        )
        self.features[group][rows] = features
        self.available[group][rows] = available

    def _states(self, rows: np.ndarray) -> Any:
        """The global state of each ``rows`` (B, N) agent's env, if the goal functions read it."""
        if not self.goals.reads_state:
            return None
        return _env_rows(self.flat.states(), np.nonzero(rows)[0])

    def _flat_group(self, group: str) -> str:
        return group.removesuffix(HIGH) if group.endswith(HIGH) else group.removesuffix(LOW)

    def observations(self, group: str) -> dict[str, Any]:
        flat_group = self._flat_group(group)
        flat = self.flat.observations(flat_group)
        inner = _inner(flat, self._mask_key[flat_group])
        if group.endswith(HIGH):
            return {
                "observation": {"observation": inner, "goals": self.features[flat_group]},
                MASK_KEY: self.available[flat_group],
            }
        out = {"observation": inner, "goal": self.goal[flat_group]}
        if self._mask_key[flat_group] is not None:
            out[MASK_KEY] = flat[MASK_KEY]
        return out

    def _deciding_envs(self) -> np.ndarray:
        return np.any([(p == DECIDING).any(axis=1) for p in self.phase.values()], axis=0)

    def due(self, group: str) -> np.ndarray:
        phase = self.phase[self._flat_group(group)]
        if group.endswith(HIGH):
            return phase == DECIDING
        return (phase == ACTING) & ~self._deciding_envs()[:, None]

    def step(self, actions: Mapping[str, np.ndarray]) -> GoalStep:
        deciding = self._deciding_envs()
        for group in self.flat.groups:
            self._decide(group, np.asarray(actions[group + HIGH]))
        world = ~deciding & np.any([(p == ACTING).any(axis=1) for p in self.phase.values()], 0)
        # The observations the low levels act on, for shaping's change of potential.
        self._before = {
            group: select(
                _inner(self.flat.observations(group), self._mask_key[group]),
                (self.phase[group] == ACTING) & world[:, None],
            )
            for group in self.flat.groups
            if self.goals.shaping is not None
        }
        flat_actions = {group: np.asarray(actions[group + LOW]) for group in self.flat.groups}
        result = self.flat.step(flat_actions, where=world)
        flat_elapsed = getattr(result, "elapsed", None)
        elapsed = world.astype(np.int64) * (1 if flat_elapsed is None else np.asarray(flat_elapsed))
        step = GoalStep({}, {}, {}, {}, result.over & world, elapsed)
        for group in self.flat.groups:
            self._after_world_step(group, world, result, step)
        return step

    def _decide(self, group: str, choices: np.ndarray) -> None:
        """Deciding agents take their goals; in those envs every live low level is due next."""
        rows = self.phase[group] == DECIDING
        if not rows.any():
            return
        chosen = choices[rows].astype(np.int64)
        allowed = self.available[group][rows][np.arange(len(chosen)), chosen] > 0
        if not allowed.all():
            raise ValueError(f"a {group}{HIGH} agent chose a goal that is not available")
        self.goal[group][rows] = self.features[group][rows][np.arange(len(chosen)), chosen]
        self.steps[group][rows] = 0
        self.phase[group][rows] = ACTING
        for other in self.phase.values():  # every waiting agent of those envs acts again
            envs = rows.any(axis=1)
            other[envs[:, None] & (other == WAITING)] = ACTING

    def _after_world_step(self, group: str, world: np.ndarray, result: Any, step: GoalStep) -> None:
        phase = self.phase[group]
        live = (phase != ENDED) & world[:, None]
        acting = (phase == ACTING) & world[:, None]
        reward = np.where(live, result.rewards[group], 0.0)
        ended = live & (result.terminated[group] | result.truncated[group] | result.over[:, None])
        low = np.zeros_like(reward)
        if acting.any():
            self.steps[group][acting] += 1
            obs = _inner(self.flat.observations(group), self._mask_key[group])
            after = select(obs, acting)
            goal = self.goal[group][acting]
            reached, over = self.goals.done(
                after, goal, reward[acting], self.steps[group][acting], self._states(acting)
            )
            before = after if self.goals.shaping is None else self._before[group]
            low[acting] = self.goals.low_rewards(reward[acting], reached, before, after, goal)
            finished = np.zeros_like(acting)
            finished[acting] = over
            phase[finished & ~ended] = DECIDING
        # An agent ended by the end of its env, with no flag of its own, counts as truncated.
        terminated = ended & result.terminated[group]
        phase[ended] = ENDED
        high, low_group = group + HIGH, group + LOW
        step.rewards[high], step.rewards[low_group] = reward, low
        step.terminated[high] = step.terminated[low_group] = terminated
        step.truncated[high] = step.truncated[low_group] = ended & ~terminated
        infos = result.infos.get(group, {})
        step.infos[high] = step.infos[low_group] = infos
        newly = phase == DECIDING
        self._choose_from(group, (newly & world[:, None]) | ended)
        if newly.any():  # the others of those envs wait through the decision step
            envs = newly.any(axis=1)
            for other in self.phase.values():
                other[envs[:, None] & (other == ACTING)] = WAITING

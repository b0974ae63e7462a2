"""The chicken yard as an RLlib multi-agent environment: a thin adapter over the simulation."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from ray.rllib.env.multi_agent_env import MultiAgentEnv
from ray.tune.registry import register_env

from hmarl.simulation import DIRECTION_NAMES, ChickenYard, YardConfig

__all__ = [
    "ENV_NAME",
    "ChickenYardEnv",
    "YardConfig",
    "agent_ids",
    "high_agent",
    "low_agent",
    "robot_index",
]

#: The name under which the yard is registered with RLlib (``config.environment(ENV_NAME)``).
ENV_NAME = "hmarl_chicken_yard"

AgentDict = dict[str, Any]
"""A per-agent dict keyed by agent id, as RLlib passes them."""


def high_agent(robot: int) -> str:
    """Agent id of a robot's high level; robots are numbered from 1."""
    return f"robot_{robot}_high"


def low_agent(robot: int) -> str:
    """Agent id of a robot's low level; robots are numbered from 1."""
    return f"robot_{robot}_low"


def robot_index(agent_id: str) -> int:
    """The 0-based robot behind an agent id: ``robot_2_low`` -> 1."""
    return int(agent_id.split("_")[1]) - 1


def agent_ids(num_robots: int) -> list[str]:
    return [a for i in range(1, num_robots + 1) for a in (high_agent(i), low_agent(i))]


class ChickenYardEnv(MultiAgentEnv):
    """Robots pick a chicken (high level), then walk to it (low level).

    Robots and chickens stand in the unit square (origin top-left, y grows
    downward). Each has a personality: an OCEAN vector, uniform in [0, 1) and
    L2-normalised. A robot's compatibility with a chicken is the dot product of
    their OCEAN vectors. Each robot wants to reach the chicken most like itself.

    **Agents.** Two per robot, ``robot_{i}_high`` and ``robot_{i}_low`` for
    i = 1..num_robots (``possible_agents``). In training all high agents share
    ``high_level_policy`` and all low agents ``low_level_policy``. Observations
    are returned only for the agents due to act next: that is the hierarchy.

    **Action spaces.**

    ========  =======================  =====================================
    level     space                    meaning
    ========  =======================  =====================================
    high      Discrete(num_chickens)   index of the chicken to go to
    low       Discrete(8)              0..7 = N, NE, E, SE, S, SW, W, NW
    ========  =======================  =====================================

    A move adds ±move_amount to each axis its direction names (N is -y, E is +x,
    NE both), then clips to [0, 1].

    **Observation spaces** (``gymnasium.spaces.Dict``, float32, every value in [0, 1]):

    =====  ===================  =====================  ===============================
    level  field                shape                  meaning
    =====  ===================  =====================  ===============================
    high   chicken_oceans       (num_chickens, O)      every chicken's personality
    high   chicken_positions    (num_chickens, 2)      every chicken's x, y
    high   robot_ocean          (O,)                   this robot's personality
    high   robot_position       (2,)                   this robot's x, y
    low    robot_position       (2,)                   this robot's x, y
    low    target_position      (2,)                   the chosen chicken's x, y
    =====  ===================  =====================  ===============================

    O is ``num_ocean_features``. The low level sees its target: without it, as
    in the 2022 tutorial, the high level's choice could not change anything.

    **Flow.** ``reset()`` returns observations for the high agents. The next
    step carries their actions: each robot's target is set, nobody moves, and the
    step returns low-agent observations. Each later step moves the robots whose
    low-level action it carries. Agents not due to act may not be given actions;
    ``due_agents`` lists those that are (``agents`` also holds the agents that
    just finished, as RLlib expects).

    **Rewards.**

    =====  ======================================================================
    level  reward
    =====  ======================================================================
    high   compatibility with the chosen chicken, on arrival; timeout_reward at the
           time limit; nothing before
    low    step_reward for each move that does not arrive; arrival_reward on
           arrival; timeout_reward (instead of step_reward) at the time limit
    =====  ======================================================================

    **Starting state.** Chicken positions, chicken OCEAN vectors, robot positions
    and robot OCEAN vectors, drawn in that order from ``self.np_random``, which
    ``reset(seed=...)`` seeds: the same seed gives the same yard.

    **Episode end.** A robot within closeness_threshold (Euclidean) of *its
    chosen* chicken has arrived: both its agents are *terminated* and receive a
    final observation. Passing other chickens does nothing. After ``timeout``
    steps (the choosing step counts), every robot still out is *truncated* (a
    time limit) with timeout_reward on both levels; a low agent that has not yet
    observed anything is left out. ``__all__`` is set once every robot is done.
    Finished agents report ``infos`` with ``compatibility`` and ``arrived``
    (high) or ``steps`` and ``arrived`` (low).

    **Arguments.** ``ChickenYardEnv(config)`` with a :class:`YardConfig`, a plain
    dict of its fields (RLlib's ``env_config``) or nothing for the defaults.
    Bad actions raise ``ValueError`` naming the agent and the problem, before
    any state changes.

    Example:

    >>> env = ChickenYardEnv({"num_robots": 2, "num_chickens": 3})
    >>> obs, infos = env.reset(seed=0)
    >>> sorted(obs)
    ['robot_1_high', 'robot_2_high']
    >>> obs["robot_1_high"]["chicken_positions"].shape
    (3, 2)
    >>> obs, rewards, terminateds, truncateds, infos = env.step(
    ...     {"robot_1_high": 0, "robot_2_high": 2})
    >>> sorted(obs), rewards
    (['robot_1_low', 'robot_2_low'], {})
    >>> obs, rewards, *_ = env.step({"robot_1_low": 4, "robot_2_low": 0})
    >>> rewards
    {'robot_1_low': -0.001, 'robot_2_low': -0.001}
    >>> env.step({"robot_1_high": 1})
    Traceback (most recent call last):
    ...
    ValueError: robot_1_high is not due to act (due: robot_1_low, robot_2_low)

    **Version history.** v0: the tutorial's yard with the target in the low-level view.
    """

    def __init__(self, config: YardConfig | dict[str, Any] | None = None) -> None:
        super().__init__()
        self.config = YardConfig.coerce(config)
        self.yard = ChickenYard(self.config)
        n = self.config.num_robots
        self._high = [high_agent(i) for i in range(1, n + 1)]
        self._low = [low_agent(i) for i in range(1, n + 1)]
        self._robot_of = {a: r for r in range(n) for a in (self._high[r], self._low[r])}
        self.possible_agents = agent_ids(n)
        self.agents = []
        high_space, low_space = self._spaces()
        self.observation_spaces = {a: high_space for a in self._high} | {
            a: low_space for a in self._low
        }
        self.action_spaces = {a: gym.spaces.Discrete(self.config.num_chickens) for a in self._high}
        self.action_spaces |= {a: gym.spaces.Discrete(len(DIRECTION_NAMES)) for a in self._low}
        self._due: set[str] = set()
        self._reset_done = False

    @property
    def due_agents(self) -> list[str]:
        """The agents that must (and alone may) get actions in the next ``step``."""
        return sorted(self._due)

    def _spaces(self) -> tuple[gym.spaces.Dict, gym.spaces.Dict]:
        c, o = self.config.num_chickens, self.config.num_ocean_features

        def box(*shape: int) -> gym.spaces.Box:
            return gym.spaces.Box(0.0, 1.0, shape=shape, dtype=np.float32)

        high = gym.spaces.Dict(
            {
                "chicken_oceans": box(c, o),
                "chicken_positions": box(c, 2),
                "robot_ocean": box(o),
                "robot_position": box(2),
            }
        )
        low = gym.spaces.Dict({"robot_position": box(2), "target_position": box(2)})
        return high, low

    # -- observations -------------------------------------------------------

    def _high_obs(self, robot: int) -> dict[str, np.ndarray]:
        return {
            "chicken_oceans": self._chicken_oceans,
            "chicken_positions": self._chicken_positions,
            "robot_ocean": self._robot_oceans[robot],
            "robot_position": self.yard.positions[robot].astype(np.float32),
        }

    def _low_obs(self, robot: int) -> dict[str, np.ndarray]:
        return {
            "robot_position": self.yard.positions[robot].astype(np.float32),
            "target_position": self._chicken_positions[self.yard.targets[robot]],
        }

    # -- the MultiAgentEnv API ----------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict | None = None
    ) -> tuple[AgentDict, AgentDict]:
        super().reset(seed=seed)
        self.yard.reset(self.np_random)
        layout = self.yard.layout
        # Float32 copies made once per episode; every high observation shares them.
        self._chicken_oceans = layout.chicken_oceans.astype(np.float32)
        self._chicken_positions = layout.chicken_positions.astype(np.float32)
        self._robot_oceans = layout.robot_oceans.astype(np.float32)
        self._moving = [False] * self.config.num_robots
        self._done = [False] * self.config.num_robots
        self._steps_moving = [0] * self.config.num_robots
        self._due = set(self._high)
        self.agents = list(self._high)
        self._reset_done = True
        return {a: self._high_obs(r) for r, a in enumerate(self._high)}, {}

    def step(
        self, action_dict: AgentDict
    ) -> tuple[AgentDict, AgentDict, AgentDict, AgentDict, AgentDict]:
        self._check(action_dict)
        obs: AgentDict = {}
        rewards: AgentDict = {}
        terminateds: AgentDict = {}
        truncateds: AgentDict = {}
        infos: AgentDict = {}
        was_moving = list(self._moving)

        for agent, action in action_dict.items():
            robot = self._robot_of[agent]
            if not self._moving[robot]:
                self.yard.choose(robot, int(action))
                self._moving[robot] = True
                continue
            self._steps_moving[robot] += 1
            if self.yard.move(robot, int(action)):
                self._finish(robot, obs, rewards, terminateds, infos, arrived=True)
            else:
                rewards[agent] = self.config.step_reward

        if self.yard.tick():
            for robot in range(self.config.num_robots):
                if not self._done[robot]:
                    self._finish(
                        robot,
                        obs,
                        rewards,
                        truncateds,
                        infos,
                        arrived=False,
                        low_started=was_moving[robot],
                    )

        for robot in range(self.config.num_robots):
            if self._done[robot]:
                continue
            if self._moving[robot]:
                obs[self._low[robot]] = self._low_obs(robot)
            else:
                obs[self._high[robot]] = self._high_obs(robot)
        self._due = {a for a in obs if a not in terminateds and a not in truncateds}
        # RLlib's env checker wants every agent in this step's results in `agents`,
        # the ones that just finished included.
        self.agents = sorted(obs)
        all_done = all(self._done)
        terminateds["__all__"] = all_done and not truncateds
        truncateds["__all__"] = all_done and bool(truncateds)
        return obs, rewards, terminateds, truncateds, infos

    # -- helpers ------------------------------------------------------------

    def _finish(
        self,
        robot: int,
        obs: AgentDict,
        rewards: AgentDict,
        ended: AgentDict,
        infos: AgentDict,
        *,
        arrived: bool,
        low_started: bool = True,
    ) -> None:
        """End a robot's episode: final observations and rewards for both its agents."""
        high, low = self._high[robot], self._low[robot]
        self._done[robot] = True
        if arrived:
            compat = self.yard.compatibility_of(robot)
            rewards[high], rewards[low] = compat, self.config.arrival_reward
        else:
            compat = None if self.yard.targets[robot] is None else self.yard.compatibility_of(robot)
            rewards[high] = self.config.timeout_reward
            if low_started:
                rewards[low] = self.config.timeout_reward
        obs[high] = self._high_obs(robot)
        ended[high] = True
        infos[high] = {"compatibility": compat, "arrived": arrived}
        if low_started:
            obs[low] = self._low_obs(robot)
            ended[low] = True
            infos[low] = {"steps": self._steps_moving[robot], "arrived": arrived}

    def _check(self, action_dict: AgentDict) -> None:
        """Refuse a bad action dict before anything changes."""
        if not self._reset_done:
            raise ValueError("step() called before reset()")
        if not self._due:
            raise ValueError("the episode is over; call reset() before step()")
        if not isinstance(action_dict, dict):
            raise ValueError(f"actions must be a dict of agent id to action, got {action_dict!r}")
        for agent, action in action_dict.items():
            if agent not in self.action_spaces:
                raise ValueError(
                    f"unknown agent id {agent!r}; agents are {', '.join(self.possible_agents)}"
                )
            if agent not in self._due:
                due = ", ".join(sorted(self._due))
                raise ValueError(f"{agent} is not due to act (due: {due})")
            n = self.action_spaces[agent].n
            if not _is_integer(action):
                raise ValueError(f"{agent}: action must be an integer, got {action!r}")
            if not 0 <= int(action) < n:
                raise ValueError(f"{agent}: action {int(action)} is out of range 0..{n - 1}")


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool | np.bool_):
        return False
    if isinstance(value, int | np.integer):
        return True
    return isinstance(value, np.ndarray) and value.shape == () and value.dtype.kind in "iu"


register_env(ENV_NAME, ChickenYardEnv)

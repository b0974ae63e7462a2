"""The chicken yard as an RLlib multi-agent environment: a thin adapter over the simulation."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from ray.rllib.env.multi_agent_env import MultiAgentEnv

from hmarl.tasks.chicken_yard.agents import (
    agent_ids,
    high_action_space,
    high_agent,
    high_observation_space,
    low_action_space,
    low_agent,
    low_observation_space,
)
from hmarl.tasks.chicken_yard.simulation import ChickenYard, YardConfig

__all__ = ["ChickenYardEnv", "YardConfig"]

AgentDict = dict[str, Any]
"""A per-agent dict keyed by agent id, as RLlib passes them."""


class ChickenYardEnv(MultiAgentEnv):
    """Robots pick a chicken (high level), then walk to it (low level).

    Robots and chickens stand in the unit square (origin top-left, y grows
    downward). Each has a personality: an OCEAN vector, uniform in [0, 1) (in
    [personality_low, 1) if that is set) and L2-normalised. A robot's compatibility
    with a chicken is the dot product of their OCEAN vectors. Each robot wants to
    reach the chicken most like itself.

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

    **Observation spaces** (``gymnasium.spaces.Dict``, float32, every value in [0, 1];
    personalities in [-1, 1] with a negative ``personality_low``):

    =====  ===================  =====================  ===============================
    level  field                shape                  meaning
    =====  ===================  =====================  ===============================
    high   chicken_oceans       (num_chickens, O)      every chicken's personality
    high   chicken_positions    (num_chickens, 2)      every chicken's x, y
    high   robot_ocean          (O,)                   this robot's personality
    high   robot_position       (2,)                   this robot's x, y
    low    robot_position       (2,)                   this robot's x, y
    low    target_position      (2,)                   the chosen chicken's x, y
    low    time_left            (1,)                   fraction of the time limit left
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
    steps (the choosing step counts), every robot still out is *terminated* too,
    with timeout_reward on both levels; a low agent that has not yet observed
    anything is left out. ``__all__`` is set once every robot is done. Finished
    agents report ``infos`` with ``compatibility`` and ``arrived`` (high) or
    ``steps`` and ``arrived`` (low).

    **The time limit is part of the task.** Running out of time is a failure
    with a price (timeout_reward), so it *terminates*: nothing is bootstrapped
    past it, and the penalty reaches the value targets whole. (Marked truncated,
    RLlib would bootstrap, and the target -1 + gamma * V(s) would mostly cancel
    the penalty once V is near +1.) For that to be fair to the value function,
    the low level observes ``time_left``. The high level decides at the start,
    when all the time is left.

    **Rendering.** Gymnasium's convention: with ``render_mode="rgb_array"`` (in
    the constructor, or set afterwards) ``render()`` returns the yard as an
    (H, W, 3) uint8 frame, drawn by :mod:`hmarl.tasks.chicken_yard.render`
    (pygame, imported on the first frame).

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

    **Version history.** v1: the time limit terminates, the low level sees
    ``time_left``, ``render()``. v0: the tutorial's yard with the target in the
    low-level view.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self, config: YardConfig | dict[str, Any] | None = None, render_mode: str | None = None
    ) -> None:
        super().__init__()
        self.config = YardConfig.coerce(config)
        self.render_mode = render_mode
        self.yard = ChickenYard(self.config)
        n = self.config.num_robots
        self._high = [high_agent(i) for i in range(1, n + 1)]
        self._low = [low_agent(i) for i in range(1, n + 1)]
        self._robot_of = {a: r for r in range(n) for a in (self._high[r], self._low[r])}
        self.possible_agents = agent_ids(n)
        self.agents = []
        # One space object per level, shared by its agents: the same object every call.
        spaces = {
            "high": (high_observation_space(self.config), high_action_space(self.config)),
            "low": (low_observation_space(self.config), low_action_space(self.config)),
        }
        levels = {a: "high" for a in self._high} | {a: "low" for a in self._low}
        self.observation_spaces = {a: spaces[level][0] for a, level in levels.items()}
        self.action_spaces = {a: spaces[level][1] for a, level in levels.items()}
        self._due: set[str] = set()
        self._reset_done = False
        self._renderer: Any = None
        self.returns: dict[str, float] = {}
        """Rewards summed per agent since reset (kept while rendering, for the frame's panel)."""

    @property
    def due_agents(self) -> list[str]:
        """The agents that must (and alone may) get actions in the next ``step``."""
        return sorted(self._due)

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
            "time_left": self._time_left,
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
        self._time_left = np.ones(1, dtype=np.float32)
        self._moving = [False] * self.config.num_robots
        self._done = [False] * self.config.num_robots
        self._steps_moving = [0] * self.config.num_robots
        self._due = set(self._high)
        self.agents = list(self._high)
        self._reset_done = True
        self.returns = dict.fromkeys(self.possible_agents, 0.0)
        return {a: self._high_obs(r) for r, a in enumerate(self._high)}, {}

    def step(
        self, action_dict: AgentDict
    ) -> tuple[AgentDict, AgentDict, AgentDict, AgentDict, AgentDict]:
        check_actions(
            action_dict, self._due, self.action_spaces, self.possible_agents, self._reset_done
        )
        obs: AgentDict = {}
        rewards: AgentDict = {}
        terminateds: AgentDict = {}
        infos: AgentDict = {}
        was_moving = list(self._moving)
        # Every observation of this step, final ones included, shows the time after it.
        self._time_left = np.array(
            [1.0 - (self.yard.steps + 1) / self.config.timeout], dtype=np.float32
        )

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
                        terminateds,
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
        self._due = {a for a in obs if a not in terminateds}
        # RLlib's env checker wants every agent in this step's results in `agents`,
        # the ones that just finished included.
        self.agents = sorted(obs)
        terminateds["__all__"] = all(self._done)
        if self.render_mode is not None:
            for agent, reward in rewards.items():
                self.returns[agent] += reward
        return obs, rewards, terminateds, {"__all__": False}, infos

    def render(self) -> np.ndarray | None:
        """The yard now as an (H, W, 3) uint8 frame (with ``render_mode="rgb_array"``)."""
        if self.render_mode is None:
            return None
        if self.render_mode != "rgb_array":
            raise ValueError(f"render_mode {self.render_mode!r} is not one of {self.metadata}")
        from hmarl.tasks.chicken_yard.render import YardRenderer

        if self._renderer is None:
            self._renderer = YardRenderer(self.config)
        self._renderer.draw(self, self.returns)
        return self._renderer.frame()

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


def check_actions(
    action_dict: Any,
    due: set[str],
    action_spaces: dict[str, Any],
    possible_agents: list[str],
    started: bool,
) -> None:
    """Refuse a bad action dict before anything changes: a ValueError naming the agent.

    ``due`` are the agents that must (and alone may) act, ``started`` whether the env
    was reset; every action space is Discrete.
    """
    if not started:
        raise ValueError("step() called before reset()")
    if not due:
        raise ValueError("the episode is over; call reset() before step()")
    if not isinstance(action_dict, dict):
        raise ValueError(f"actions must be a dict of agent id to action, got {action_dict!r}")
    for agent, action in action_dict.items():
        if agent not in action_spaces:
            raise ValueError(f"unknown agent id {agent!r}; agents are {', '.join(possible_agents)}")
        if agent not in due:
            raise ValueError(f"{agent} is not due to act (due: {', '.join(sorted(due))})")
        n = action_spaces[agent].n
        if not _is_integer(action):
            raise ValueError(f"{agent}: action must be an integer, got {action!r}")
        if not 0 <= int(action) < n:
            raise ValueError(f"{agent}: action {int(action)} is out of range 0..{n - 1}")
    missing = due - set(action_dict)
    if missing:
        raise ValueError(
            f"no action for {', '.join(sorted(missing))}: every agent due to act must "
            "act (an empty step is not a clock tick)"
        )


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool | np.bool_):
        return False
    if isinstance(value, int | np.integer):
        return True
    return isinstance(value, np.ndarray) and value.shape == () and value.dtype.kind in "iu"

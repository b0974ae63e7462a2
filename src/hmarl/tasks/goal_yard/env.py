"""The flat yard as an RLlib multi-agent environment: a thin adapter over the simulation."""

from __future__ import annotations

from typing import Any

import numpy as np
from ray.rllib.env.multi_agent_env import MultiAgentEnv

from hmarl.tasks.chicken_yard.env import check_actions
from hmarl.tasks.chicken_yard.simulation import draw_yard
from hmarl.tasks.goal_yard.agents import action_space, observation_space, robot_agent
from hmarl.tasks.goal_yard.simulation import FlatYardConfig, FlatYards

AgentDict = dict[str, Any]
"""A per-agent dict keyed by agent id, as RLlib passes them."""


class FlatYardEnv(MultiAgentEnv):
    """Robots walk the chicken yard; a robot that reaches a chicken catches it. No hierarchy.

    The world of :class:`~hmarl.tasks.chicken_yard.env.ChickenYardEnv` (read its spec
    sheet for the yard, the personalities and the moves), made flat: no robot chooses a
    chicken, every robot moves every step. :mod:`hmarl.tasks.goal_yard.task` gives it its
    hierarchy back by declaration (goals = the chickens).

    **Agents.** One per robot, ``robot_{i}`` for i = 1..num_robots, all acting for the
    policy ``robot``. Every robot still out acts on every step.

    **Action space.** ``Discrete(8)``: 0..7 = N, NE, E, SE, S, SW, W, NW, the yard's moves.

    **Observation space** (``gymnasium.spaces.Dict``, float32, every value in [0, 1];
    personalities in [-1, 1] with a negative ``personality_low``): the chicken yard's
    high-level view and the time left.

    ===================  =====================  ======================================
    field                shape                  meaning
    ===================  =====================  ======================================
    chicken_oceans       (num_chickens, O)      every chicken's personality
    chicken_positions    (num_chickens, 2)      every chicken's x, y
    robot_ocean          (O,)                   this robot's personality
    robot_position       (2,)                   this robot's x, y
    time_left            (1,)                   share of the robot's moves still to come
    ===================  =====================  ======================================

    **Rewards.** After the moves, a robot within closeness_threshold of a chicken catches
    it (the nearest one, if several are within reach): it is paid its compatibility with
    that chicken. A robot still out at the time limit is paid timeout_reward. Every other
    move pays 0 (step_reward and arrival_reward are the goal yard's low level's).

    **Starting state.** Drawn exactly as the chicken yard draws it, from
    ``self.np_random``, which ``reset(seed=...)`` seeds: the same seed, the same yard.

    **Episode end.** A robot that catches a chicken is *terminated*. The time limit comes
    after ``timeout - 1`` moves: the chicken yard's ``timeout`` counts its choosing step,
    which this yard has none of, so with the same seed and the same moves the two reach
    their time limits together. Every robot still out then is *terminated* too (running
    out of time is a failure with a price, as in the chicken yard). ``__all__`` is set
    once every robot is done. A robot that ends reports ``infos`` with ``compatibility``
    (of the chicken caught, None for none), ``arrived`` (caught one) and ``steps`` (moves
    made).

    **Arguments.** ``FlatYardEnv(config)`` with a
    :class:`~hmarl.tasks.goal_yard.simulation.FlatYardConfig` (the chicken yard's fields),
    a plain dict of its fields, or nothing for the defaults. Bad actions raise
    ``ValueError`` naming the agent and the problem, before any state changes.

    Example:

    >>> env = FlatYardEnv({"num_robots": 2, "num_chickens": 3})
    >>> obs, infos = env.reset(seed=0)
    >>> sorted(obs), obs["robot_1"]["chicken_positions"].shape, obs["robot_1"]["time_left"]
    (['robot_1', 'robot_2'], (3, 2), array([1.], dtype=float32))
    >>> obs, rewards, terminateds, truncateds, infos = env.step({"robot_1": 4, "robot_2": 0})
    >>> rewards, terminateds
    ({'robot_1': 0.0, 'robot_2': 0.0}, {'__all__': False})
    >>> env.step({"robot_1": 9, "robot_2": 0})
    Traceback (most recent call last):
    ...
    ValueError: robot_1: action 9 is out of range 0..7
    """

    def __init__(self, config: FlatYardConfig | dict[str, Any] | None = None) -> None:
        super().__init__()
        self.config = FlatYardConfig.coerce(config)
        self.yards = FlatYards(self.config)
        self.possible_agents = [robot_agent(i) for i in range(1, self.config.num_robots + 1)]
        self.agents = []
        # One space object for all robots: the same object every call.
        spaces = observation_space(self.config), action_space(self.config)
        self.observation_spaces = dict.fromkeys(self.possible_agents, spaces[0])
        self.action_spaces = dict.fromkeys(self.possible_agents, spaces[1])
        self._due: set[str] = set()
        self._started = False

    def reset(
        self, *, seed: int | None = None, options: dict | None = None
    ) -> tuple[AgentDict, AgentDict]:
        super().reset(seed=seed)
        layout = draw_yard(self.np_random, self.config)
        self.yards.reset(layout, np.array([0]))
        # Float32 copies made once per episode; every observation shares them.
        self._chicken_oceans = layout.chicken_oceans.astype(np.float32)
        self._chicken_positions = layout.chicken_positions.astype(np.float32)
        self._robot_oceans = layout.robot_oceans.astype(np.float32)
        self._due = set(self.possible_agents)
        self.agents = list(self.possible_agents)
        self._started = True
        return {a: self._obs(r) for r, a in enumerate(self.possible_agents)}, {}

    def step(
        self, action_dict: AgentDict
    ) -> tuple[AgentDict, AgentDict, AgentDict, AgentDict, AgentDict]:
        check_actions(
            action_dict, self._due, self.action_spaces, self.possible_agents, self._started
        )
        directions = np.zeros((1, self.config.num_robots), dtype=np.int64)
        for r, agent in enumerate(self.possible_agents):
            directions[0, r] = int(action_dict.get(agent, 0))
        caught, timed_out = self.yards.step(directions, np.ones(1, dtype=bool))
        compatibilities = self.yards.caught_compatibility()[0]
        obs: AgentDict = {}
        rewards: AgentDict = {}
        terminateds: AgentDict = {}
        infos: AgentDict = {}
        for r, agent in enumerate(self.possible_agents):
            if agent not in self._due:
                continue
            obs[agent] = self._obs(r)
            rewards[agent] = 0.0
            if caught[0, r]:
                rewards[agent] = float(compatibilities[r])
            elif timed_out[0, r]:
                rewards[agent] = self.config.timeout_reward
            if caught[0, r] or timed_out[0, r]:
                terminateds[agent] = True
                infos[agent] = {
                    "compatibility": float(compatibilities[r]) if caught[0, r] else None,
                    "arrived": bool(caught[0, r]),
                    "steps": int(self.yards.moves[0, r]),
                }
        self._due -= set(terminateds)
        # RLlib's env checker wants every agent in this step's results in `agents`,
        # the ones that just finished included.
        self.agents = sorted(obs)
        terminateds["__all__"] = not self._due
        return obs, rewards, terminateds, {"__all__": False}, infos

    def _obs(self, robot: int) -> dict[str, np.ndarray]:
        return {
            "chicken_oceans": self._chicken_oceans,
            "chicken_positions": self._chicken_positions,
            "robot_ocean": self._robot_oceans[robot],
            "robot_position": self.yards.positions[0, robot].astype(np.float32),
            "time_left": self.yards.time_left().astype(np.float32),
        }

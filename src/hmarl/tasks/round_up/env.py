"""The round-up as an RLlib multi-agent environment: a thin adapter over the simulation."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from ray.rllib.env.multi_agent_env import MultiAgentEnv

from hmarl.tasks.chicken_yard.env import check_actions
from hmarl.tasks.round_up.agents import Spaces, agent_ids, high_agent, low_agent
from hmarl.tasks.round_up.simulation import Outcome, RoundUp, RoundUpConfig

__all__ = ["RoundUpConfig", "RoundUpEnv"]

AgentDict = dict[str, Any]
"""A per-agent dict keyed by agent id, as RLlib passes them."""


class RoundUpEnv(MultiAgentEnv):
    """Robots catch chicken after chicken for a fixed time; each catch is replaced at once.

    The chicken yard's world (:class:`~hmarl.tasks.chicken_yard.env.ChickenYardEnv`):
    robots and chickens in the unit square (origin top-left, y grows downward), each
    with a personality, an OCEAN vector drawn uniform in [personality_low, 1) and
    L2-normalised. A robot's compatibility with a chicken is the dot product of their
    personalities; at the default personality_low of -1 it lies in [-1, 1], so an
    incompatible chicken costs. Robots catch as many compatible chickens as they can
    before the time is up, choosing again after every catch.

    **Agents.** Two per robot, ``robot_{i}_high`` and ``robot_{i}_low`` for
    i = 1..num_robots (``possible_agents``); all high agents share
    ``high_level_policy``, all low agents ``low_level_policy``. Observations are
    returned only for the agents due to act next: that is the hierarchy. Agents are
    never revived: both agents of a robot stay in the episode from their first
    observation to its end and act intermittently.

    **Action spaces.**

    ========  =======================  =====================================
    level     space                    meaning
    ========  =======================  =====================================
    high      Discrete(num_chickens)   index of the chicken to catch
    low       Discrete(8)              0..7 = N, NE, E, SE, S, SW, W, NW
    ========  =======================  =====================================

    A move adds ±move_amount to each axis its direction names (N is -y, E is +x,
    NE both), then clips to [0, 1].

    **Observation spaces** (``gymnasium.spaces.Dict``, float32; personalities in
    [-1, 1] when personality_low < 0, everything else in [0, 1]):

    =====  ===================  =====================  ===================================
    level  field                shape                  meaning
    =====  ===================  =====================  ===================================
    high   chicken_oceans       (num_chickens, O)      every chicken's personality
    high   chicken_positions    (num_chickens, 2)      every chicken's x, y
    high   robot_ocean          (O,)                   this robot's personality
    high   robot_position       (2,)                   this robot's x, y
    high   chicken_claimed      (num_chickens,)        1 where another robot is heading
    high   other_positions      (num_robots - 1, 2)    the other robots' x, y, in order
    high   time_left            (1,)                   fraction of the episode left
    high   other_oceans         (num_robots - 1, O)    the other robots' personalities
    high   other_targets        (num_robots - 1,       1 at the chicken each other robot
                                num_chickens)          is heading for (0s while deciding)
    low    robot_position       (2,)                   this robot's x, y
    low    target_position      (2,)                   where its chosen chicken stands
    low    time_left            (1,)                   fraction of the episode left
    =====  ===================  =====================  ===================================

    O is ``num_ocean_features``. The other robots come in robot order in
    ``other_positions``, ``other_oceans`` and ``other_targets``. The last two let
    robots share out the chickens, and let the high level's value foresee the other
    robots' catches (with the team reward most of a robot's return); the shipped
    network's policy reads the personalities, its value both. The low level's view
    is the yard's.

    **Flow.** A robot's high level decides at ``reset()``, after each catch, when
    the chicken it is heading for is caught by another robot (its option is
    *interrupted*), and, with ``replan_every``, after that many moves towards one
    chicken without a catch. On a step where a robot's high level decides, that
    robot does not move; on the following steps its low level moves it. Within a
    step: choices are made, heading robots move (all at once), then catches are
    resolved in robot order (of robots reaching one chicken on the same step, the
    first catches it), each caught chicken is replaced at once by a new one at a
    random position with a fresh personality, and every other robot heading for a
    caught chicken (one that chose it on this very step too) is interrupted. The
    observations of the step show the new chickens. Agents not due to act may not
    be given actions; ``due_agents`` lists those that are.

    **Rewards.**

    =====  ======================================================================
    level  reward
    =====  ======================================================================
    high   the team's catch: on a step with catches, every high agent gets the
           mean compatibility caught over the robots (those inside an option too);
           0.0 when its option is interrupted or re-planned, and when it decides on
           a step that interrupts it at once; nothing otherwise. ``team_reward`` w
           sets the team's share: (1 - w) x its own catch + w x the mean catch;
           w = 0 pays each robot its own catches only (a selfish high level)
    low    step_reward for each move that does not catch; arrival_reward for a
           move that catches
    =====  ======================================================================

    A low agent's reward on the step that ends its option (a catch, an interruption,
    a re-plan) comes without an observation; RLlib adds it to the agent's next step.

    **Starting state.** The yard's: chicken positions, chicken personalities, robot
    positions and robot personalities, drawn in that order from ``self.np_random``,
    which ``reset(seed=...)`` seeds. Each new chicken then draws its position and
    its personality from the same generator, in catch order: the same seed and the
    same actions give the same episode.

    **Episode end.** After ``episode_steps`` steps every agent that has observed
    ends (``__all__`` too) with a final observation and a reward (0.0 if nothing
    happened to it on that step); no penalty. Nothing ends earlier. ``horizon`` says
    how: ``"terminated"`` (the default), the task's own end: both levels observe the
    clock (``time_left``), so a state at the horizon has no time left and is worth
    nothing more, and values do not bootstrap there; or ``"truncated"``, a time
    limit outside the task, so the last decisions' values bootstrap from the value
    of the final observation (which the value never trains on). Terminated is the
    exact objective: the high level's value tracks its return up to the horizon
    (``benchmarks/round_up_horizon.py``: a bias of +0.07 in the last decisions,
    against +1.81 truncated). Truncated learned the score faster (README). A low
    agent's final observation shows the last target its robot chose.

    **Global state** (``state_space``, ``state()``; :mod:`hmarl.global_state`): the
    whole yard, for a centralised critic: ``robot_positions`` (R, 2),
    ``robot_oceans`` (R, O), ``robot_targets`` (R, C: 1 at the chicken each robot is
    heading for, 0s while it decides), ``chicken_positions`` (C, 2),
    ``chicken_oceans`` (C, O) and ``time_left`` (1,).

    **Infos.** Empty until the end. Then each high agent's holds its robot's
    episode tallies: ``caught_compatibility`` (summed over its catches) and
    ``catches``; each low agent's ``moves`` and ``moves_per_catch`` (None without
    a catch).

    **Rendering.** With ``render_mode="rgb_array"``, ``render()`` returns the yard
    as an (H, W, 3) uint8 frame (:mod:`hmarl.tasks.round_up.render`, pygame,
    imported on the first frame): target lines, this step's catches and new
    chickens, and each robot's tally.

    **Arguments.** ``RoundUpEnv(config)`` with a :class:`RoundUpConfig`, a plain
    dict of its fields (RLlib's ``env_config``) or nothing for the defaults. Bad
    actions raise ``ValueError`` naming the agent and the problem (the yard's
    errors), before any state changes.

    Example:

    >>> env = RoundUpEnv({"num_robots": 2, "num_chickens": 3, "episode_steps": 3})
    >>> obs, infos = env.reset(seed=0)
    >>> sorted(obs), obs["robot_1_high"]["other_positions"].shape
    (['robot_1_high', 'robot_2_high'], (1, 2))
    >>> obs, rewards, terminateds, truncateds, infos = env.step(
    ...     {"robot_1_high": 0, "robot_2_high": 0})
    >>> sorted(obs), rewards
    (['robot_1_low', 'robot_2_low'], {})
    >>> obs, rewards, *_ = env.step({"robot_1_low": 4, "robot_2_low": 0})
    >>> rewards
    {'robot_1_low': -0.001, 'robot_2_low': -0.001}
    >>> obs, rewards, terminateds, truncateds, infos = env.step(
    ...     {"robot_1_low": 4, "robot_2_low": 0})
    >>> terminateds["__all__"], sorted(obs) == env.possible_agents
    (True, True)
    >>> infos["robot_1_high"]
    {'caught_compatibility': 0.0, 'catches': 0}
    >>> env.step({"robot_1_low": 4})
    Traceback (most recent call last):
    ...
    ValueError: the episode is over; call reset() before step()

    **Version history.** v0: the round-up. v1: ``other_oceans`` and
    ``other_targets`` in the high level's view (checkpoints of v0 do not load).
    v2: the horizon terminates every agent (it truncated them, so each robot's
    last decisions bootstrapped from the value at ``time_left`` = 0, a state the
    value never trains on; the spaces are unchanged). v3: a global state
    (``state_space``, ``state()``), which the high level's value reads (a
    centralised critic); the observations are unchanged, the high-level network is
    not (checkpoints of v2 do not load). v4: ``horizon`` chooses how the horizon ends
    an episode (terminated by default, as in v3: checkpoints of v3 load).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self, config: RoundUpConfig | dict[str, Any] | None = None, render_mode: str | None = None
    ) -> None:
        super().__init__()
        self.config = RoundUpConfig.coerce(config)
        self.render_mode = render_mode
        self.round_up = RoundUp(self.config)
        n = self.config.num_robots
        self._high = [high_agent(i) for i in range(1, n + 1)]
        self._low = [low_agent(i) for i in range(1, n + 1)]
        self._robot_of = {a: r for r in range(n) for a in (self._high[r], self._low[r])}
        self.possible_agents = agent_ids(n)
        self.agents = []
        # One space object per level, shared by its agents: the same object every call.
        spaces = Spaces.of(self.config)
        self.observation_spaces = {a: spaces.high_observation for a in self._high} | {
            a: spaces.low_observation for a in self._low
        }
        self.action_spaces = {a: spaces.high_action for a in self._high} | {
            a: spaces.low_action for a in self._low
        }
        self.state_space = spaces.state
        self._due: set[str] = set()
        self._seen: set[str] = set()
        self._reset_done = False
        self._renderer: Any = None
        self.last = Outcome()
        """What the last step did (catches, new chickens), for the frames."""
        self.returns: dict[str, float] = {}
        """Rewards summed per agent since reset (kept while rendering, for the frame's panel)."""

    @property
    def due_agents(self) -> list[str]:
        """The agents that must (and alone may) get actions in the next ``step``."""
        return sorted(self._due)

    # -- observations -------------------------------------------------------

    def _high_obs(self, robot: int) -> dict[str, np.ndarray]:
        positions = self.round_up.yard.positions.astype(np.float32)
        return {
            "chicken_oceans": self._chicken_oceans,
            "chicken_positions": self._chicken_positions,
            "robot_ocean": self._robot_oceans[robot],
            "robot_position": positions[robot],
            "chicken_claimed": self.round_up.claimed(robot).astype(np.float32),
            "other_positions": np.delete(positions, robot, axis=0),
            "time_left": self._time_left,
            "other_oceans": np.delete(self._robot_oceans, robot, axis=0),
            "other_targets": self.round_up.others_targets(robot).astype(np.float32),
        }

    def _low_obs(self, robot: int) -> dict[str, np.ndarray]:
        return {
            "robot_position": self.round_up.yard.positions[robot].astype(np.float32),
            "target_position": np.array(self.round_up.yard.heading(robot), dtype=np.float32),
            "time_left": self._time_left,
        }

    def _observe(self, agent: str) -> dict[str, np.ndarray]:
        robot = self._robot_of[agent]
        return self._high_obs(robot) if agent in self._high else self._low_obs(robot)

    def state(self) -> dict[str, np.ndarray]:
        """The whole yard now (``state_space``): what a centralised critic reads."""
        targets = np.zeros((self.config.num_robots, self.config.num_chickens), np.float32)
        for robot, chicken in enumerate(self.round_up.targets):
            if chicken is not None:
                targets[robot, chicken] = 1.0
        return {
            "robot_positions": self.round_up.yard.positions.astype(np.float32),
            "robot_oceans": self._robot_oceans,
            "robot_targets": targets,
            "chicken_positions": self._chicken_positions,
            "chicken_oceans": self._chicken_oceans,
            "time_left": self._time_left,
        }

    def _copy_chickens(self) -> None:
        """Fresh float32 copies of the chickens, shared by the observations until the next
        respawn. Fresh, not updated in place: RLlib keeps the observations it was given."""
        layout = self.round_up.yard.layout
        self._chicken_oceans = layout.chicken_oceans.astype(np.float32)
        self._chicken_positions = layout.chicken_positions.astype(np.float32)

    # -- the MultiAgentEnv API ----------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict | None = None
    ) -> tuple[AgentDict, AgentDict]:
        super().reset(seed=seed)
        self.round_up.reset(self.np_random)
        self._copy_chickens()
        self._robot_oceans = self.round_up.yard.layout.robot_oceans.astype(np.float32)
        self._time_left = np.ones(1, dtype=np.float32)
        self._due = set(self._high)
        self._seen = set(self._high)
        self.agents = list(self._high)
        self._reset_done = True
        self.last = Outcome()
        self.returns = dict.fromkeys(self.possible_agents, 0.0)
        return {a: self._high_obs(r) for r, a in enumerate(self._high)}, {}

    def step(
        self, action_dict: AgentDict
    ) -> tuple[AgentDict, AgentDict, AgentDict, AgentDict, AgentDict]:
        check_actions(
            action_dict, self._due, self.action_spaces, self.possible_agents, self._reset_done
        )
        choices, moves = {}, {}
        for agent, action in action_dict.items():
            into = choices if agent in self._high else moves
            into[self._robot_of[agent]] = int(action)
        out = self.last = self.round_up.step(choices, moves, self.np_random)
        if out.respawned:
            self._copy_chickens()
        self._time_left = np.array(
            [1.0 - self.round_up.steps / self.config.episode_steps], dtype=np.float32
        )

        rewards: AgentDict = {}
        cfg = self.config
        for robot in out.moved:
            caught = robot in out.caught
            rewards[self._low[robot]] = cfg.arrival_reward if caught else cfg.step_reward
        own = np.zeros(cfg.num_robots)
        for robot, compat in out.caught.items():
            own[robot] = compat
        paid = cfg.high_rewards(own)
        ended = {*out.caught, *out.interrupted, *out.replanned}
        for robot in range(cfg.num_robots):
            # Every option that ends gets its reward; with a team share, every robot
            # gets its part of a catch, deciding or not (RLlib adds it to its next step).
            if robot in ended or paid[robot]:
                rewards[self._high[robot]] = float(paid[robot])

        if out.over:
            obs, rewards, ends, infos = self._end(rewards)
        else:
            due = [
                (self._high if chicken is None else self._low)[robot]
                for robot, chicken in enumerate(self.round_up.targets)
            ]
            obs = {a: self._observe(a) for a in due}
            self._seen.update(obs)
            ends, infos = {"__all__": False}, {}
        self._due = set() if out.over else set(obs)
        # RLlib's env checker wants every agent in this step's results in `agents`.
        self.agents = sorted(obs)
        if self.render_mode is not None:
            for agent, reward in rewards.items():
                self.returns[agent] += reward
        # The horizon ends the episode as the config says; the other flags stay clear.
        terminateds, truncateds = cfg.end_flags(ends, {"__all__": False})
        return obs, rewards, terminateds, truncateds, infos

    def _end(self, rewards: AgentDict) -> tuple[AgentDict, AgentDict, AgentDict, AgentDict]:
        """The horizon: every agent that has observed gets a final observation, a reward
        (RLlib wants one for every agent that acted and observes), its tallies, and
        its end flag (terminated or truncated, as ``horizon`` says)."""
        ended = [a for a in self.possible_agents if a in self._seen]
        obs = {a: self._observe(a) for a in ended}
        rewards = dict.fromkeys(ended, 0.0) | rewards
        sim, infos = self.round_up, {}
        for agent in ended:
            robot = self._robot_of[agent]
            if agent in self._high:
                infos[agent] = {
                    "caught_compatibility": float(sim.caught_compatibility[robot]),
                    "catches": int(sim.catches[robot]),
                }
            else:
                catches = int(sim.catches[robot])
                infos[agent] = {
                    "moves": int(sim.moves[robot]),
                    "moves_per_catch": float(sim.moves[robot] / catches) if catches else None,
                }
        return obs, rewards, dict.fromkeys(ended, True) | {"__all__": True}, infos

    def render(self) -> np.ndarray | None:
        """The yard now as an (H, W, 3) uint8 frame (with ``render_mode="rgb_array"``)."""
        if self.render_mode is None:
            return None
        if self.render_mode != "rgb_array":
            raise ValueError(f"render_mode {self.render_mode!r} is not one of {self.metadata}")
        from hmarl.tasks.round_up.render import RoundUpRenderer

        if self._renderer is None:
            self._renderer = RoundUpRenderer(self.config)
        self._renderer.draw(self, self.returns)
        return self._renderer.frame()

"""A clock for memory tests: every observation says how many decisions its agent has taken.

Hierarchical (the default): ``high`` decides at reset, then ``low`` acts for 1 to 3 steps
(drawn per decision), then ``high`` again, until the episode's length (6 to 13 env steps,
drawn at reset) is reached, when both observe a last time and terminate. Flat
(``{"flat": True}``): agents ``a0`` and ``a1`` act at every step. Each observation is
``[decisions its agent has taken this episode, env steps so far / 16, the episode's tag
(drawn at reset), the agent's index]``, so no two agent-episodes look alike. A decision
earns 1 when its action is the parity of the decisions its agent took before it (paid
when the agent next observes); each agent's last info holds its ``decisions``.

So a module with memory that counts its agent's decisions (:class:`CountingModule`)
holds, before each decision, exactly the first number of that decision's observation
(the state the tests check, row by row, across waits, sample cuts and episodes), and
acting greedily it earns 1 for every decision: its return is its agent's ``decisions``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis.value_function_api import ValueFunctionAPI
from ray.rllib.core.rl_module.rl_module import RLModule, RLModuleSpec
from ray.rllib.core.rl_module.torch import TorchRLModule
from ray.rllib.env.multi_agent_env import MultiAgentEnv
from ray.rllib.utils.annotations import override

from hmarl import Task
from hmarl.task import Metric

HIERARCHY, FLAT = ("high", "low"), ("a0", "a1")
SPACE = gym.spaces.Box(0.0, 64.0, (4,), np.float32)
ACTIONS = gym.spaces.Discrete(2)


def _agents(flat: bool) -> tuple[str, ...]:
    return FLAT if flat else HIERARCHY


class ClockEnv(MultiAgentEnv):
    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.flat = bool((config or {}).get("flat", False))
        self.possible_agents = list(_agents(self.flat))
        self.agents: list[str] = []
        self.observation_spaces = dict.fromkeys(self.possible_agents, SPACE)
        self.action_spaces = dict.fromkeys(self.possible_agents, ACTIONS)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple:
        self.rng = np.random.default_rng(seed)
        self.length = int(self.rng.integers(6, 14))
        self.tag = float(self.rng.random())
        self.t, self.next_high = 0, 0
        self.made = dict.fromkeys(self.possible_agents, 0)
        self.owed: dict[str, float] = {}
        self.agents = list(self.possible_agents)
        due = self._due()
        return {a: self._obs(a) for a in due}, {a: {} for a in due}

    def _due(self) -> list[str]:
        if self.flat:
            return list(FLAT)
        return ["high" if self.t == self.next_high else "low"]

    def _obs(self, agent: str) -> np.ndarray:
        index = self.possible_agents.index(agent)
        return np.array([self.made[agent], self.t / 16, self.tag, index], np.float32)

    def step(self, actions: dict[str, Any]) -> tuple:
        assert sorted(actions) == sorted(self._due()), (actions, self._due())
        for agent, action in actions.items():
            paid = float(action == self.made[agent] % 2)
            self.made[agent] += 1
            self.owed[agent] = self.owed.get(agent, 0.0) + paid
            if agent == "high":
                self.next_high = self.t + 1 + int(self.rng.integers(1, 4))
        self.t += 1
        over = self.t >= self.length
        observing = list(self.possible_agents) if over else self._due()
        obs = {a: self._obs(a) for a in observing}
        rewards = {a: self.owed.pop(a) for a in observing if a in self.owed}
        done = {a: over for a in observing} | {"__all__": over}
        infos = {a: {"decisions": self.made[a]} if over else {} for a in observing}
        if over:
            self.agents = []
        return obs, rewards, done, {"__all__": False}, infos


@dataclass
class ClockStep:
    rewards: dict[str, np.ndarray]
    terminated: dict[str, np.ndarray]
    truncated: dict[str, np.ndarray]
    infos: dict[str, dict[str, np.ndarray]]
    over: np.ndarray


class BatchedClock:
    """``num_envs`` clocks as arrays: groups ``high`` and ``low`` (or ``all`` when flat)."""

    def __init__(self, config: dict[str, Any], num_envs: int) -> None:
        self.flat = bool(config.get("flat", False))
        self.groups = {"all": FLAT} if self.flat else {"high": ("high",), "low": ("low",)}
        self.observation_spaces = dict.fromkeys(self.groups, SPACE)
        self.action_spaces = dict.fromkeys(self.groups, ACTIONS)
        self.num_envs = num_envs
        self.rngs = [np.random.default_rng(0) for _ in range(num_envs)]
        self.length = np.zeros(num_envs, np.int64)
        self.tag = np.zeros(num_envs)
        self.t = np.zeros(num_envs, np.int64)
        self.next_high = np.zeros(num_envs, np.int64)
        width = len(FLAT) if self.flat else 1
        self.made = {g: np.zeros((num_envs, width), np.int64) for g in self.groups}
        self.owed = {g: np.zeros((num_envs, width)) for g in self.groups}
        self.owes = {g: np.zeros((num_envs, width), bool) for g in self.groups}
        self.over = np.ones(num_envs, bool)

    def reset(self, seeds: Sequence[int], where: np.ndarray | None = None) -> None:
        envs = np.arange(self.num_envs) if where is None else np.flatnonzero(where)
        for env, seed in zip(envs, seeds, strict=True):
            self.rngs[env] = np.random.default_rng(seed)
            self.length[env] = self.rngs[env].integers(6, 14)
            self.tag[env] = self.rngs[env].random()
        self.t[envs] = self.next_high[envs] = 0
        for group in self.groups:
            self.made[group][envs] = 0
            self.owed[group][envs] = 0.0
            self.owes[group][envs] = False
        self.over[envs] = False

    def due(self, group: str) -> np.ndarray:
        running = ~self.over[:, None]
        if self.flat:
            return np.repeat(running, len(FLAT), axis=1)
        high = (self.t == self.next_high)[:, None]
        return running & (high if group == "high" else ~high)

    def observations(self, group: str) -> np.ndarray:
        made = self.made[group]
        index = np.arange(made.shape[1]) + (1 if group == "low" else 0)
        return np.stack(
            np.broadcast_arrays(made, (self.t / 16)[:, None], self.tag[:, None], index[None, :]),
            axis=-1,
        ).astype(np.float32)

    def step(self, actions: dict[str, np.ndarray]) -> ClockStep:
        acting = {g: self.due(g) for g in self.groups}
        for group, due in acting.items():
            right = np.asarray(actions[group]) == self.made[group] % 2
            self.owed[group] += np.where(due, right.astype(np.float64), 0.0)
            self.made[group] += due
            self.owes[group] |= due
        if not self.flat:
            for env in np.flatnonzero(acting["high"][:, 0]):
                self.next_high[env] = self.t[env] + 1 + self.rngs[env].integers(1, 4)
        running = ~self.over
        self.t += running
        ended = running & (self.t >= self.length)
        rewards, terminated = {}, {}
        for group in self.groups:
            observes = self.due(group) | ended[:, None]
            paid = observes & self.owes[group]
            rewards[group] = np.where(paid, self.owed[group], 0.0)
            self.owed[group][paid] = 0.0
            self.owes[group][paid] = False
            terminated[group] = np.repeat(ended[:, None], self.made[group].shape[1], axis=1)
        self.over |= ended
        return ClockStep(
            rewards=rewards,
            terminated=terminated,
            truncated={g: np.zeros_like(v) for g, v in terminated.items()},
            infos={g: {"decisions": self.made[g].astype(np.float64)} for g in self.groups},
            over=ended,
        )


class CountingModule(TorchRLModule, ValueFunctionAPI):
    """A module with memory that counts its agent's decisions.

    Its state is ``{"count": (1,)}``, the decisions taken (initially 0). Its logits and
    value read the observation and the count; its greedy action is the count's parity.
    """

    @override(RLModule)
    def setup(self) -> None:
        inputs = self.observation_space.shape[0] + 1
        self.pi = torch.nn.Linear(inputs, self.action_space.n)
        self.vf = torch.nn.Linear(inputs, 1)

    @override(RLModule)
    def get_initial_state(self) -> dict[str, torch.Tensor]:
        return {"count": torch.zeros(1)}

    def _counted(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """The inputs (B, T, D + 1) and each step's count (B, T)."""
        obs = batch[Columns.OBS].float()
        steps = torch.arange(obs.shape[1], dtype=torch.float32)
        counts = batch[Columns.STATE_IN]["count"] + steps[None, :]
        return torch.cat([obs, counts[..., None]], dim=-1) / 16, counts

    @override(RLModule)
    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        inputs, counts = self._counted(batch)
        parity = torch.nn.functional.one_hot((counts % 2).long(), self.action_space.n)
        return {
            Columns.ACTION_DIST_INPUTS: self.pi(inputs) + 5.0 * parity,
            Columns.STATE_OUT: {"count": counts[:, -1:] + 1},
        }

    @override(ValueFunctionAPI)
    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> torch.Tensor:
        return self.vf(self._counted(batch)[0]).squeeze(-1)


def counting_modules() -> dict[str, RLModuleSpec]:
    spec = RLModuleSpec(module_class=CountingModule, model_config={"max_seq_len": 3})
    return {"high_level_policy": spec, "low_level_policy": spec, "flat_policy": spec}


def policy_of(agent: str) -> str:
    return {"high": "high_level_policy", "low": "low_level_policy"}.get(agent, "flat_policy")


METRICS = tuple(Metric(f"{policy} decisions", policy, "decisions") for policy in counting_modules())
"""The decisions of each policy's agents per episode: the return of perfect memory."""


TASK = Task(
    name="clock",
    make_env=ClockEnv,
    policy_of=policy_of,
    make_batched_env=lambda config, num_envs: BatchedClock(config, num_envs),
    modules=counting_modules,
    metrics=METRICS,
)
"""The clock with a counting module for every policy (a task's own module with memory)."""

LSTM_TASK = Task(
    name="clock",
    make_env=ClockEnv,
    policy_of=policy_of,
    make_batched_env=lambda config, num_envs: BatchedClock(config, num_envs),
    ppo={p: {"memory": "lstm", "max_seq_len": 4} for p in counting_modules()},
    metrics=METRICS,
)
"""The clock with RLlib's default module and an LSTM for every policy."""

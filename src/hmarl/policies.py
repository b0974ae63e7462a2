"""Policies that act on batches of observations: uniform random, and RL modules' actions.

An RL module's policy takes its most likely action (greedy, the default) or samples
from its action distribution as in training (seeded: the same seed, the same
actions). Both follow :class:`hmarl.task.Policy`: ``act(policy_id, obs)`` takes a batch of
observations of agents that share a policy (the policy's observation space with a
leading batch axis) and returns one action per row. Task baselines follow it too.

A module with memory (:mod:`hmarl.sequences`) acts from each agent's state: ``act`` then
takes ``agents``, a key per row naming the agent that acts, keeps each agent's state
under its key (held while the agent waits) and forgets them all at :meth:`ModulePolicy.reset`,
which hmarl's evaluation calls (through ``bind``) before it plays new episodes.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from hmarl.action_masks import observation_key, random_legal_actions, split
from hmarl.flat_observations import batch_size, flatten, is_flat


class RandomPolicy:
    """Uniform random actions from each policy's action space: the floor of every score.

    Where a policy's observations carry an action mask (``observation_spaces`` given),
    the action is uniform among the legal ones (see :mod:`hmarl.action_masks`).
    """

    def __init__(
        self,
        action_spaces: Mapping[str, gym.Space],
        seed: int | None = None,
        observation_spaces: Mapping[str, gym.Space] | None = None,
    ) -> None:
        self.action_spaces = dict(action_spaces)
        self.mask_keys = {
            policy: observation_key(space) for policy, space in (observation_spaces or {}).items()
        }
        self.rng = np.random.default_rng(seed)
        for offset, space in enumerate(self.action_spaces.values()):
            space.seed(None if seed is None else seed + offset)

    def act(self, policy_id: str, obs: Any) -> np.ndarray:
        space = self.action_spaces[policy_id]
        key = self.mask_keys.get(policy_id)
        if key is not None:
            return random_legal_actions(split(obs, key)[1], space, self.rng)
        n = batch_size(obs)
        if isinstance(space, gym.spaces.Discrete):
            return space.start + self.rng.integers(space.n, size=n)
        return np.stack([space.sample() for _ in range(n)])


class ModulePolicy:
    """Actions of RL modules (trained ones, from a checkpoint or an export): greedy by default.

    ``observation_spaces`` are the env's spaces per policy. A module that sees a
    flat Box where the env's space is structured (RLlib's default modules behind its
    ``FlattenObservations`` connector) gets its batches flattened by the very
    function that connector applies. :meth:`sampling` gives the same modules
    sampling their actions instead.
    """

    def __init__(
        self,
        modules: Mapping[str, Any],
        observation_spaces: Mapping[str, gym.Space],
        source: Any = None,
    ) -> None:
        self.modules = dict(modules)
        self.observation_spaces = dict(observation_spaces)
        self.source = source
        """Where the modules came from (a checkpoint or export folder), for messages."""
        self.actions = "greedy"
        """"greedy" or "sampled" (see :data:`hmarl.task.ACTIONS`)."""
        self._seeds: np.random.Generator | None = None
        self.stateful = frozenset(p for p, module in self.modules.items() if module.is_stateful())
        """The policies whose modules have memory."""
        self.remembers = bool(self.stateful)
        """Whether ``act`` needs ``agents`` (see the module docstring)."""
        self._memory: dict[str, dict[Hashable, Any]] = {p: {} for p in self.stateful}
        """Policy -> agent key -> its state now (torch tensors, one row's)."""

    def sampling(self, seed: int | None) -> ModulePolicy:
        """The same modules, sampling actions from their distributions.

        Each ``act`` call draws from torch's generator seeded from ``seed``'s stream,
        so the same seed and the same calls give the same actions.
        """
        policy = ModulePolicy(self.modules, self.observation_spaces, self.source)
        policy.actions = "sampled"
        policy._seeds = np.random.default_rng(seed)
        return policy

    def bind(self, env: Any) -> None:
        """New episodes start in ``env`` (hmarl's evaluation calls this): see :meth:`reset`."""
        self.reset()

    def reset(self) -> None:
        """Forget every agent's state: each starts its next episode from the initial state."""
        for states in self._memory.values():
            states.clear()

    def act(self, policy_id: str, obs: Any, agents: Sequence[Hashable] | None = None) -> np.ndarray:
        """One action per row; ``agents`` (a key per row) for a module with memory."""
        import torch

        batch = self.module_input(policy_id, obs)
        module = self.modules[policy_id]
        state = self._recall(policy_id, agents) if policy_id in self.stateful else None
        with torch.no_grad():
            if self._seeds is None:
                dist, after = step_distribution(module, batch, state)
                actions = dist.to_deterministic().sample()
            else:
                # A generator of its own would be better, but RLlib's distributions
                # sample from torch's global one: fork it, so nothing else is disturbed.
                # (Only the CPU generator: torch.manual_seed would queue every device's.)
                with torch.random.fork_rng(devices=[]):
                    torch.default_generator.manual_seed(int(self._seeds.integers(2**63)))
                    dist, after = step_distribution(module, batch, state, explore=True)
                    actions = dist.sample()
        if state is not None:
            self._keep(policy_id, agents, after)
        return actions.numpy()

    def _recall(self, policy_id: str, agents: Sequence[Hashable] | None) -> Any:
        """The state of each acting agent: its last one, or the initial state if it has none."""
        import torch
        import tree

        if agents is None:
            raise ValueError(
                f"policy {policy_id} has memory (a recurrent module): act needs agents=, "
                "a key per row naming the agent, so that each agent's state carries over"
            )
        known = self._memory[policy_id]
        initial = tree.map_structure(torch.as_tensor, self.modules[policy_id].get_initial_state())
        rows = [known.get(agent, initial) for agent in agents]
        return tree.map_structure(lambda *states: torch.stack(states), *rows)

    def _keep(self, policy_id: str, agents: Sequence[Hashable], states: Any) -> None:
        import tree

        known = self._memory[policy_id]
        for i, agent in enumerate(agents):
            known[agent] = tree.map_structure(lambda state, i=i: state[i], states)

    def flattens(self, policy_id: str) -> bool:
        """Does the policy's module see its observations flattened into one vector?"""
        module_space = self.modules[policy_id].observation_space
        return is_flat(module_space) and not is_flat(self.observation_spaces[policy_id])

    def module_input(self, policy_id: str, obs: Any) -> Any:
        """A batch of env observations as the policy's module takes them (torch tensors)."""
        import torch

        if self.flattens(policy_id):
            return torch.from_numpy(flatten(obs, self.observation_spaces[policy_id]))
        return to_torch(obs)


def greedy_action(module: Any, batch: Any) -> Any:
    """An RL module's greedy action (its action distribution's mode) for a batch of its inputs.

    One definition for acting and for the ONNX graph of an export (see :mod:`hmarl.export`).
    """
    return action_distribution(module, batch).to_deterministic().sample()


def greedy_step(module: Any, batch: Any, state: Any) -> tuple[Any, Any]:
    """A module with memory's greedy action for a batch of its inputs and each row's state,
    and each row's next state (for acting and for the ONNX graph, as :func:`greedy_action`)."""
    dist, after = step_distribution(module, batch, state)
    return dist.to_deterministic().sample(), after


def action_distribution(module: Any, batch: Any, explore: bool = False) -> Any:
    """An RL module's action distribution for a batch of its inputs.

    As it acts in inference, or with ``explore`` as in training (RLlib's env runners
    sample from the exploration forward pass's distribution).
    """
    return step_distribution(module, batch, None, explore)[0]


def step_distribution(
    module: Any, batch: Any, state: Any, explore: bool = False
) -> tuple[Any, Any]:
    """:func:`action_distribution`, for a module with memory from each row's ``state`` (None
    for a module without), and each row's next state."""
    inputs, after = forward(module, batch, state, explore)
    kind = (
        module.get_exploration_action_dist_cls()
        if explore
        else module.get_inference_action_dist_cls()
    )
    return kind.from_logits(inputs), after


def forward(module: Any, batch: Any, state: Any, explore: bool = False) -> tuple[Any, Any]:
    """An RL module's action distribution inputs for a batch of its inputs (its inference
    forward pass, or with ``explore`` its exploration one), and for a module with memory
    (``state``: each row's state, None for a module without) each row's next state.

    A module with memory takes each row as a sequence of one step, as RLlib's env runners
    hand it (a time axis of 1, and ``Columns.STATE_IN``), and returns ``Columns.STATE_OUT``.
    """
    import tree
    from ray.rllib.core.columns import Columns

    inputs = {Columns.OBS: batch}
    if state is not None:
        inputs = {
            Columns.OBS: tree.map_structure(lambda leaf: leaf.unsqueeze(1), batch),
            Columns.STATE_IN: state,
        }
    out = module.forward_exploration(inputs) if explore else module.forward_inference(inputs)
    if state is None:
        return out[Columns.ACTION_DIST_INPUTS], None
    return out[Columns.ACTION_DIST_INPUTS][:, 0], out[Columns.STATE_OUT]


def to_torch(obs: Any) -> Any:
    """A batch of observations as torch tensors; float64 becomes float32, as RLlib's
    env-to-module connector (``NumpyToTensor``) hands modules their inputs."""
    import torch

    if isinstance(obs, Mapping):
        return {key: to_torch(value) for key, value in obs.items()}
    if isinstance(obs, tuple):
        return tuple(to_torch(value) for value in obs)
    array = np.ascontiguousarray(obs)
    return torch.from_numpy(array.astype(np.float32) if array.dtype == np.float64 else array)

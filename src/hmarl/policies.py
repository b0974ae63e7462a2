"""Policies that act on batches of observations: uniform random, and RL modules' actions.

An RL module's policy takes its most likely action (greedy, the default) or samples
from its action distribution as in training (seeded: the same seed, the same
actions). Both follow :class:`hmarl.task.Policy`: ``act(policy_id, obs)`` takes a batch of
observations of agents that share a policy (the policy's observation space with a
leading batch axis) and returns one action per row. Task baselines follow it too.
"""

from __future__ import annotations

from collections.abc import Mapping
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

    def sampling(self, seed: int | None) -> ModulePolicy:
        """The same modules, sampling actions from their distributions.

        Each ``act`` call draws from torch's generator seeded from ``seed``'s stream,
        so the same seed and the same calls give the same actions.
        """
        policy = ModulePolicy(self.modules, self.observation_spaces, self.source)
        policy.actions = "sampled"
        policy._seeds = np.random.default_rng(seed)
        return policy

    def act(self, policy_id: str, obs: Any) -> np.ndarray:
        import torch

        batch = self.module_input(policy_id, obs)
        module = self.modules[policy_id]
        with torch.no_grad():
            if self._seeds is None:
                return greedy_action(module, batch).numpy()
            # A generator of its own would be better, but RLlib's distributions
            # sample from torch's global one: fork it, so nothing else is disturbed.
            # (Only the CPU generator: torch.manual_seed would queue every device's.)
            with torch.random.fork_rng(devices=[]):
                torch.default_generator.manual_seed(int(self._seeds.integers(2**63)))
                return action_distribution(module, batch, explore=True).sample().numpy()

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


def action_distribution(module: Any, batch: Any, explore: bool = False) -> Any:
    """An RL module's action distribution for a batch of its inputs.

    As it acts in inference, or with ``explore`` as in training (RLlib's env runners
    sample from the exploration forward pass's distribution).
    """
    from ray.rllib.core.columns import Columns

    if explore:
        inputs = module.forward_exploration({Columns.OBS: batch})[Columns.ACTION_DIST_INPUTS]
        return module.get_exploration_action_dist_cls().from_logits(inputs)
    inputs = module.forward_inference({Columns.OBS: batch})[Columns.ACTION_DIST_INPUTS]
    return module.get_inference_action_dist_cls().from_logits(inputs)


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

"""Structured observations as one flat vector, exactly as RLlib's ``FlattenObservations`` makes it.

RLlib's default PPO module takes a 1-D Box. For a Dict or Tuple observation RLlib's
env runner flattens it with its ``FlattenObservations`` connector, which calls
``ray.rllib.utils.numpy.flatten_inputs_to_1d_tensor`` (Dict keys sorted, Box values
row-major, Discrete values one-hot). hmarl's batched sampler, its evaluation and its
exports flatten with the very same function, so a policy trained on either sampler acts
the same everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np


def is_flat(space: gym.Space | None) -> bool:
    """Is ``space`` the 1-D Box RLlib's default modules take as it is?"""
    return isinstance(space, gym.spaces.Box) and len(space.shape) == 1


def flat_space(space: gym.Space) -> gym.spaces.Box:
    """The space RLlib's ``FlattenObservations`` connector turns ``space`` into."""
    from ray.rllib.utils.numpy import flatten_inputs_to_1d_tensor
    from ray.rllib.utils.spaces.space_utils import get_base_struct_from_space

    struct = get_base_struct_from_space(space)
    size = flatten_inputs_to_1d_tensor(
        _sample(struct), spaces_struct=struct, batch_axis=False
    ).shape[0]
    return gym.spaces.Box(float("-inf"), float("inf"), (size,), np.float32)


def flatten(obs: Any, space: gym.Space) -> np.ndarray:
    """A batch of observations of ``space`` as (rows, n) float32, as RLlib flattens them."""
    from ray.rllib.utils.numpy import flatten_inputs_to_1d_tensor
    from ray.rllib.utils.spaces.space_utils import get_base_struct_from_space

    if batch_size(obs) == 0:  # RLlib's flattening cannot reshape an empty batch
        return np.zeros((0, *flat_space(space).shape), dtype=np.float32)
    struct = get_base_struct_from_space(space)
    flat = flatten_inputs_to_1d_tensor(obs, spaces_struct=struct, batch_axis=True)
    return np.ascontiguousarray(flat, dtype=np.float32)


def batch_size(obs: Any) -> int:
    """Rows in a batch of observations (a dict of arrays, a tuple, or an array)."""
    while isinstance(obs, Mapping | tuple):
        obs = next(iter(obs.values())) if isinstance(obs, Mapping) else obs[0]
    return len(obs)


def _sample(struct: Any) -> Any:
    if isinstance(struct, Mapping):
        return {k: _sample(v) for k, v in struct.items()}
    if isinstance(struct, tuple):
        return tuple(_sample(v) for v in struct)
    return struct.sample()

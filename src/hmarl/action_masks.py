"""Action masks: observations that say which actions are legal, and what hmarl does with them.

A policy's observation carries an action mask when its space is a ``gymnasium.spaces.Dict``
with an ``action_mask`` entry beside exactly one other, ``observation`` (PettingZoo's
layout) or ``observations`` (RLlib's examples' layout), and its action space is
``Discrete(n)``: the mask is ``n`` numbers, nonzero where an action is legal::

    Dict({"observation": Box(...), "action_mask": Box(0, 1, (n,), int8)})

Then no part of hmarl picks a masked action: the policy's RL module is wrapped in
:class:`hmarl.masked_module.MaskedModule`, which gives the module only the
``observation`` and sets the logits of masked actions to :data:`MASKED_LOGIT` (so
sampling, the greedy action, the learner's loss, its entropy and KL, and the ONNX
graph of an export all see legal actions only); ``random`` draws among legal
actions (:func:`random_legal_actions`); evaluation refuses any baseline action that
a mask forbids (:func:`check_legal`), naming the policy. The conformance checks hold
every mask to its space and to at least one legal action.

This module needs only NumPy and Gymnasium, so the checks run before Ray starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

MASK_KEY = "action_mask"
OBSERVATION_KEYS = ("observation", "observations")
"""The key of the observation beside the mask: PettingZoo's, or RLlib's examples'."""
MASKED_LOGIT = -1e9
"""The logit of a masked action: large and finite, so softmax gives it exactly 0 in float32
while entropy, KL and gradients stay free of NaN (``-inf`` would give ``0 * -inf``)."""


class MaskError(ValueError):
    """An observation space or an observation carries an action mask that cannot be used."""


def observation_key(space: gym.Space) -> str | None:
    """The key of the observation beside an action mask in ``space``, or None without a mask.

    >>> space = gym.spaces.Dict({"observation": gym.spaces.Box(0, 1, (3,)),
    ...                          "action_mask": gym.spaces.MultiBinary(4)})
    >>> observation_key(space), observation_key(space["observation"])
    ('observation', None)
    """
    if not isinstance(space, gym.spaces.Dict) or MASK_KEY not in space.spaces:
        return None
    others = sorted(key for key in space.spaces if key != MASK_KEY)
    if len(others) != 1 or others[0] not in OBSERVATION_KEYS:
        raise MaskError(
            f"an observation with an {MASK_KEY!r} must hold exactly one other entry, "
            f"{' or '.join(map(repr, OBSERVATION_KEYS))}; this one holds {others}"
        )
    return others[0]


def check_masked_spaces(observation_space: gym.Space, action_space: gym.Space) -> None:
    """Raise :class:`MaskError` unless a masked observation space fits its action space."""
    key = observation_key(observation_space)
    if key is None:
        return
    if not isinstance(action_space, gym.spaces.Discrete):
        raise MaskError(
            f"an {MASK_KEY!r} masks a Discrete action; the action space is {action_space}"
        )
    shape = observation_space[MASK_KEY].shape
    if shape != (int(action_space.n),):
        raise MaskError(
            f"the {MASK_KEY!r} has shape {shape}, but the action space {action_space} needs "
            f"({int(action_space.n)},)"
        )


def split(obs: Mapping[str, Any], key: str) -> tuple[Any, np.ndarray]:
    """A masked observation (or a batch of them) as (observation, legal actions as bools)."""
    return obs[key], np.asarray(obs[MASK_KEY]) > 0


def mask_problem(mask: Any, action_space: gym.spaces.Discrete) -> str | None:
    """What is wrong with one agent's mask, or None: its size, its values, no legal action."""
    mask = np.asarray(mask)
    n = int(action_space.n)
    if mask.shape != (n,):
        return f"its {MASK_KEY} has shape {mask.shape}, not ({n},)"
    if not np.all((mask == 0) | (mask == 1)):
        return f"its {MASK_KEY} holds values other than 0 and 1: {mask.tolist()}"
    if not mask.any():
        return f"its {MASK_KEY} allows no action"
    return None


def random_legal_actions(
    legal: np.ndarray, action_space: gym.spaces.Discrete, rng: np.random.Generator
) -> np.ndarray:
    """One uniformly random legal action per row of ``legal`` (rows, n) bools."""
    counts = legal.sum(axis=1)
    if np.any(counts == 0):
        raise MaskError(f"{MASK_KEY} allows no action in row {int(np.argmin(counts))}")
    # The k-th legal action of each row, k uniform in [0, count).
    picks = np.floor(rng.random(len(legal)) * counts).astype(np.int64)
    index = (np.cumsum(legal, axis=1) > picks[:, None]).argmax(axis=1)
    return action_space.start + index


def check_legal(
    policy_id: str,
    obs: Any,
    actions: np.ndarray,
    spaces: tuple[gym.Space, gym.Space],
    who: str,
) -> None:
    """Raise :class:`MaskError` if any of ``actions`` is masked in its observation.

    ``spaces`` is the policy's (observation, action) space; ``who`` names the actor.
    """
    observation_space, action_space = spaces
    key = observation_key(observation_space)
    if key is None:
        return
    _, legal = split(obs, key)
    index = np.asarray(actions, dtype=np.int64).reshape(-1) - int(action_space.start)
    inside = (index >= 0) & (index < legal.shape[1])
    allowed = inside & legal[np.arange(len(index)), np.clip(index, 0, legal.shape[1] - 1)]
    bad = np.flatnonzero(~allowed)
    if len(bad):
        row = int(bad[0])
        raise MaskError(
            f"{who} picked action {int(actions[row])} for {policy_id}, which its "
            f"{MASK_KEY} forbids ({len(bad)} of {len(index)} actions masked)"
        )

"""A global state beside the agents' own views, for centralised critics (MAPPO-style).

An env may declare a global state with PettingZoo's two names, on a PettingZoo
``ParallelEnv`` or an RLlib ``MultiAgentEnv`` alike:

- ``state_space``: a Gymnasium space (an attribute);
- ``state()``: the state now, inside ``state_space``.

A batched env (:mod:`hmarl.batched_env`) declares the same ``state_space`` and a
``states()`` method giving every env's state as one array (a leading axis of
``num_envs``; a dict of such arrays for a Dict space).

A policy trained with ``critic="central"`` (a per-policy setting of the task's ``ppo``,
or ``--critic central`` for every policy) has a value function that also reads the
state *at the step its agent observed*: for an agent that decides now and then, at its
decision. Its actions never read the state (:mod:`hmarl.central_critic`), so acting,
evaluation and exports need nothing but the agent's observation.

Where the state travels: hmarl's env wrapper for RLlib's env runners adds ``state()`` to
the info of every observation (:data:`STATE_INFO`) and the learner turns those into the
batch column :data:`GLOBAL_STATE`; hmarl's batched sampler writes the column directly.
A task's own module reads ``batch[GLOBAL_STATE]`` in its value and finds the state's
space in ``model_config[STATE_SPACE_KEY]``.

This module needs only Gymnasium, so the checks run before Ray starts.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

GLOBAL_STATE = "global_state"
"""The batch column of the global state, beside ``Columns.OBS``."""
STATE_INFO = "hmarl_state"
"""The info key under which the env wrapper puts ``state()`` with every observation."""
STATE_SPACE_KEY = "global_state_space"
"""The ``model_config`` key that hands a centralised critic's module the state's space."""
CRITICS = ("local", "central")
"""A value reads the agent's observation (local) or the global state beside it (central)."""


class StateError(ValueError):
    """An env's global state is missing or does not fit its space; the message says why."""


def state_space_of(env: Any) -> gym.Space | None:
    """The env's ``state_space``, or None if it declares no state (both names are needed)."""
    space = getattr(env, "state_space", None)
    if space is None or not callable(getattr(env, "state", None)):
        return None
    if not isinstance(space, gym.Space):
        raise StateError(
            f"the env's state_space is a {type(space).__name__}, not a Gymnasium space"
        )
    return space


def check_state(env: Any, space: gym.Space) -> str | None:
    """What is wrong with ``env.state()`` now, or None."""
    try:
        state = env.state()
    except NotImplementedError:
        return "the env declares a state_space, but its state() is not implemented"
    if not space.contains(state):
        return f"its state() {state!r} is not in its state_space {space}"
    return None

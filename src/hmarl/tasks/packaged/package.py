"""A package's env by its registered id: found or registered, made as the package makes it,
checked, unwrapped."""

from __future__ import annotations

import gymnasium as gym


def make_package_env(env_id: str, kind: type[gym.Env]) -> gym.Env:
    """The package's env registered as ``env_id``, unwrapped; refused if not a ``kind``.

    Gymnasium's wrappers are left out: the packages register no time limit of their
    own with Gymnasium (theirs is inside the env), and the env checker costs time.
    """
    try:
        spec = gym.spec(env_id)
    except gym.error.Error as err:
        raise ValueError(f"env_id {env_id!r} is not a registered env ({err})") from None
    if spec.max_episode_steps is not None:
        raise ValueError(
            f"env_id {env_id!r} is registered with a Gymnasium time limit "
            f"({spec.max_episode_steps} steps); only the package's own limit is supported"
        )
    try:
        env = gym.make(env_id, disable_env_checker=True).unwrapped
    except Exception as err:  # the package's own checks, in its own words
        package = spec.entry_point.split(".")[0] if isinstance(spec.entry_point, str) else "it"
        raise ValueError(
            f"env_id {env_id!r}: {package} could not make it: {type(err).__name__}: {err}"
        ) from None
    if not isinstance(env, kind):
        raise ValueError(f"env_id {env_id!r} makes a {type(env).__name__}, not a {kind.__name__}")
    return env


def is_registered(env_id: object, entry_point: str, kind: str) -> bool:
    """Whether ``env_id`` is registered with Gymnasium as an env of ``entry_point``.

    Raises ``ValueError`` naming the id when it is not a string, or is registered as
    another package's env (not ``kind``, say "an LBF env"); False means the task may
    register it.
    """
    if not isinstance(env_id, str):
        raise ValueError(f"env_id must be a string, got {env_id!r}")
    if env_id not in gym.registry:
        return False
    entry = gym.registry[env_id].entry_point
    if entry != entry_point:
        raise ValueError(f"env_id {env_id!r} is not {kind} (its entry point is {entry})")
    return True

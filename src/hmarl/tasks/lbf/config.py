"""Which LBF env the task runs: ``env_id``, any id lbforaging registers, and a few it lacks.

lbforaging 2.0.0 registers ``Foraging[-2s]-{s}x{s}-{p}p-{f}f[-coop]-v3`` for sizes 5
to 19, 2 to 9 players and 1 to 4 foods. An id of that form outside those ranges
(``Foraging-15x15-4p-5f-v3``, say) is registered here on first use, with exactly the
settings the package gives its own ids (levels 1 to 2, 50 steps, sight 2 for
``-2s``, the whole field otherwise).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hmarl.tasks.chicken_yard.simulation import EnvConfig
from hmarl.tasks.packaged.package import is_registered
from hmarl.tasks.packaged.variants import Hierarchy, check_hierarchy

DEFAULT_ENV_ID = "Foraging-8x8-2p-2f-coop-v3"

_ID = re.compile(
    r"^Foraging(?P<partial>-2s)?-(?P<size>\d+)x(?P=size)-(?P<players>\d+)p-"
    r"(?P<foods>\d+)f(?P<coop>-coop)?-v3$"
)


@dataclass(frozen=True)
class LBFConfig(EnvConfig):
    """The LBF task's settings."""

    env_id: str = DEFAULT_ENV_ID
    """A registered LBF env id (lbforaging's own, or of its form, e.g. Foraging-15x15-4p-5f-v3)."""
    hierarchy: Hierarchy = "flat"
    """"flat": every agent acts every step (the package's env as it is); "goals": a high
    level per agent chooses goals, a low level reaches them (see hmarl.tasks.packaged.variants)."""

    def __post_init__(self) -> None:
        register_variant(self.env_id)
        check_hierarchy(self.hierarchy)


def register_variant(env_id: str) -> None:
    """Make sure ``env_id`` is a registered LBF env: register it if lbforaging lacks it.

    Raises ``ValueError`` naming the id when it is neither registered nor of the form
    above.
    """
    import gymnasium as gym
    import lbforaging  # noqa: F401  (registers the package's ids)

    if is_registered(env_id, "lbforaging.foraging:ForagingEnv", "an LBF env"):
        return
    match = _ID.match(env_id)
    if match is None:
        raise ValueError(
            f"env_id {env_id!r} is not a registered LBF env; ids look like "
            "Foraging-8x8-2p-2f-coop-v3 or Foraging-2s-10x10-3p-3f-v3"
        )
    size, players, foods = (int(match[k]) for k in ("size", "players", "foods"))
    if size < 3 or players < 1 or foods < 1:
        raise ValueError(f"env_id {env_id!r}: LBF needs a field of 3x3 or more, a player, a food")
    gym.register(
        id=env_id,
        entry_point="lbforaging.foraging:ForagingEnv",
        # The package's own settings for its ids (lbforaging/__init__.py, 2.0.0).
        kwargs={
            "players": players,
            "min_player_level": 1,
            "max_player_level": 2,
            "field_size": (size, size),
            "min_food_level": 1,
            "max_food_level": None,
            "max_num_food": foods,
            "sight": 2 if match["partial"] else size,
            "max_episode_steps": 50,
            "force_coop": bool(match["coop"]),
            "grid_observation": False,
            "penalty": 0.0,
        },
    )

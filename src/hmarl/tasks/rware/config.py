"""Which RWARE env the task runs: ``env_id``, any id rware registers, and the ones it
registers only on request.

rware 2.0.0 registers ``rware-{size}-{n}ag[-easy|-hard]-v2`` (sizes tiny, small,
medium, large; 1 to 19 agents; request queues of 2n, n and n/2) when imported. Its
``full_registration()`` would add millions of ids, among them other sensor ranges,
column heights and reward types; the task registers any such id on first use
instead, with exactly the settings the package gives it:

- ``rware[-{k}s]-{size}-{h}h-{n}ag[-easy|-hard]-v2``: sensor range k (1 without),
  columns h cells high;
- ``rware[-{k}s]-{rows}x{cols}-{h}h-{n}ag-{r}req-{indiv|global|twostage}-v2``: shelf
  rows and columns, r requests, the reward type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hmarl.tasks.chicken_yard.simulation import EnvConfig
from hmarl.tasks.packaged.package import is_registered
from hmarl.tasks.packaged.variants import Hierarchy, check_hierarchy

DEFAULT_ENV_ID = "rware-tiny-2ag-v2"

_SIZES = {"tiny": (1, 3), "small": (2, 3), "medium": (2, 5), "large": (3, 5)}
"""Shelf rows and columns of rware's named sizes."""
_DIFFICULTY = {"": 1, "-easy": 2, "-hard": 0.5}
"""Requests per agent of rware's difficulties."""
_REWARDS = {"indiv": "INDIVIDUAL", "global": "GLOBAL", "twostage": "TWO_STAGE"}
_SENSOR = r"(?:-(?P<sensor>\d+)s)?"
_NAMED = re.compile(
    rf"^rware{_SENSOR}-(?P<size>tiny|small|medium|large)-(?:(?P<height>\d+)h-)?"
    r"(?P<agents>\d+)ag(?P<difficulty>-easy|-hard)?-v2$"
)
_CUSTOM = re.compile(
    rf"^rware{_SENSOR}-(?P<rows>\d+)x(?P<cols>\d+)-(?P<height>\d+)h-(?P<agents>\d+)ag-"
    r"(?P<requests>\d+)req-(?P<reward>indiv|global|twostage)-v2$"
)


@dataclass(frozen=True)
class WarehouseConfig(EnvConfig):
    """The RWARE task's settings."""

    env_id: str = DEFAULT_ENV_ID
    """A registered RWARE env id (rware's own, or of its forms, e.g. rware-2s-tiny-8h-2ag-v2)."""
    hierarchy: Hierarchy = "flat"
    """"flat": every agent acts every step (the package's env as it is); "goals": a high
    level per agent chooses goals, a low level reaches them (see hmarl.tasks.packaged.variants)."""

    def __post_init__(self) -> None:
        register_variant(self.env_id)
        check_hierarchy(self.hierarchy)


def register_variant(env_id: str) -> None:
    """Make sure ``env_id`` is a registered RWARE env: register it if rware lacks it.

    Raises ``ValueError`` naming the id when it is neither registered nor of a form
    above.
    """
    import gymnasium as gym
    from rware.warehouse import RewardType  # importing rware registers its ids

    if is_registered(env_id, "rware.warehouse:Warehouse", "an RWARE env"):
        return
    named, custom = _NAMED.match(env_id), _CUSTOM.match(env_id)
    match = named or custom
    if match is None:
        raise ValueError(
            f"env_id {env_id!r} is not a registered RWARE env; ids look like "
            "rware-tiny-2ag-v2, rware-small-4ag-hard-v2 or rware-2s-tiny-8h-2ag-v2"
        )
    agents = int(match["agents"])
    if named:
        rows, cols = _SIZES[match["size"]]
        requests = int(agents * _DIFFICULTY[match["difficulty"] or ""])
        reward = RewardType.INDIVIDUAL
    else:
        rows, cols = int(match["rows"]), int(match["cols"])
        requests, reward = int(match["requests"]), RewardType[_REWARDS[match["reward"]]]
    height = int(match["height"] or 8)
    if agents < 1 or rows < 1 or cols % 2 == 0 or height < 1:
        raise ValueError(
            f"env_id {env_id!r}: RWARE needs an agent, a shelf row, an odd number of "
            "shelf columns and columns at least 1 high"
        )
    gym.register(
        id=env_id,
        entry_point="rware.warehouse:Warehouse",
        # The package's own settings for its ids (rware/__init__.py, 2.0.0).
        kwargs={
            "column_height": height,
            "shelf_rows": rows,
            "shelf_columns": cols,
            "n_agents": agents,
            "msg_bits": 0,
            "sensor_range": int(match["sensor"] or 1),
            "request_queue_size": requests,
            "max_inactivity_steps": None,
            "max_steps": 500,
            "reward_type": reward,
        },
    )

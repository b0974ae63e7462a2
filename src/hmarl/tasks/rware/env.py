"""RWARE as an RLlib multi-agent env: rware's own env, a thin adapter (spec sheet below)."""

from __future__ import annotations

from typing import Any

import numpy as np
from rware.warehouse import Warehouse

from hmarl.tasks.packaged.env import PackageEnv
from hmarl.tasks.packaged.package import make_package_env
from hmarl.tasks.rware.config import WarehouseConfig
from hmarl.tasks.rware.state import package_state, state_space

__all__ = ["WarehouseConfig", "WarehouseEnv"]


class WarehouseEnv(PackageEnv):
    """The multi-robot warehouse: robots fetch requested shelves to a goal (rware 2.0.0).

    The env is the package's own (``rware.warehouse.Warehouse``), made from its
    registered id (``WarehouseConfig.env_id``; ids of the package's forms that it
    registers only on request, such as ``rware-2s-tiny-8h-2ag-v2``, are registered by
    the task). A grid of shelf blocks (columns ``8`` cells high in the named sizes) with
    corridors between them and two goal cells in the middle of the bottom row. Some
    shelves are requested; a robot drives under one, lifts it, brings it to a goal,
    and should put it back on a free shelf place.

    **Agents.** ``agent_0`` .. ``agent_{n-1}``, the package's robots in order. All act
    every step, all for ``shared_policy``.

    **Action space.** ``Discrete(5)``: 0 no-op, 1 forward (one cell the way the robot
    faces), 2 turn left, 3 turn right, 4 toggle load: lift the shelf the robot stands
    under, or put down the one it carries (not on a corridor: there it does nothing).
    Without a load a robot drives under shelves; with one it cannot enter a cell with a
    standing shelf (it does not try). Forward into the grid's edge does nothing.

    **Observation space.** ``Box(float32)`` of length 8 + 7 (2r + 1)², r the sensor
    range (1; 2 with ``-2s``): the robot's x and y (absolute, y down), whether it
    carries a shelf, its heading one-hot (up, down, left, right), whether it stands on a
    corridor; then for each cell of the (2r + 1)² square around it, row by row: a robot
    there, that robot's heading one-hot (*up* when there is no robot: the package's
    encoding), a shelf there, that shelf requested. Cells off the grid read as empty.

    **Global state** (``state()``, in ``state_space``; for ``critic="central"``): every
    robot (x, y, heading one-hot, carrying) in robot order, then every shelf (x, y,
    requested, carried) in the package's shelf order (:mod:`hmarl.tasks.rware.state`).

    **Rewards** (``reward_type``; individual in every named id): when a requested shelf
    reaches a goal, +1 to the robot carrying it (individual), +1 to every robot
    (global), or +0.5 to that robot and +0.5 more when it puts that shelf down off the
    corridors (two-stage). The delivered shelf stays on the robot, no longer requested,
    and a shelf not requested is drawn at random (the package's generator) to take its
    place in the queue. The rewards summed over the episode and over the robots are the
    benchmark's score, which every agent's final info carries as ``episode_return``.

    **Starting state**, drawn from the package's generator (``reset(seed=...)``): a
    shelf on every cell off the corridors; robots on distinct random cells (under
    shelves too) with random headings; ``request_queue_size`` distinct random shelves
    requested (n for ``-{n}ag``, 2n with ``-easy``, n/2 with ``-hard``).

    **Episode end.** Never by the task's rules. *Truncated* after 500 steps (the
    package's ``max_steps``), or after ``max_inactivity_steps`` steps without a
    delivery (none in the registered ids). The package reports these limits as
    terminated (``done``); this env reports them as truncated, so values bootstrap past
    them. EPyMARL counts them as terminal: returns compare, value targets differ.

    **Moves, as the package resolves them** (with networkx; kept, not fixed): an edge
    from each robot's cell to the cell it asks for. Robots queued nose to tail all move
    if the head moves into a free cell; a robot that does not move (turning, loading,
    facing the edge, or blocked by a shelf) stops the queue behind it; robots driving
    round a cycle of three or more cells all move; two robots driving into each other's
    cells (a swap) both stay. Where two queues want the same free cell, the longer one
    moves; between queues of equal length, networkx's order decides: the queue whose
    head's cell entered its graph first (robot order, or an earlier robot driving into
    it), or, when the conflict involves less than half of the graph's cells, the
    iteration order of a Python set of cell tuples, that is of their hashes.

    **Quirks** (kept, not fixed):

    - Who wins a tie can depend on robots far away: two robots heading for one cell,
      and whether two unrelated robots move decides which of the two goes
      (``tests/test_rware_batched.py`` has the case).
    - Delivery is checked every step for every shelf on a goal: a robot waiting on a
      goal with a shelf that becomes requested again delivers it again without moving.
    - An empty sensor cell reports the heading *up*, the same as a robot facing up
      there but for the robot bit.

    **Arguments.** ``WarehouseEnv(config)`` with a :class:`WarehouseConfig`, a plain
    dict of its fields (RLlib's ``env_config``) or nothing (``rware-tiny-2ag-v2``); bad
    actions raise ``ValueError`` naming the agent, before the package sees them.

    **Rendering.** ``render_mode="rgb_array"``: frames drawn with pygame from the state
    (:mod:`hmarl.tasks.rware.render`), with no display (the package draws with pyglet).

    Example:

    >>> env = WarehouseEnv({"env_id": "rware-tiny-2ag-v2"})
    >>> obs, infos = env.reset(seed=0)
    >>> sorted(obs), obs["agent_0"].shape, env.action_spaces["agent_0"]
    (['agent_0', 'agent_1'], (71,), Discrete(5))
    >>> obs["agent_0"][:8]  # at x 2, y 9, no shelf, facing down, on a corridor
    array([2., 9., 0., 0., 1., 0., 0., 1.], dtype=float32)
    >>> obs, rewards, *_ = env.step({"agent_0": 1, "agent_1": 2})
    >>> obs["agent_0"][:2]  # one cell down
    array([ 2., 10.], dtype=float32)
    >>> obs["agent_1"][3:7], rewards  # facing down, it turned left: now it faces right
    (array([0., 0., 0., 1.], dtype=float32), {'agent_0': 0.0, 'agent_1': 0.0})
    """

    def __init__(
        self, config: WarehouseConfig | dict[str, Any] | None = None, render_mode: str | None = None
    ) -> None:
        self.config = WarehouseConfig.coerce(config)
        super().__init__(make_package_env(self.config.env_id, Warehouse), render_mode)
        self.state_space = state_space(self.package)
        """The global state's space (:mod:`hmarl.tasks.rware.state`)."""

    def state(self) -> np.ndarray:
        """Every robot, every shelf and the requests now (the global state)."""
        return package_state(self.package)

    def time_limit_reached(self) -> bool:
        # The package ends an episode only by its step limit or its inactivity limit.
        return True

    def make_renderer(self) -> Any:
        from hmarl.tasks.rware.render import WarehouseRenderer

        return WarehouseRenderer(self.package)

"""Many RWARE envs at once, as NumPy arrays: rware 2.0.0's step, re-implemented.

Step for step the same as ``rware.warehouse.Warehouse`` (flattened observations, no
message bits): from the same state the same actions give the same robots, shelves,
requests, observations, rewards and episode ends; ``tests/test_rware_batched.py``
holds them equal over more than 10,000 steps, crafted collisions and hundreds of
random crowds. Resets run the package's own ``reset``
(:mod:`hmarl.tasks.packaged.batched`); each env keeps a copy of the package's
generator, which draws the new request after a delivery.

**Who moves.** The package resolves moves as a graph (networkx): an edge from each
robot's cell to the cell it asks for (to itself if it stays). Each cell holds at
most one robot, so every weakly connected part is a tree leading into a free cell
or into one cycle. In a part with a cycle, only the cycle's robots move (none if it
is two robots swapping); a lone robot standing still is a cycle of one, so the
robots queued behind it stay. In a tree, the robots on one longest path into the
free cell move, the others stay. :func:`resolve_moves` does the same with arrays.
Where longest paths tie, networkx's choice is the predecessor it meets first: the
robot whose cell entered its graph first (robots add their cell, then the one they
ask for, in robot order) or, when the part holds less than half the graph's cells,
the first in the iteration order of a Python set of cell tuples (so, of their
hashes). The first is computed here; for the
second, rare, case the env is resolved by the package's own networkx calls
(:func:`resolve_with_networkx`), so the result is the package's in every case.

Shapes: B envs, N robots, S shelves, grid H x W; cells are (x, y), y down, as the
package has them.
"""

from __future__ import annotations

import copy

import networkx as nx
import numpy as np
from rware.warehouse import Action, Direction, RewardType, Warehouse

from hmarl.tasks.packaged.batched import PackageBatchedEnv
from hmarl.tasks.packaged.package import make_package_env
from hmarl.tasks.rware.config import WarehouseConfig
from hmarl.tasks.rware.state import CARRIED, CARRYING, REQUESTED, ROBOT, SHELF, X, Y, state_space

NOOP, FORWARD, LEFT, RIGHT, TOGGLE_LOAD = (a.value for a in Action)
# Direction values 0..3 = UP, DOWN, LEFT, RIGHT; a step forward and the turns.
STEP_X = np.array([0, 0, -1, 1])
STEP_Y = np.array([-1, 1, 0, 0])
_CLOCKWISE = [Direction.UP, Direction.RIGHT, Direction.DOWN, Direction.LEFT]
TURN_RIGHT = np.array([_CLOCKWISE[(_CLOCKWISE.index(d) + 1) % 4].value for d in Direction])
TURN_LEFT = np.array([_CLOCKWISE[(_CLOCKWISE.index(d) - 1) % 4].value for d in Direction])


class BatchedWarehouse(PackageBatchedEnv):
    """B RWARE envs of one registered id, stepped together."""

    def __init__(self, config: WarehouseConfig | None = None, num_envs: int = 1) -> None:
        config = config or WarehouseConfig()
        package = make_package_env(config.env_id, Warehouse)
        check_supported(package, config.env_id)
        super().__init__(package, num_envs)
        self.config = config
        b, n = num_envs, package.n_agents
        self.height, self.width = package.grid_size
        self.highways = package.highways.astype(bool)
        """(H, W) corridor cells: a shelf may be put down only off them."""
        self.goals = [(int(x), int(y)) for x, y in package.goals]
        """Goal cells (x, y), in the package's order (deliveries are handled in it)."""
        shelves = int((~self.highways).sum())
        self.x = np.zeros((b, n), dtype=np.int64)
        """(B, N) robot columns."""
        self.y = np.zeros((b, n), dtype=np.int64)
        """(B, N) robot rows."""
        self.dir = np.zeros((b, n), dtype=np.int64)
        """(B, N) robot headings, 0..3 = up, down, left, right."""
        self.carrying = np.full((b, n), -1, dtype=np.int64)
        """(B, N) the shelf each robot carries, -1 for none."""
        self.has_delivered = np.zeros((b, n), dtype=bool)
        """(B, N) delivered the shelf it carries (the two-stage reward's flag)."""
        self.shelf_x = np.zeros((b, shelves), dtype=np.int64)
        """(B, S) shelf columns (a carried shelf is where its robot is)."""
        self.shelf_y = np.zeros((b, shelves), dtype=np.int64)
        """(B, S) shelf rows."""
        self.requested = np.zeros((b, shelves), dtype=bool)
        """(B, S) shelves in the request queue."""
        self.inactive = np.zeros(b, dtype=np.int64)
        """(B,) steps since the last delivery."""
        self.robot_grid = np.zeros((b, self.height, self.width), dtype=np.int64)
        """(B, H, W) robot index + 1 in each cell, 0 for none (the package's agent layer)."""
        self.shelf_grid = np.zeros((b, self.height, self.width), dtype=np.int64)
        """(B, H, W) shelf index + 1 in each cell, 0 for none (its shelf layer)."""
        self.generators: list[np.random.Generator | None] = [None] * b
        """Each env's generator: a copy of the package env's after its reset."""
        self.fallbacks = 0
        """Steps of one env resolved by networkx (ties in set order), for the curious."""
        # What a sensor reads from a cell, by the cell's code (see `observe`), and the
        # sensed square as offsets in a grid padded by the sensor range.
        self._range = r = int(package.sensor_range)
        self._padded = (b, self.height + 2 * r, self.width + 2 * r)
        side = np.arange(2 * r + 1)
        self._square = (side[:, None] * self._padded[2] + side).reshape(-1)
        self._sensor_table = sensor_table()
        self._headings = np.eye(len(Direction), dtype=np.float32)
        self._rows = np.arange(b)[:, None]
        self.state_space = state_space(package)
        """The global state's space (:mod:`hmarl.tasks.rware.state`)."""

    # -- resets -------------------------------------------------------------------------

    def load(self, row: int, seed: int) -> None:
        """``Warehouse.reset(seed=seed)`` on the helper, copied into ``row``."""
        self.package.reset(seed=seed)
        self.load_state(row, self.package)

    def load_state(self, row: int, env: Warehouse) -> None:
        """Copy a package env's state into ``row``: robots, shelves, requests, clocks, and
        a copy of its generator (which draws the requests after deliveries)."""
        agents = env.agents
        self.x[row] = [a.x for a in agents]
        self.y[row] = [a.y for a in agents]
        self.dir[row] = [a.dir.value for a in agents]
        self.carrying[row] = [
            -1 if a.carrying_shelf is None else a.carrying_shelf.id - 1 for a in agents
        ]
        self.has_delivered[row] = [a.has_delivered for a in agents]
        self.shelf_x[row] = [s.x for s in env.shelfs]
        self.shelf_y[row] = [s.y for s in env.shelfs]
        self.requested[row] = False
        self.requested[row, [s.id - 1 for s in env.request_queue]] = True
        self.inactive[row] = env._cur_inactive_steps
        self.steps[row] = env._cur_steps
        self.generators[row] = copy.deepcopy(env.np_random)
        self._draw_grids(np.array([row]))

    def _draw_grids(self, rows: np.ndarray) -> None:
        """The package's ``_recalc_grid`` for ``rows``: who stands, which shelf lies where."""
        self.robot_grid[rows] = 0
        self.shelf_grid[rows] = 0
        n, s = self.x.shape[1], self.shelf_x.shape[1]
        r = rows[:, None]
        self.shelf_grid[r, self.shelf_y[rows], self.shelf_x[rows]] = np.arange(1, s + 1)
        self.robot_grid[r, self.y[rows], self.x[rows]] = np.arange(1, n + 1)

    # -- the step ---------------------------------------------------------------------

    def advance(
        self, actions: np.ndarray, live: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = self._rows
        x, y = self.x, self.y
        actions = np.where(live[:, None], actions, NOOP)
        forward = actions == FORWARD
        tx = np.where(forward, np.clip(x + STEP_X[self.dir], 0, self.width - 1), x)
        ty = np.where(forward, np.clip(y + STEP_Y[self.dir], 0, self.height - 1), y)
        # A robot carrying a shelf cannot drive into a standing shelf: it does not try
        # (unless a robot carrying a shelf stands there, which may drive off).
        carrying = self.carrying >= 0
        ahead = self.robot_grid[rows, ty, tx]
        ahead_carries = (ahead > 0) & np.take_along_axis(carrying, np.maximum(ahead - 1, 0), 1)
        blocked = carrying & ((tx != x) | (ty != y)) & (self.shelf_grid[rows, ty, tx] > 0)
        blocked &= ~ahead_carries
        actions = np.where(blocked, NOOP, actions)
        tx, ty = np.where(blocked, x, tx), np.where(blocked, y, ty)

        moves = resolve_moves(y * self.width + x, ty * self.width + tx)
        for b in np.flatnonzero(moves.fallback):
            starts = list(zip(x[b].tolist(), y[b].tolist(), strict=True))
            targets = list(zip(tx[b].tolist(), ty[b].tolist(), strict=True))
            moves.committed[b] = resolve_with_networkx(starts, targets)
            self.fallbacks += 1
        go = forward & moves.committed
        self.x, self.y = np.where(go, tx, x), np.where(go, ty, y)
        self.dir = np.where(
            actions == LEFT,
            TURN_LEFT[self.dir],
            np.where(actions == RIGHT, TURN_RIGHT[self.dir], self.dir),
        )
        rewards = np.zeros(self.carrying.shape)
        toggle = actions == TOGGLE_LOAD
        # Pick up the shelf under the robot (the grid before this step's moves).
        under = self.shelf_grid[rows, y, x] - 1
        pick = toggle & ~carrying & (under >= 0)
        put = toggle & carrying & ~self.highways[y, x]
        if self.package.reward_type == RewardType.TWO_STAGE:
            rewards += 0.5 * (put & self.has_delivered)
        self.has_delivered &= ~put
        self.carrying = np.where(pick, under, np.where(put, -1, self.carrying))
        carried = self.carrying >= 0
        b, i = np.nonzero(carried)
        shelf = self.carrying[b, i]
        self.shelf_x[b, shelf], self.shelf_y[b, shelf] = self.x[b, i], self.y[b, i]
        self._draw_grids(np.arange(self.num_envs))

        delivered = np.zeros(self.num_envs, dtype=bool)
        for gx, gy in self.goals:
            at_goal = self.shelf_grid[:, gy, gx] - 1
            arrived = live & (at_goal >= 0)
            arrived[arrived] = self.requested[arrived, at_goal[arrived]]
            for b in np.flatnonzero(arrived):
                self._deliver(b, at_goal[b], self.robot_grid[b, gy, gx] - 1, rewards)
            delivered |= arrived
        self.inactive = np.where(live, np.where(delivered, 0, self.inactive + 1), self.inactive)

        limits = np.zeros(self.num_envs, dtype=bool)
        if self.package.max_inactivity_steps:
            limits |= self.inactive >= self.package.max_inactivity_steps
        if self.package.max_steps:
            limits |= self.steps + 1 >= self.package.max_steps
        return rewards, np.zeros(self.num_envs, dtype=bool), limits

    def _deliver(self, b: int, shelf: int, robot: int, rewards: np.ndarray) -> None:
        """A requested shelf reached a goal: a new request replaces it, and the reward.

        The new request is drawn as the package draws it, ``np_random.choice`` over the
        shelves not requested (in shelf order), from the env's own generator (a choice
        over a list of k draws exactly as ``choice(k)`` does). ``robot`` is the one at
        the goal (the package's index ``agent_id - 1``).
        """
        candidates = np.flatnonzero(~self.requested[b])
        new = candidates[self.generators[b].choice(len(candidates))]
        self.requested[b, shelf] = False
        self.requested[b, new] = True
        kind = self.package.reward_type
        if kind == RewardType.GLOBAL:
            rewards[b] += 1
        elif kind == RewardType.INDIVIDUAL:
            rewards[b, robot] += 1
        elif kind == RewardType.TWO_STAGE:
            self.has_delivered[b, robot] = True
            rewards[b, robot] += 0.5

    # -- observations -----------------------------------------------------------------

    def observe(self) -> np.ndarray:
        """What ``Warehouse._make_obs`` gives every robot (flattened), (B, N, 8 + 7K²).

        Self: x, y, carrying, heading one-hot (up, down, left, right), on a corridor.
        Then for each cell of the (2r+1)² square around it, row by row: a robot there,
        its heading one-hot (*up* when there is no robot: the package's encoding), a
        shelf there, that shelf requested. Cells off the grid read as empty.
        """
        (b, n), r, plane = self.x.shape, self._range, self._padded[1] * self._padded[2]
        # Each cell's code: 3 (heading + 1) with a robot, plus 1 with a shelf, plus 1
        # more if it is requested; cells off the grid (the padding) code 0, empty.
        codes = np.zeros(self._padded, dtype=np.int64)
        codes[self._rows, self.y + r, self.x + r] = 3 * (self.dir + 1)
        codes[self._rows, self.shelf_y + r, self.shelf_x + r] += 1 + self.requested
        # Padded by r, the square around (x, y) starts at (x, y).
        corner = self._rows * plane + self.y * self._padded[2] + self.x
        sensed = codes.reshape(-1)[corner[..., None] + self._square]
        sensors = self._sensor_table[sensed]  # (B, N, (2r + 1)², 7)

        own = np.empty((b, n, 8), dtype=np.float32)
        if self.package.normalised_coordinates:
            own[..., 0] = self.x / (self.width - 1)
            own[..., 1] = self.y / (self.height - 1)
        else:
            own[..., 0], own[..., 1] = self.x, self.y
        own[..., 2] = self.carrying >= 0
        own[..., 3:7] = self._headings[self.dir]
        own[..., 7] = self.highways[self.y, self.x]
        return np.concatenate([own, sensors.reshape(b, n, -1)], axis=-1)

    # -- the global state ---------------------------------------------------------------

    def states(self) -> np.ndarray:
        """(B, 7N + 4S) every env's global state (:mod:`hmarl.tasks.rware.state`)."""
        (b, n), s = self.x.shape, self.shelf_x.shape[1]
        robots = np.zeros((b, n, ROBOT), dtype=np.float32)
        robots[..., X], robots[..., Y] = self.x, self.y
        robots[..., 2:6] = self._headings[self.dir]
        robots[..., CARRYING] = self.carrying >= 0
        shelves = np.zeros((b, s, SHELF), dtype=np.float32)
        shelves[..., 0], shelves[..., 1] = self.shelf_x, self.shelf_y
        shelves[..., REQUESTED] = self.requested
        envs, robot = np.nonzero(self.carrying >= 0)
        shelves[envs, self.carrying[envs, robot], CARRIED] = 1.0
        return np.concatenate([robots.reshape(b, -1), shelves.reshape(b, -1)], axis=-1)


def sensor_table() -> np.ndarray:
    """(15, 7) what a robot senses in a cell, by the cell's code 3 (heading + 1) + shelf
    (heading + 1: 0 without a robot; shelf: 0 none, 1 standing, 2 requested): a robot
    there, its heading one-hot (*up* without a robot, as the package writes it), a
    shelf there, that shelf requested."""
    table = np.zeros((15, 7), dtype=np.float32)
    for code in range(15):
        heading, shelf = divmod(code, 3)
        table[code, 0] = heading > 0
        table[code, 1 + max(heading - 1, 0)] = 1.0
        table[code, 5] = shelf > 0
        table[code, 6] = shelf == 2
    return table


class Moves:
    """Which robots' moves go through (:func:`resolve_moves`); arrays are (B, N)."""

    def __init__(self, committed: np.ndarray, fallback: np.ndarray) -> None:
        self.committed = committed
        """Robots whose request stands (every robot that does not drive forward)."""
        self.fallback = fallback
        """(B,) envs with a tie networkx breaks by set order: resolve them with networkx."""


def resolve_moves(starts: np.ndarray, targets: np.ndarray) -> Moves:
    """The package's move resolution over cell numbers (B, N), see the module docstring.

    Only envs where a robot drives into another's cell or two want the same cell need
    the graph; in the others every request stands.
    """
    b, n = starts.shape
    moving = targets != starts
    others = ~np.eye(n, dtype=bool)
    meets = (targets[:, :, None] == starts[:, None, :]) | (
        targets[:, :, None] == targets[:, None, :]
    )
    contested = (meets & others & moving[:, :, None]).any((1, 2))
    committed = np.ones((b, n), dtype=bool)
    fallback = np.zeros(b, dtype=bool)
    if contested.any():
        rows = np.flatnonzero(contested)
        moves = resolve_contested(starts[rows], targets[rows])
        committed[rows], fallback[rows] = moves.committed, moves.fallback
    return Moves(committed, fallback)


def resolve_contested(starts: np.ndarray, targets: np.ndarray) -> Moves:
    """:func:`resolve_moves` for envs with contested cells: the graph, as arrays."""
    b, n = starts.shape
    me = np.arange(n)
    rows = np.arange(b)[:, None]
    # next[i]: the robot standing where robot i wants to go (itself if it stays), or -1.
    ahead = targets[:, :, None] == starts[:, None, :]
    after = np.where(ahead.any(-1), ahead.argmax(-1), -1)

    # Follow the chains: a robot is on a cycle of length k when k steps bring it back;
    # a chain that runs off into a free cell (-1) is part of a tree.
    cycle = np.zeros((b, n), dtype=np.int64)
    at = after
    for k in range(1, n + 1):
        cycle = np.where((cycle == 0) & (at == me), k, cycle)
        at = np.where(at >= 0, after[rows, np.maximum(at, 0)], -1)
    in_tree = at == -1
    committed = (cycle == 1) | (cycle >= 3)

    # Trees: the depth of each robot (the longest queue behind it), then from the free
    # cell backwards the deepest predecessor at every node. Rivals want the same cell.
    queued = (after[:, None, :] == me[None, :, None]) & (me[:, None] != me[None, :])
    depth = np.zeros((b, n), dtype=np.int64)
    for _ in range(n):
        depth = np.where(queued, depth[:, None, :] + 1, 0).max(-1)
    rivals = (
        in_tree[:, :, None] & in_tree[:, None, :] & (targets[:, :, None] == targets[:, None, :])
    )
    rivals &= me[:, None] != me[None, :]
    # networkx meets predecessors in the order their cells entered the graph: robot
    # j's cell first appears as its own start (2j) or as an earlier robot's target.
    earlier = (targets[:, None, :] == starts[:, :, None]) & (me[None, :] < me[:, None])
    order = np.where(earlier.any(-1), 2 * earlier.argmax(-1) + 1, 2 * me)
    deeper = depth[:, :, None] > depth[:, None, :]
    level = depth[:, :, None] == depth[:, None, :]
    first = order[:, :, None] < order[:, None, :]
    chosen = in_tree & ~(rivals & ~(deeper | (level & first))).any(-1)
    on_path = chosen & (after == -1)
    for _ in range(n):
        on_path = chosen & ((after == -1) | on_path[rows, np.maximum(after, 0)])
    committed |= on_path

    # A tie on the moving path matters; it is broken by the robots' order unless the
    # tree holds less than half the graph's cells (then by a set's order: fallback).
    tied = chosen & (rivals & level).any(-1) & ((after == -1) | on_path[rows, np.maximum(after, 0)])
    end = np.broadcast_to(me, (b, n))  # the last robot of each chain, before its free cell
    for _ in range(n):
        end = np.where(in_tree & (after[rows, end] >= 0), after[rows, end], end)
    free_cell = np.where(in_tree, targets[rows, end], -1)
    # The graph's cells: the robots' own and the free cells they want (counted once).
    into_free = after == -1
    repeated = (targets[:, :, None] == targets[:, None, :]) & (me[None, :] < me[:, None])
    cells = n + (into_free & ~(repeated & into_free[:, None, :]).any(-1)).sum(-1)
    tree_size = (free_cell[:, :, None] == free_cell[:, None, :]).sum(-1) + 1
    fallback = (tied & (2 * tree_size < cells[:, None])).any(-1)
    return Moves(committed, fallback)


def resolve_with_networkx(
    starts: list[tuple[int, int]], targets: list[tuple[int, int]]
) -> np.ndarray:
    """The robots whose moves go through, by the package's own code (``Warehouse.step``,
    rware 2.0.0): the same graph, built in the same order, the same networkx calls."""
    graph = nx.DiGraph()
    for start, target in zip(starts, targets, strict=True):
        graph.add_edge(start, target)
    robot_at = {start: i for i, start in enumerate(starts)}
    committed = np.zeros(len(starts), dtype=bool)
    for part in [graph.subgraph(c).copy() for c in nx.weakly_connected_components(graph)]:
        try:
            cycle = nx.algorithms.find_cycle(part)
            if len(cycle) == 2:
                continue
            nodes = [edge[0] for edge in cycle]
        except nx.NetworkXNoCycle:
            nodes = nx.algorithms.dag_longest_path(part)
        for node in nodes:
            if node in robot_at:
                committed[robot_at[node]] = True
    return committed


def check_supported(env: Warehouse, env_id: str) -> None:
    """Refuse the package's settings the batched env does not re-implement."""
    if not env.fast_obs:
        raise ValueError(f"env_id {env_id!r}: only flattened observations are supported")
    if env.msg_bits:
        raise ValueError(f"env_id {env_id!r}: message bits are not supported")

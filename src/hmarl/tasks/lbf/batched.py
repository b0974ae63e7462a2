"""Many LBF envs at once, as NumPy arrays: lbforaging 2.0.0's step, re-implemented.

Step for step the same as ``lbforaging.foraging.ForagingEnv`` (vector observations):
from the same state the same actions give the same positions, food, observations,
rewards and episode ends; ``tests/test_lbf_batched.py`` holds them equal over more
than 10,000 steps across variants. Resets run the package's own spawning
code (:mod:`hmarl.tasks.packaged.batched`). The package's quirks are kept, not fixed;
:class:`hmarl.tasks.lbf.env.LBFEnv` lists them.

Shapes: B envs, N players, F food slots (the env's ``max_num_food``). Positions are
(row, col), row 0 at the top, as the package has them.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from lbforaging.foraging.environment import ForagingEnv

from hmarl.tasks.lbf.config import LBFConfig
from hmarl.tasks.lbf.state import state_space
from hmarl.tasks.packaged.batched import PackageBatchedEnv
from hmarl.tasks.packaged.package import make_package_env

# Actions 0..5 = NONE, NORTH, SOUTH, WEST, EAST, LOAD (lbforaging's Action), as moves.
MOVES = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1], [0, 0]])
LOAD = 5


class BatchedForaging(PackageBatchedEnv):
    """B LBF envs of one registered id, stepped together."""

    def __init__(self, config: LBFConfig | None = None, num_envs: int = 1) -> None:
        config = config or LBFConfig()
        package = make_package_env(config.env_id, ForagingEnv)
        check_supported(package, config.env_id)
        super().__init__(package, num_envs)
        self.config = config
        b, n, f = num_envs, len(package.players), package.max_num_food
        self.shape = np.array(package.field_size)
        self.sight = int(package.sight)
        self.max_steps = int(package._max_episode_steps)
        self.penalty = float(package.penalty)
        self.normalize = bool(package._normalize_reward)
        self.positions = np.zeros((b, n, 2), dtype=np.int64)
        """(B, N, 2) player row, col (two players may share a cell: see the quirks)."""
        self.levels = np.zeros((b, n), dtype=np.int64)
        """(B, N) player levels."""
        self.food_positions = np.zeros((b, f, 2), dtype=np.int64)
        """(B, F) food row, col."""
        self.food_levels = np.zeros((b, f), dtype=np.int64)
        """(B, F) food levels; 0 once loaded (or for a slot the spawn left empty)."""
        self.food_spawned = np.ones(b, dtype=np.int64)
        """(B,) the levels of all food spawned this episode (the rewards' denominator)."""
        self._started = np.zeros(b, dtype=bool)
        # Observers see themselves first, then the others in index order.
        self._self_first = np.array([[i, *(j for j in range(n) if j != i)] for i in range(n)])
        self._level_width = 3 if package._observe_agent_levels else 2
        self._whole_field = self.sight >= max(package.field_size) - 1
        self._rows = np.arange(b)[:, None]
        self.state_space = state_space(package)
        """The global state's space (:mod:`hmarl.tasks.lbf.state`)."""

    # -- resets -------------------------------------------------------------------------

    def load(self, row: int, seed: int) -> None:
        """``ForagingEnv.reset(seed=seed)``'s spawning, on the helper, copied into ``row``.

        The same calls in the same order as the package's ``reset`` (2.0.0), minus its
        observations (the batched env computes its own). The players stand where this
        row's last episode left them: the package's spawning avoids those stale cells.
        """
        env = self.package
        for i, player in enumerate(env.players):
            player.position = tuple(self.positions[row, i]) if self._started[row] else None
        gym.Env.reset(env, seed=seed)
        env.field = np.zeros(env.field_size, np.int32)
        env.spawn_players(env.min_player_level, env.max_player_level)
        player_levels = sorted(player.level for player in env.players)
        env.spawn_food(
            env.max_num_food,
            min_levels=env.min_food_level,
            max_levels=env.max_food_level
            if env.max_food_level is not None
            else np.array([sum(player_levels[:3])] * env.max_num_food),
        )
        env.current_step = 0
        self.load_state(row, env)

    def load_state(self, row: int, env: ForagingEnv) -> None:
        """Copy the state of a package env into ``row``: players, food, its clock."""
        self.positions[row] = [player.position for player in env.players]
        self.levels[row] = [player.level for player in env.players]
        rows, cols = np.nonzero(env.field)
        count = len(rows)
        self.food_positions[row] = 0
        self.food_levels[row] = 0
        self.food_positions[row, :count] = np.stack([rows, cols], axis=1)
        self.food_levels[row, :count] = env.field[rows, cols]
        self.food_spawned[row] = env._food_spawned
        self.steps[row] = env.current_step
        self._started[row] = True

    # -- the step ---------------------------------------------------------------------

    def advance(
        self, actions: np.ndarray, live: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos, alive = self.positions, self.food_levels > 0
        # Where each food stands, as a cell number; -1 once it is gone.
        width = self.shape[1]
        food_cells = np.where(
            alive, self.food_positions[..., 0] * width + self.food_positions[..., 1], -1
        )
        gap = np.abs(pos[:, :, None] - self.food_positions[:, None]).sum(-1)
        adjacent = (gap == 1) & alive[:, None]  # (B, N, F)

        # Invalid actions become NONE: a move off the field or onto food, a load with
        # no food beside the player. Other players do not make a move invalid.
        target = pos + MOVES[actions]
        inside = ((target >= 0) & (target < self.shape)).all(-1)
        onto_food = (
            (target[..., 0] * width + target[..., 1])[..., None] == food_cells[:, None]
        ).any(-1)
        moving = (actions >= 1) & (actions <= 4)
        valid = np.where(
            moving, inside & ~onto_food, np.where(actions == LOAD, adjacent.any(-1), True)
        )
        actions = np.where(valid & live[:, None], actions, 0)

        # Every player claims a cell (its own, unless it moves); a cell claimed by two or
        # more players is entered by none of them, and the others move.
        claim = pos + MOVES[actions]
        cells = claim[..., 0] * width + claim[..., 1]
        contested = (cells[:, :, None] == cells[:, None, :]).sum(-1) > 1
        self.positions = np.where(contested[..., None], pos, claim)

        # Loading players stand still. Each stands beside exactly one food (the spawn
        # keeps foods two cells apart); a food is loaded when the levels of the loading
        # players beside it add up to its level.
        loading = actions == LOAD
        loaders = adjacent & loading[..., None]
        level_sum = (loaders * self.levels[..., None]).sum(1)  # (B, F)
        loaded = loaders.any(1) & (level_sum >= self.food_levels)
        food = loaders.argmax(-1)  # (B, N) the food each loader stands beside
        food_level = np.take_along_axis(self.food_levels, food, 1)
        if self.normalize:
            denominator = np.take_along_axis(level_sum, food, 1) * self.food_spawned[:, None]
            share = (self.levels * food_level) / np.maximum(denominator, 1)
        else:
            share = (self.levels * food_level).astype(np.float64)
        success = np.take_along_axis(loaded, food, 1)
        rewards = np.where(loading, np.where(success, share, 0.0 - self.penalty), 0.0)
        self.food_levels = np.where(loaded, 0, self.food_levels)

        ended = (self.food_levels == 0).all(1)
        time_limit = self.steps + 1 >= self.max_steps
        return rewards, ended, time_limit

    # -- observations -----------------------------------------------------------------

    def observe(self) -> np.ndarray:
        """What ``ForagingEnv._make_gym_obs`` gives every player, (B, N, 3F + 3N) float32.

        Food slots (row, col, level), then player slots (row, col, level), self first;
        positions relative to the corner of the player's view, which is clipped at the
        field's edge (with the whole field in sight, absolute positions). Unused slots
        are (-1, -1, 0).
        """
        if self._whole_field:
            return self._observe_whole_field()
        b, n, f = self.food_levels.shape[0], self.levels.shape[1], self.food_levels.shape[1]
        pos, sight = self.positions, self.sight
        corner = np.maximum(pos - sight, 0)[:, :, None]  # (B, N, 1, 2)
        far = np.minimum(pos + sight + 1, self.shape)[:, :, None]

        # Food in the view, in row-major order (np.nonzero's order over the view).
        spot = self.food_positions[:, None]  # (B, 1, F, 2)
        seen = ((spot >= corner) & (spot < far)).all(-1) & (self.food_levels > 0)[:, None]
        cell = spot[..., 0] * self.shape[1] + spot[..., 1]
        order = np.argsort(np.where(seen, cell, self.shape.prod()), axis=-1, kind="stable")
        seen = np.take_along_axis(seen, order, -1)
        where = np.take_along_axis(spot - corner, order[..., None], 2)
        level = np.take_along_axis(np.broadcast_to(self.food_levels[:, None], (b, n, f)), order, -1)
        foods = np.empty((b, n, f, 3), dtype=np.float32)
        foods[..., :2] = np.where(seen[..., None], where, -1)
        foods[..., 2] = np.where(seen, level, 0)

        # Players, self first: seen when their offset from the view's corner lies in
        # [0, 2 * sight] on both axes, which reaches past a view clipped at the edge.
        others = pos[:, self._self_first]  # (B, N, N, 2)
        offset = others - corner
        visible = (offset.min(-1) >= 0) & (offset.max(-1) <= 2 * sight)
        order = np.argsort(~visible, axis=-1, kind="stable")
        visible = np.take_along_axis(visible, order, -1)
        offset = np.take_along_axis(offset, order[..., None], 2)
        level = np.take_along_axis(self.levels[:, self._self_first], order, -1)
        players = np.empty((b, n, n, self._level_width), dtype=np.float32)
        players[..., :2] = np.where(visible[..., None], offset, -1)
        if self._level_width == 3:
            players[..., 2] = np.where(visible, level, 0)
        return np.concatenate([foods.reshape(b, n, -1), players.reshape(b, n, -1)], axis=-1)

    def _food_slots(self) -> np.ndarray:
        """(B, F, 3) the food on the field (row, col, level) in row-major order of its cell,
        then unused slots (-1, -1, 0): what a player that sees the whole field lists."""
        f = self.food_levels.shape[1]
        alive = self.food_levels > 0
        foods = np.empty((self.num_envs, f, 3), dtype=np.float32)
        foods[..., :2] = np.where(alive[..., None], self.food_positions, -1)
        foods[..., 2] = self.food_levels
        if f > 1:
            cells = self.food_positions[..., 0] * self.shape[1] + self.food_positions[..., 1]
            order = np.argsort(np.where(alive, cells, self.shape.prod()), axis=1, kind="stable")
            foods = foods[self._rows, order]
        return foods

    def _observe_whole_field(self) -> np.ndarray:
        """:meth:`observe` when every view is the whole field: absolute positions, every
        food and player seen, the same food slots for every player."""
        (b, n), f = self.levels.shape, self.food_levels.shape[1]
        foods = self._food_slots()
        players = np.empty((b, n, self._level_width), dtype=np.float32)
        players[..., :2] = self.positions
        if self._level_width == 3:
            players[..., 2] = self.levels
        out = np.empty((b, n, 3 * f + n * self._level_width), dtype=np.float32)
        out[..., : 3 * f] = foods.reshape(b, 1, 3 * f)
        out[..., 3 * f :] = players[:, self._self_first].reshape(b, n, -1)
        return out

    # -- the global state ---------------------------------------------------------------

    def states(self) -> np.ndarray:
        """(B, 3F + 3N) every env's global state (:mod:`hmarl.tasks.lbf.state`)."""
        players = np.concatenate([self.positions, self.levels[..., None]], axis=-1)
        parts = [self._food_slots().reshape(self.num_envs, -1), players.reshape(self.num_envs, -1)]
        return np.concatenate(parts, axis=-1, dtype=np.float32)


def check_supported(env: ForagingEnv, env_id: str) -> None:
    """Refuse the package's settings the batched env does not re-implement."""
    if env._grid_observation:
        raise ValueError(f"env_id {env_id!r}: grid observations are not supported, only vectors")

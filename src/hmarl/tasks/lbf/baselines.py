"""A hand-written LBF policy: go together to the food the team can load, and load it.

:class:`TogetherPolicy`, the ``together`` baseline. Every agent, from what it sees:

1. takes as the team's food the one nearest the centre of the players it sees
   (rounded to a cell, as lbforaging's own heuristic H4 does) among the foods whose
   level the levels of all those players reach together: with the whole field in
   sight every agent picks the same food;
2. claims a free side of that food (the cells beside it that are on the field and
   not food): the players claim sides in the order of their cells, each the nearest
   side left, so agents that see the same players agree on who stands where;
3. on its side, loads; otherwise steps closer to it, at random among the steps that
   get closer (preferring cells no other player stands on), or at random to a free
   cell when none does.

With probability ``explore`` (0.1) it takes a random step instead, and with 0.5
when another player shares its cell (two players can end up on one cell in LBF; they
would then mirror each other for ever). Without the random steps, two agents that
want the same cell on their way keep colliding until the time limit, and the policy
scores about 0.82 on Foraging-10x10-3p-3f-v3 instead of 0.98 (1000 held-out seeds).

In the goals variant (``hierarchy = "goals"``, :mod:`hmarl.tasks.lbf.goals`) the high
level takes step 1 (the team's food as its goal, or to wait when the team can load
none) and the low level steps 2 and 3 toward the food of its goal (a random step to
wait): the same policy, split at the goal.

It reads the observation alone, and the field size from the env id (to keep its
random steps on the field; with partial sight, positions are relative to the view
and a random step may run into the field's edge, which the env makes a no-op).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from hmarl.goals import HIGH, LOW
from hmarl.task import PolicyContext
from hmarl.tasks.lbf.goals import WAIT

# lbforaging's actions: NONE, NORTH, SOUTH, WEST, EAST, LOAD, as (row, col) steps.
NONE, NORTH, SOUTH, WEST, EAST, LOAD = range(6)
MOVES = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1], [0, 0]])
SIDES = MOVES[NORTH : EAST + 1]


class TogetherPolicy:
    """The ``together`` baseline on batches of LBF observations (module docstring)."""

    def __init__(self, context: PolicyContext, explore: float = 0.1) -> None:
        kwargs = gym.spec(context.env_config.env_id).kwargs
        self.foods = int(kwargs["max_num_food"])
        self.players = int(kwargs["players"])
        self.rows, self.cols = kwargs["field_size"]
        # With the whole field in sight, positions are absolute and every edge known.
        self.whole_field = kwargs["sight"] >= max(self.rows, self.cols) - 1
        self.explore = explore
        self.rng = np.random.default_rng(context.seed)

    def act(self, policy_id: str, obs: Any) -> np.ndarray:
        if policy_id.endswith(HIGH):  # the goals variant's high level: the team's food
            flat = np.asarray(obs["observation"]["observation"])
            slot, going = self._team_food(flat)
            return np.where(going, slot, self.foods)  # the last goal is to wait
        if policy_id.endswith(LOW):  # its low level: the food of its goal (wander to wait)
            flat, goal = np.asarray(obs["observation"]), np.asarray(obs["goal"])
            return self._approach(flat, goal[:, :2], goal[:, WAIT] == 0)
        obs = np.asarray(obs)
        slot, going = self._team_food(obs)
        foods = obs[:, : 3 * self.foods].reshape(len(obs), self.foods, 3)
        return self._approach(obs, foods[np.arange(len(obs)), slot, :2], going)

    def _team_food(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Step 1: (n,) the food slot of the team's food, and (n,) whether there is one."""
        n = len(obs)
        foods = obs[:, : 3 * self.foods].reshape(n, self.foods, 3)
        players = obs[:, 3 * self.foods :].reshape(n, self.players, -1)
        seen = players[..., 0] >= 0
        where = players[..., :2]
        present = foods[..., 2] > 0
        centre = np.rint((where * seen[..., None]).sum(1) / seen.sum(1)[:, None])
        # Without the players' levels in sight (an env setting), every food will do.
        levels = players[..., 2] if players.shape[-1] == 3 else np.full(seen.shape, np.inf)
        team = (levels * seen).sum(1)[:, None]
        loadable = present & (foods[..., 2] <= team)
        distance = ((foods[..., :2] - centre[:, None]) ** 2).sum(-1)
        return np.argmin(np.where(loadable, distance, np.inf), 1), loadable.any(1)

    def _approach(self, obs: np.ndarray, food: np.ndarray, going: np.ndarray) -> np.ndarray:
        """Steps 2 and 3: to a side of ``food`` (n, 2) and load, for the rows ``going``;
        the others take a random step."""
        n = len(obs)
        rows = np.arange(n)
        foods = obs[:, : 3 * self.foods].reshape(n, self.foods, 3)
        players = obs[:, 3 * self.foods :].reshape(n, self.players, -1)
        seen = players[..., 0] >= 0
        where = players[..., :2]
        me = where[:, 0]
        present = foods[..., 2] > 0

        # 2. The sides of it, claimed in the order of the players' cells.
        sides = food[:, None] + SIDES  # (R, 4, 2)
        free = self._on_field(sides) & ~self._is_food(sides, foods, present)
        cell = np.where(seen, where[..., 0] * self.cols + where[..., 1], np.inf)
        mine = np.full(n, -1)
        for player in np.argsort(cell, axis=1, kind="stable").T:
            gap = np.abs(sides - where[rows, player][:, None]).sum(-1)
            gap = np.where(free, gap, np.inf)
            side = np.argmin(gap, 1)
            got = seen[rows, player] & np.isfinite(gap.min(1))
            free[rows[got], side[got]] = False
            mine = np.where(got & (player == 0), side, mine)
        goal = np.where((mine >= 0)[:, None], sides[rows, np.maximum(mine, 0)], food)

        # 3. Load, or step closer.
        steps = me[:, None] + MOVES  # (R, 6, 2)
        taken = ((steps[:, :, None] == where[:, None, 1:]).all(-1) & seen[:, None, 1:]).any(-1)
        can = self._on_field(steps) & ~self._is_food(steps, foods, present)
        can[:, [NONE, LOAD]] = False
        closer = np.abs(steps - goal[:, None]).sum(-1) < np.abs(me - goal).sum(-1)[:, None]
        wander = can & ~taken
        best = wander & closer
        wander[:, NONE] = True
        best = np.where(best.any(1)[:, None], best, wander)
        actions = self._pick(best)
        shared = ((where[:, 1:] == me[:, None]).all(-1) & seen[:, 1:]).any(1)
        chance = np.where(shared, 0.5, self.explore)
        actions = np.where(self.rng.random(n) < chance, self._pick(wander), actions)
        beside = np.abs(food - me).sum(1) == 1
        arrived = beside & ((mine < 0) | (me == goal).all(1)) & ~shared
        actions = np.where(arrived, LOAD, actions)
        return np.where(going, actions, self._pick(wander))

    def _on_field(self, cells: np.ndarray) -> np.ndarray:
        inside = (cells >= 0).all(-1)
        if self.whole_field:
            inside &= (cells[..., 0] < self.rows) & (cells[..., 1] < self.cols)
        return inside

    @staticmethod
    def _is_food(cells: np.ndarray, foods: np.ndarray, present: np.ndarray) -> np.ndarray:
        """(R, K) which of the (R, K, 2) cells hold food."""
        same = (cells[:, :, None] == foods[:, None, :, :2]).all(-1)
        return (same & present[:, None]).any(-1)

    def _pick(self, allowed: np.ndarray) -> np.ndarray:
        """One uniformly random allowed action per row (each row allows at least one)."""
        return (self.rng.random(allowed.shape) * allowed).argmax(1)

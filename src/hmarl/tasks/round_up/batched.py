"""Many round-up yards at once, as NumPy arrays: one step function for the whole batch.

The rules are those of :class:`~hmarl.tasks.round_up.simulation.RoundUp`, the
rewards, flags and infos those of :class:`~hmarl.tasks.round_up.env.RoundUpEnv`, in
the same order of events within a step; :func:`hmarl.conformance.check_batched_env`
holds the two equal step for step on the same seeds. It follows
:mod:`hmarl.batched_env`: groups ``high`` and ``low``, one agent per robot in each;
each yard keeps its own clock, so yards can be reset one by one or all together.

New chickens are drawn from one generator per yard, seeded and advanced exactly as
the env's ``np_random`` is, so both draw the same chickens. Generators cannot draw
for a whole batch at once, so each yard draws :data:`DRAWN_AHEAD` new chickens ahead
(the same numbers, in the same order, as drawing them one by one) and a step takes
all its new chickens from those draws at once; a yard draws ahead again when they run
out. Everything is whole-batch array arithmetic but those refills.

Shapes: B yards, R robots, C chickens, O OCEAN features.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from hmarl.tasks.chicken_yard.batched import checked_actions
from hmarl.tasks.chicken_yard.simulation import (
    DIRECTIONS,
    compatibility,
    draw_count,
    draw_yards,
    has_arrived,
    squared_distances,
)
from hmarl.tasks.round_up.agents import Spaces, high_agent, low_agent
from hmarl.tasks.round_up.simulation import RoundUpConfig, new_chickens, respawn_draws

DRAWN_AHEAD = 16
"""New chickens each yard draws ahead (at least one per robot): a refill, a loop over
yards, comes every 16 catches, and 100,000 yards hold 16 x 7 doubles each (90 MB)."""


class RoundUpStep:
    """What one step did (see :class:`hmarl.batched_env.BatchedStep`); arrays are (B, R)."""

    def __init__(
        self,
        rewards: dict[str, np.ndarray],
        ended: dict[str, np.ndarray],
        config: RoundUpConfig,
        infos: dict[str, dict[str, np.ndarray]],
        over: np.ndarray,
    ) -> None:
        self.rewards = rewards
        # The horizon is the round-up's only end: ``ended`` are the agents it ends,
        # terminated or truncated as the config says; the other flags stay clear.
        clear = {group: np.zeros_like(flags) for group, flags in ended.items()}
        self.terminated, self.truncated = config.end_flags(ended, clear)
        self.infos = infos
        self.over = over


class BatchedRoundUp:
    """B independent round-up yards stepped together (a :class:`hmarl.batched_env.BatchedEnv`).

    A robot decides while its ``targets`` entry is -1 and heads for that chicken
    otherwise; actions of robots not due to act, and of yards whose episode is over,
    are ignored.
    """

    def __init__(self, config: RoundUpConfig | None = None, num_envs: int = 1) -> None:
        self.config = config or RoundUpConfig()
        self.num_envs = num_envs
        cfg = self.config
        robots = range(1, cfg.num_robots + 1)
        self.groups = {
            "high": [high_agent(i) for i in robots],
            "low": [low_agent(i) for i in robots],
        }
        spaces = Spaces.of(cfg)
        self.state_space = spaces.state
        self.observation_spaces = {"high": spaces.high_observation, "low": spaces.low_observation}
        self.action_spaces = {"high": spaces.high_action, "low": spaces.low_action}
        # The same products as the yard's moves, plus a still row.
        self._step_table = np.vstack([DIRECTIONS * cfg.move_amount, np.zeros(2)])
        b, r, c, o = num_envs, cfg.num_robots, cfg.num_chickens, cfg.num_ocean_features
        # others[i] = the robots other than i, in order: the rows of the `other_*` fields.
        self._others = np.array([[j for j in range(r) if j != i] for i in range(r)], dtype=int)
        self._earlier = np.tri(r, k=-1, dtype=bool)
        """(R, R) [i, j]: robot j comes before robot i."""
        self.rngs: list[np.random.Generator] = [np.random.default_rng(0) for _ in range(b)]
        """Each yard's generator, where its env's ``np_random`` stands after the same steps
        and the draws ahead."""
        self._ahead = max(DRAWN_AHEAD, r)  # a step catches at most one chicken per robot
        self._drawn = np.zeros((b, self._ahead, respawn_draws(cfg)))
        """(B, K, 2 + O) each yard's uniform draws for its next K new chickens."""
        self._next = np.zeros(b, dtype=np.int64)
        """(B,) the row of ``_drawn`` each yard's next new chicken takes."""
        self.chicken_positions = np.zeros((b, c, 2))
        """(B, C, 2) chicken x, y."""
        self.chicken_oceans = np.zeros((b, c, o))
        """(B, C, O) chicken personalities."""
        self.robot_oceans = np.zeros((b, r, o))
        """(B, R, O) robot personalities."""
        self.positions = np.zeros((b, r, 2))
        """(B, R, 2) robot x, y now."""
        self.compatibilities = np.zeros((b, r, c))
        """(B, R, C) compatibility of every robot with every chicken."""
        self.targets = np.full((b, r), -1, dtype=np.int64)
        """(B, R) the chicken each robot is heading for, -1 while it decides."""
        self.target_positions = np.zeros((b, r, 2))
        """(B, R, 2) where each robot's last chosen chicken stood when chosen."""
        self.catches = np.zeros((b, r), dtype=np.int64)
        """(B, R) chickens caught since reset."""
        self.caught_compatibility = np.zeros((b, r))
        """(B, R) compatibility of the chickens caught since reset, summed."""
        self.moves = np.zeros((b, r), dtype=np.int64)
        """(B, R) moves made since reset."""
        self.option_moves = np.zeros((b, r), dtype=np.int64)
        """(B, R) moves towards the chicken chosen last."""
        self.low_seen = np.zeros((b, r), dtype=bool)
        """(B, R) low agents that have observed (only they get a final observation)."""
        self.steps = np.zeros(b, dtype=np.int64)
        """(B,) steps since each yard's reset."""
        self.over = np.ones(b, dtype=bool)
        """(B,) yards whose episode is over (waiting for a reset)."""
        # Float32 copies as the env hands them out, so policies see identical inputs.
        self._chicken_oceans32 = np.zeros((b, c, o), dtype=np.float32)
        self._chicken_positions32 = np.zeros((b, c, 2), dtype=np.float32)
        self._robot_oceans32 = np.zeros((b, r, o), dtype=np.float32)

    def reset(self, seeds: Sequence[int], where: np.ndarray | None = None) -> None:
        """New yards, each drawn exactly as ``RoundUpEnv.reset(seed=s)`` draws it."""
        rows = np.arange(self.num_envs) if where is None else np.flatnonzero(where)
        if len(seeds) != len(rows):
            raise ValueError(f"{len(rows)} yards to reset but {len(seeds)} seeds")
        if not len(rows):
            return
        yard = self.config.yard
        layout = draw_yards(seeds, yard)
        for row, seed in zip(rows, seeds, strict=True):
            # Where the env's generator stands once it has drawn the yard.
            rng = np.random.default_rng(int(seed))
            rng.bit_generator.advance(draw_count(yard))
            self.rngs[row] = rng
            self._drawn[row] = rng.random(self._drawn.shape[1:])
        self._next[rows] = 0
        self.chicken_positions[rows] = layout.chicken_positions
        self.chicken_oceans[rows] = layout.chicken_oceans
        self.robot_oceans[rows] = layout.robot_oceans
        self.positions[rows] = layout.robot_positions
        self.compatibilities[rows] = compatibility(layout.robot_oceans, layout.chicken_oceans)
        self._chicken_oceans32[rows] = layout.chicken_oceans
        self._chicken_positions32[rows] = layout.chicken_positions
        self._robot_oceans32[rows] = layout.robot_oceans
        for array, value in (
            (self.targets, -1),
            (self.target_positions, 0.0),
            (self.catches, 0),
            (self.caught_compatibility, 0.0),
            (self.moves, 0),
            (self.option_moves, 0),
            (self.low_seen, False),
            (self.steps, 0),
            (self.over, False),
        ):
            array[rows] = value

    @property
    def all_over(self) -> bool:
        return bool(self.over.all())

    def due(self, group: str) -> np.ndarray:
        """(B, R) robots whose ``group`` agent acts next."""
        deciding = self.targets < 0
        return (deciding if group == "high" else ~deciding) & ~self.over[:, None]

    def states(self) -> dict[str, np.ndarray]:
        """Every yard's state (the env's ``state()``), each field (B, ...)."""
        c = self.config.num_chickens
        heading = self.targets >= 0
        targets = (self.targets[..., None] == np.arange(c)) & heading[..., None]
        time_left = (1.0 - self.steps / self.config.episode_steps).astype(np.float32)
        return {
            "robot_positions": self.positions.astype(np.float32),
            "robot_oceans": self._robot_oceans32,
            "robot_targets": targets.astype(np.float32),
            "chicken_positions": self._chicken_positions32,
            "chicken_oceans": self._chicken_oceans32,
            "time_left": time_left[:, None],
        }

    def observations(self, group: str) -> dict[str, np.ndarray]:
        """Observations of every robot's ``group`` agent, each field (B, R, ...)."""
        b, r = self.targets.shape
        positions = self.positions.astype(np.float32)
        time_left = (1.0 - self.steps / self.config.episode_steps).astype(np.float32)
        time_left = np.broadcast_to(time_left[:, None, None], (b, r, 1))
        if group == "low":
            return {
                "robot_position": positions,
                "target_position": self.target_positions.astype(np.float32),
                "time_left": time_left,
            }
        c = self.config.num_chickens
        heading = self.targets >= 0
        # (B, R, C): which chicken each robot heads for; (B, R, R - 1, C): the others'.
        chosen = ((self.targets[..., None] == np.arange(c)) & heading[..., None]).astype(np.float32)
        others_targets = chosen[:, self._others]
        return {
            "chicken_oceans": np.broadcast_to(
                self._chicken_oceans32[:, None], (b, r, *self._chicken_oceans32.shape[1:])
            ),
            "chicken_positions": np.broadcast_to(
                self._chicken_positions32[:, None], (b, r, *self._chicken_positions32.shape[1:])
            ),
            "robot_ocean": self._robot_oceans32,
            "robot_position": positions,
            "chicken_claimed": others_targets.max(axis=2, initial=0.0),
            "other_positions": positions[:, self._others],
            "time_left": time_left,
            "other_oceans": self._robot_oceans32[:, self._others],
            "other_targets": others_targets,
        }

    def step(self, actions: Mapping[str, np.ndarray]) -> RoundUpStep:
        """Advance every yard one step: ``actions["high"]`` and ``actions["low"]`` are (B, R).

        A deciding robot takes its ``high`` action (a chicken), a heading robot its
        ``low`` one (a direction 0..7); the other entries are ignored.
        """
        cfg = self.config
        deciding, moving = self.due("high"), self.due("low")
        high = checked_actions(actions, "high", deciding, cfg.num_chickens)
        low = checked_actions(actions, "low", moving, len(DIRECTIONS))
        # 1. Choices.
        if deciding.any():
            self.targets = np.where(deciding, high, self.targets)
            chosen = np.take_along_axis(self.chicken_positions, self.targets.clip(0)[..., None], 1)
            self.target_positions = np.where(deciding[..., None], chosen, self.target_positions)
            self.option_moves[deciding] = 0
        # 2. Moves, all at once. Row 8 of the step table is "stand still".
        step = self._step_table.take(np.where(moving, low, len(DIRECTIONS)), axis=0)
        np.add(self.positions, step, out=self.positions)
        np.clip(self.positions, 0.0, 1.0, out=self.positions)
        self.moves += moving
        self.option_moves += moving
        arrived = has_arrived(squared_distances(self.positions, self.target_positions), cfg)
        arrived &= moving
        # 3. Catches, in robot order: the first robot to reach a chicken catches it.
        same = self.targets[:, :, None] == self.targets[:, None, :]
        caught = arrived & ~(same & arrived[:, None, :] & self._earlier).any(axis=-1)
        index = self.targets.clip(0)
        compat = np.take_along_axis(self.compatibilities, index[..., None], -1)[..., 0]
        high_rewards = np.where(caught, compat, 0.0)
        self.catches += caught
        self.caught_compatibility += high_rewards
        taken = np.zeros((self.num_envs, cfg.num_chickens), dtype=bool)
        if caught.any():
            yards, robots = np.nonzero(caught)  # each yard's catches in robot order
            taken[yards, index[yards, robots]] = True
            self._respawn(caught, yards, index[yards, robots])
        # 4. Interruptions: everyone else heading for a caught chicken.
        heading = self.targets >= 0
        interrupted = np.take_along_axis(taken, index, 1) & heading & ~caught
        # 5. Re-planning.
        released = caught | interrupted
        if cfg.replan_every:
            released |= moving & (self.option_moves >= cfg.replan_every)
        self.targets[released] = -1
        # 6. The clock.
        live = ~self.over
        self.steps += live
        ending = live & (self.steps >= cfg.episode_steps)
        self.over |= ending
        self.low_seen |= (self.targets >= 0) & ~self.over[:, None]
        low_rewards = np.where(caught, cfg.arrival_reward, cfg.step_reward) * moving
        catches = np.where(self.catches > 0, self.catches, np.nan)
        return RoundUpStep(
            rewards={"high": cfg.high_rewards(high_rewards), "low": low_rewards},
            ended={
                "high": np.broadcast_to(ending[:, None], caught.shape).copy(),
                "low": ending[:, None] & self.low_seen,
            },
            config=cfg,
            infos={
                "high": {
                    "caught_compatibility": self.caught_compatibility.copy(),
                    "catches": self.catches.copy(),
                },
                "low": {"moves": self.moves.copy(), "moves_per_catch": self.moves / catches},
            },
            over=ending,
        )

    def _respawn(self, caught: np.ndarray, yards: np.ndarray, chickens: np.ndarray) -> None:
        """Replace the caught chickens, each yard's in robot order, from its draws ahead."""
        count = caught.sum(axis=1)
        for yard in np.flatnonzero(self._next + count > self._ahead):
            # Draw ahead again: the unused draws first, then fresh ones, as the env draws them.
            unused = self._drawn[yard, self._next[yard] :]
            fresh = self.rngs[yard].random((self._next[yard], self._drawn.shape[2]))
            self._drawn[yard] = np.concatenate([unused, fresh])
            self._next[yard] = 0
        rank = np.cumsum(caught, axis=1)[caught] - 1  # which of its yard's catches
        positions, oceans = new_chickens(self._drawn[yards, self._next[yards] + rank], self.config)
        self._next += count
        self.chicken_positions[yards, chickens] = positions
        self.chicken_oceans[yards, chickens] = oceans
        self._chicken_positions32[yards, chickens] = positions
        self._chicken_oceans32[yards, chickens] = oceans
        column = compatibility(self.robot_oceans[yards], oceans[:, None])[..., 0]  # (n, R)
        self.compatibilities[yards, :, chickens] = column

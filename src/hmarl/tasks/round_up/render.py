"""Pictures of the round-up: the yard's frames, showing the re-planning.

A frame is the yard's (:mod:`hmarl.tasks.chicken_yard.render`: hens, robots, a dashed
line from each robot to the chicken it is heading for, that chicken tinted by its
compatibility, on the robot's own worst-to-best scale), plus what happened on the
step just taken:

- a catch: a burst in the robot's colour where it caught, and the compatibility it
  gained written beside it;
- a new chicken (the caught one's replacement): a ring of gold dots around it and
  "new" above it, unlike the solid ring in a robot's colour around a chosen chicken
  (a line of legend under the panel says so);
- a robot that decides next has no line; its status says so, or what it caught.

Under the yard, the panel's "caught" column keeps each robot's tally: chickens
caught and their compatibility summed (the high level's return).

The env draws its frames with it (Gymnasium's convention)::

    env = RoundUpEnv(config, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()  # (H, W, 3) uint8
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from hmarl.tasks.chicken_yard.render import (
    MUTED,
    SCALE,
    SUPERSAMPLE,
    YardRenderer,
    YardSnapshot,
    robot_colour,
)
from hmarl.tasks.round_up.simulation import RoundUpConfig

if TYPE_CHECKING:
    from hmarl.tasks.round_up.env import RoundUpEnv

__all__ = ["RoundUpRenderer", "RoundUpSnapshot"]

GOLD = (255, 196, 0)
NEW_INK = (150, 105, 0)
"""A darker gold for the word "new", readable on the grass."""
NEW_DOTS = 16


@dataclass(frozen=True)
class RoundUpSnapshot(YardSnapshot):
    """What one frame shows. Chickens change on respawns, so their arrays are copies."""

    caught: tuple[tuple[int, float], ...] = ()
    """(robot, compatibility gained) of each catch on the step just taken."""
    respawned: tuple[int, ...] = ()
    """Chickens that are new on the step just taken."""
    catches: tuple[int, ...] = ()
    """Chickens each robot caught since reset."""
    caught_compatibility: tuple[float, ...] = ()
    """Compatibility each robot caught since reset, summed."""

    @classmethod
    def of(cls, env: RoundUpEnv, returns: dict[str, float]) -> RoundUpSnapshot:
        sim = env.round_up
        yard = sim.yard
        if yard.layout is None:
            raise ValueError("reset the env before drawing it")
        return cls(
            chicken_positions=yard.layout.chicken_positions.copy(),
            compatibilities=yard.compatibilities.copy(),
            positions=yard.positions.copy(),
            targets=tuple(yard.targets),
            steps=yard.steps,
            returns=dict(returns),
            caught=tuple(env.last.caught.items()),
            respawned=tuple(env.last.respawned),
            catches=tuple(int(n) for n in sim.catches),
            caught_compatibility=tuple(float(c) for c in sim.caught_compatibility),
        )


class RoundUpRenderer(YardRenderer):
    """Draws round-up frames with pygame, off-screen (see the module docstring)."""

    PANEL_HEADS = ("robot", "chicken", "compat. / best", "caught", "low", "status")
    LEGEND_ROWS = 2

    def __init__(self, config: RoundUpConfig, size: int = 640) -> None:
        super().__init__(config.yard, size)

    def draw(self, env: RoundUpEnv, returns: dict[str, float]) -> None:
        """Draw the env's yard as it is now; ``returns``: summed reward per agent id."""
        self.draw_snapshot(RoundUpSnapshot.of(env, returns))

    def _draw_yard(self, snap: RoundUpSnapshot) -> None:
        super()._draw_yard(snap)
        pg, k = self._pg, self._u * SUPERSAMPLE
        width = max(2, round(2 * k))
        for chicken in snap.respawned:  # dots, so that no robot's solid ring looks the same
            x, y = self._px(snap.chicken_positions[chicken])
            for dot in range(NEW_DOTS):
                a = dot * 2 * math.pi / NEW_DOTS
                pg.draw.circle(
                    self._yard, GOLD, (x + 22 * k * math.cos(a), y + 22 * k * math.sin(a)), width
                )
        for robot, _ in snap.caught:
            x, y = self._px(snap.positions[robot])
            for ray in range(12):  # a burst of rays around the robot
                a = ray * math.pi / 6
                inner, outer = 22 * k, 32 * k
                start = (x + inner * math.cos(a), y + inner * math.sin(a))
                end = (x + outer * math.cos(a), y + outer * math.sin(a))
                pg.draw.line(self._yard, robot_colour(robot), start, end, width)

    def _draw_labels(self, snap: RoundUpSnapshot) -> None:
        """Chicken numbers, "new" over new chickens, and each catch's compatibility."""
        super()._draw_labels(snap)
        for chicken in snap.respawned:
            x, y = (v / SUPERSAMPLE for v in self._px(snap.chicken_positions[chicken]))
            text = self._bold.render("new", True, NEW_INK)
            self._canvas.blit(text, text.get_rect(midbottom=(x, y - 24 * self._u)))
        for robot, compat in snap.caught:
            x, y = (v / SUPERSAMPLE for v in self._px(snap.positions[robot]))
            colour = SCALE[2] if compat >= 0 else SCALE[0]
            text = self._bold.render(f"{compat:+.2f}", True, colour)
            self._canvas.blit(text, text.get_rect(midleft=(x + 28 * self._u, y - 14 * self._u)))

    def _draw_panel(self, snap: RoundUpSnapshot) -> None:
        super()._draw_panel(snap)
        y = self._legend_y + self._line
        x = self._margin
        for dot in range(3):
            centre = (x + round((5 + 9 * dot) * self._u), y + round(7 * self._u))
            self._pg.draw.circle(self._canvas, GOLD, centre, max(2, round(2.5 * self._u)))
        legend = "new: a chicken that just replaced a caught one"
        self._text(legend, (x + round(32 * self._u), y), self._small, MUTED)

    def _status(self, snap: RoundUpSnapshot, robot: int) -> str:
        """Caught (on the step just taken), deciding, or the distance to go."""
        for catcher, _ in snap.caught:
            if catcher == robot:
                return "caught!"
        chicken = snap.targets[robot]
        if chicken is None:
            return "deciding"
        gap = snap.positions[robot] - snap.chicken_positions[chicken]
        return f"{float(np.hypot(*gap)):.2f} to go"

    def _high_cell(self, snap: RoundUpSnapshot, robot: int) -> str:
        """Chickens caught, and their compatibility summed."""
        return f"{snap.catches[robot]}: {snap.caught_compatibility[robot]:+.2f}"

"""Pictures of RWARE: the frames its env renders, drawn with pygame from the package's state.

rware draws with pyglet, which needs a display; this draws off-screen on a pygame
Surface, so ``hmarl watch --out episode.gif`` works on a machine without one. A frame
shows the warehouse (y down, as the package has it):

- corridors light, shelf places darker, the goals gold;
- every standing shelf as a brown box, a requested one orange-red;
- every robot as a disc in its own colour (the colours of the other tasks' robots)
  with a wedge pointing where it faces and its number; a robot carrying a shelf has
  the shelf's box drawn around it (orange-red while the shelf is requested);
- a panel under the grid: the step and the limit, deliveries so far (the return),
  and each robot's reward so far.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from hmarl.recording import import_pygame
from hmarl.tasks.chicken_yard.render import INK, MUTED, PANEL, robot_colour

if TYPE_CHECKING:
    from hmarl.tasks.rware.env import WarehouseEnv

__all__ = ["WarehouseRenderer"]

CORRIDOR = (236, 236, 232)
PLACE = (205, 205, 198)
GOAL = (240, 200, 70)
SHELF = (150, 110, 70)
REQUESTED = (225, 90, 40)
# Direction values 0..3 = up, down, left, right, as unit (x, y) steps.
HEADINGS = ((0, -1), (0, 1), (-1, 0), (1, 0))


class WarehouseRenderer:
    """Draws RWARE frames off-screen: ``frame(env)`` is the env now as (H, W, 3) uint8."""

    def __init__(self, package: Any, size: int = 480) -> None:
        self._pg = pg = import_pygame()
        pg.font.init()
        self.rows, self.cols = package.grid_size
        self.cell = max(16, size // max(self.rows, self.cols))
        self.width = max(self.cell * self.cols, 320)
        self._line = 18
        self._font = pg.font.Font(None, 20)
        self._label = pg.font.Font(None, max(12, round(self.cell * 0.55)))
        robots = package.n_agents
        panel = (1 + -(-robots // 4)) * self._line + 8
        self.height = -(-(self.cell * self.rows + panel) // 16) * 16
        self._canvas = pg.Surface((self.width, self.height))
        self._floor = pg.Surface((self.cell * self.cols, self.cell * self.rows))
        for y in range(self.rows):
            for x in range(self.cols):
                colour = CORRIDOR if package.highways[y, x] else PLACE
                self._floor.fill(colour, self._box(x, y, inset=0))
        for x, y in package.goals:
            self._floor.fill(GOAL, self._box(x, y, inset=0))
        self._returns: dict[int, float] = {}

    def frame(self, env: WarehouseEnv) -> np.ndarray:
        """Draw the env as it is now and return the frame."""
        pg, canvas = self._pg, self._canvas
        package = env.package
        requested = {shelf.id for shelf in package.request_queue}
        canvas.fill(PANEL)
        canvas.blit(self._floor, (0, 0))
        carried = {a.carrying_shelf.id for a in package.agents if a.carrying_shelf is not None}
        for shelf in package.shelfs:
            if shelf.id not in carried:
                colour = REQUESTED if shelf.id in requested else SHELF
                pg.draw.rect(canvas, colour, self._box(shelf.x, shelf.y, inset=3), border_radius=3)
        for i, agent in enumerate(package.agents):
            self._robot(i, agent, requested)
        self._panel(env)
        data = bytearray(pg.image.tobytes(canvas, "RGB"))
        return np.frombuffer(data, dtype=np.uint8).reshape(self.height, self.width, 3)

    def _box(self, x: int, y: int, inset: int) -> tuple[int, int, int, int]:
        c = self.cell
        return (x * c + inset, y * c + inset, c - 2 * inset, c - 2 * inset)

    def _robot(self, index: int, agent: Any, requested: set[int]) -> None:
        pg, c = self._pg, self.cell
        if agent.carrying_shelf is not None:
            colour = REQUESTED if agent.carrying_shelf.id in requested else SHELF
            pg.draw.rect(self._canvas, colour, self._box(agent.x, agent.y, inset=1), 3, 4)
        x, y = (agent.x + 0.5) * c, (agent.y + 0.5) * c
        radius = c * 0.32
        pg.draw.circle(self._canvas, robot_colour(index), (x, y), radius)
        pg.draw.circle(self._canvas, INK, (x, y), radius, 1)
        dx, dy = HEADINGS[agent.dir.value]
        tip = (x + dx * c * 0.46, y + dy * c * 0.46)
        side = (-dy * radius * 0.6, dx * radius * 0.6)
        base = (x + dx * radius * 0.6, y + dy * radius * 0.6)
        wedge = [
            tip,
            (base[0] + side[0], base[1] + side[1]),
            (base[0] - side[0], base[1] - side[1]),
        ]
        pg.draw.polygon(self._canvas, INK, wedge)
        label = self._label.render(str(index), True, (255, 255, 255))
        self._canvas.blit(label, label.get_rect(center=(x, y)))

    def _panel(self, env: WarehouseEnv) -> None:
        package, line = env.package, self._line
        top = self.cell * self.rows + 4
        text = (
            f"step {package._cur_steps} / {package.max_steps}    "
            f"requested {len(package.request_queue)}    return {env.episode_return:g}"
        )
        self._write(text, (6, top), INK)
        for i in range(package.n_agents):
            x, y = 6 + (i % 4) * self.width // 4, top + (1 + i // 4) * line
            self._pg.draw.circle(self._canvas, robot_colour(i), (x + 5, y + line / 2 - 2), 5)
            self._write(f"agent_{i}", (x + 14, y), MUTED)

    def _write(self, text: str, at: tuple[float, float], colour: tuple[int, int, int]) -> None:
        rendered = self._font.render(text, True, colour)
        self._canvas.blit(rendered, rendered.get_rect(topleft=at))

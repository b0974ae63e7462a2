"""Pictures of LBF: the frames its env renders, drawn with pygame from the package's state.

lbforaging draws with pyglet, which needs a display; this draws off-screen on a
pygame Surface, so ``hmarl watch --out episode.gif`` works on a machine without one.
A frame shows the field (row 0 at the top, as the package has it):

- every food as an apple with its level on it;
- every player as a disc in its own colour (the colours of the other tasks' robots)
  with its level on it; players sharing a cell (LBF lets two players end up on one)
  are drawn side by side within it;
- a panel under the field: the step and the limit, the food loaded so far (its share
  of all food by level: the episode's return), and per player its colour, level and
  reward so far.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from hmarl.recording import import_pygame
from hmarl.tasks.chicken_yard.render import INK, MUTED, PANEL, robot_colour

if TYPE_CHECKING:
    from hmarl.tasks.lbf.env import LBFEnv

__all__ = ["ForagingRenderer"]

FIELD = (236, 233, 220)
LINE = (212, 207, 190)
APPLE = (200, 45, 40)
LEAF = (60, 140, 60)


class ForagingRenderer:
    """Draws LBF frames off-screen: ``frame(env)`` is the env now as (H, W, 3) uint8."""

    def __init__(self, package: Any, size: int = 480) -> None:
        self._pg = pg = import_pygame()
        pg.font.init()
        self.rows, self.cols = package.field_size
        self.cell = max(20, size // max(self.rows, self.cols))
        self.width = self.cell * self.cols
        self._line = 22
        self._font = pg.font.Font(None, 24)
        self._label = pg.font.Font(None, max(14, round(self.cell * 0.45)))
        players = len(package.players)
        panel = (2 + -(-players // 3)) * self._line + 8
        self.height = -(-(self.cell * self.rows + panel) // 16) * 16
        self._canvas = pg.Surface((self.width, self.height))

    def frame(self, env: LBFEnv) -> np.ndarray:
        """Draw the env as it is now and return the frame."""
        pg, canvas, cell = self._pg, self._canvas, self.cell
        package = env.package
        canvas.fill(PANEL)
        pg.draw.rect(canvas, FIELD, (0, 0, self.width, cell * self.rows))
        for i in range(1, max(self.rows, self.cols)):
            pg.draw.line(canvas, LINE, (i * cell, 0), (i * cell, cell * self.rows))
            pg.draw.line(canvas, LINE, (0, i * cell), (self.width, i * cell))
        for row, col in zip(*np.nonzero(package.field), strict=True):
            self._apple(row, col, int(package.field[row, col]))
        cells: dict[tuple[int, int], list[int]] = {}
        for i, player in enumerate(package.players):
            cells.setdefault(tuple(int(v) for v in player.position), []).append(i)
        for (row, col), players in cells.items():
            for k, i in enumerate(players):
                self._player(row, col, i, package.players[i].level, k, len(players))
        self._panel(env)
        data = bytearray(pg.image.tobytes(canvas, "RGB"))
        return np.frombuffer(data, dtype=np.uint8).reshape(self.height, self.width, 3)

    def _centre(self, row: int, col: int, offset: float = 0.0) -> tuple[float, float]:
        return ((col + 0.5 + offset) * self.cell, (row + 0.5) * self.cell)

    def _apple(self, row: int, col: int, level: int) -> None:
        pg, cell = self._pg, self.cell
        x, y = self._centre(row, col)
        pg.draw.circle(self._canvas, APPLE, (x, y + cell * 0.04), cell * 0.36)
        pg.draw.line(
            self._canvas, LEAF, (x, y - cell * 0.28), (x + cell * 0.12, y - cell * 0.42), 3
        )
        self._text(str(level), (x, y + cell * 0.04), (255, 255, 255), self._label)

    def _player(self, row: int, col: int, index: int, level: int, k: int, sharing: int) -> None:
        pg, cell = self._pg, self.cell
        offset = (k - (sharing - 1) / 2) * 0.42 if sharing > 1 else 0.0
        x, y = self._centre(row, col, offset)
        radius = cell * (0.34 if sharing == 1 else 0.22)
        pg.draw.circle(self._canvas, robot_colour(index), (x, y), radius)
        pg.draw.circle(self._canvas, INK, (x, y), radius, 2)
        self._text(str(level), (x, y), (255, 255, 255), self._label)

    def _panel(self, env: LBFEnv) -> None:
        package, line = env.package, self._line
        top = self.cell * self.rows + 4
        limit = package._max_episode_steps
        loaded = 1.0 - package.field.sum() / max(package._food_spawned, 1)
        text = f"step {package.current_step} / {limit}    food loaded {loaded:.0%}"
        self._text(text, (6, top), INK, anchor="topleft")
        self._text(f"return {env.episode_return:.3f}", (6, top + line), INK, anchor="topleft")
        for i, player in enumerate(package.players):
            x = 6 + (i % 3) * self.width // 3
            y = top + (2 + i // 3) * line
            self._pg.draw.circle(self._canvas, robot_colour(i), (x + 5, y + line / 2 - 2), 5)
            score = f"agent_{i} L{player.level} {player.score:.3f}"
            self._text(score, (x + 14, y), MUTED, anchor="topleft")

    def _text(
        self,
        text: str,
        at: tuple[float, float],
        colour: tuple[int, int, int],
        font: Any = None,
        anchor: str = "center",
    ) -> None:
        rendered = (font or self._font).render(text, True, colour)
        self._canvas.blit(rendered, rendered.get_rect(**{anchor: at}))

"""Pictures of the chicken yard: the frames its env renders.

A frame shows the yard as the simulation sees it (the unit square, origin top-left, y
growing downward, so yard coordinates map straight to screen pixels), on grass with a
faint 0.1 grid:

- every chicken as a small drawn hen, numbered by its index;
- every robot as a small drawn robot in its own colour, with a dashed line to the
  chicken it chose;
- each chosen chicken tinted by its compatibility with the robot that chose it, on a
  red → yellow → green scale that spans *that robot's* worst to best chicken (green:
  the best choice it had), inside a ring of radius ``closeness_threshold`` (the arrival
  distance) in the robot's colour;
- a panel under the yard: the step count, and per robot its chicken, the compatibility
  of that choice (and the best it could have had), the high- and low-level rewards
  summed so far, and whether it is choosing, on its way, arrived or out of time.

The env draws its frames with it (Gymnasium's convention)::

    env = ChickenYardEnv(config, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()  # (H, W, 3) uint8

and any recorder (``hmarl watch``, imageio, Gymnasium's RecordVideo) can use them.
pygame is imported only when a renderer is made; drawing is off-screen on a plain
pygame Surface, so it needs no display.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from hmarl.recording import import_pygame
from hmarl.tasks.chicken_yard.agents import high_agent, low_agent
from hmarl.tasks.chicken_yard.simulation import YardConfig

if TYPE_CHECKING:
    from hmarl.tasks.chicken_yard.env import ChickenYardEnv

__all__ = ["YardRenderer", "YardSnapshot", "compatibility_colour", "robot_colour"]

RGB = tuple[int, int, int]

# Robot colours (matplotlib's tab10 without its red and green, which the
# compatibility scale uses).
ROBOT_COLOURS: tuple[RGB, ...] = (
    (31, 119, 180),
    (255, 127, 14),
    (148, 103, 189),
    (23, 190, 207),
    (227, 119, 194),
    (140, 86, 75),
    (127, 127, 127),
    (188, 189, 34),
)
# ColorBrewer's RdYlGn ends and middle: readable for most colour-blind viewers too.
SCALE: tuple[RGB, ...] = ((215, 48, 39), (254, 224, 139), (26, 152, 80))

GRASS: RGB = (214, 232, 190)
GRID: RGB = (198, 219, 172)
FENCE: RGB = (139, 101, 62)
PANEL: RGB = (247, 246, 241)
INK: RGB = (40, 40, 40)
MUTED: RGB = (120, 120, 120)
HEN: RGB = (252, 249, 240)
COMB: RGB = (214, 39, 40)
BEAK: RGB = (245, 166, 35)

# The yard is drawn at this multiple of its size and smoothed down: cheap anti-aliasing.
SUPERSAMPLE = 2


def compatibility_colour(value: float, low: float, high: float) -> RGB:
    """Red (``low``) → yellow → green (``high``); the middle colour if low == high."""
    t = 0.5 if high <= low else min(max((value - low) / (high - low), 0.0), 1.0)
    i = 0 if t < 0.5 else 1
    return _mix(SCALE[i], SCALE[i + 1], t * 2 - i)


@dataclass(frozen=True)
class YardSnapshot:
    """What one frame shows: the yard at one step, with the rewards summed so far."""

    chicken_positions: np.ndarray
    """(C, 2) x, y; fixed for the episode, so shared, not copied."""
    compatibilities: np.ndarray
    """(R, C) every robot with every chicken; fixed for the episode."""
    positions: np.ndarray
    """(R, 2) robot positions at this step."""
    targets: tuple[int | None, ...]
    """The chicken each robot chose, or None while it is choosing."""
    steps: int
    """Environment steps since reset, the choosing step included."""
    returns: dict[str, float]
    """Summed reward per agent id."""

    @classmethod
    def of(cls, env: ChickenYardEnv, returns: dict[str, float]) -> YardSnapshot:
        yard = env.yard
        if yard.layout is None:
            raise ValueError("reset the env before drawing it")
        return cls(
            chicken_positions=yard.layout.chicken_positions,
            compatibilities=yard.compatibilities,
            positions=yard.positions.copy(),
            targets=tuple(yard.targets),
            steps=yard.steps,
            returns=dict(returns),
        )


class YardRenderer:
    """Draws chicken-yard frames with pygame, off-screen.

    The frame is ``size`` pixels wide: the yard is a ``size`` × ``size`` square and the
    text panel sits under it (its height grows with the number of robots; the total
    height is a multiple of 16, as video encoders like).
    """

    PANEL_HEADS: tuple[str, ...] = ("robot", "chicken", "compat. / best", "high", "low", "status")
    """The panel's column heads."""
    LEGEND_ROWS = 1
    """Rows of legend under the robots' rows (a subclass may add its own below)."""

    def __init__(self, config: YardConfig, size: int = 640) -> None:
        if size < 240:
            raise ValueError(f"size must be at least 240 pixels, got {size}")
        self.config = config
        self.size = size
        self._pg = import_pygame()
        pg = self._pg
        pg.font.init()
        u = size / 640
        self._u = u
        self._font = pg.font.Font(None, round(22 * u))
        self._bold = pg.font.Font(None, round(26 * u))
        self._bold.set_bold(True)
        self._small = pg.font.Font(None, round(18 * u))
        self._margin = round(28 * u)
        self._line = round(23 * u)
        rows = config.num_robots + 2 + self.LEGEND_ROWS  # step line, heads, robots, legend
        panel = rows * self._line + round(20 * u)
        height = -(-(size + panel) // 16) * 16
        self.width, self.height = size, height
        self._canvas = pg.Surface((size, height))
        self._yard = pg.Surface((size * SUPERSAMPLE, size * SUPERSAMPLE))
        self._yard_view = self._canvas.subsurface((0, 0, size, size))
        self._scale_bar = pg.Surface((round(110 * u), round(12 * u)))
        for i in range(self._scale_bar.get_width()):
            tint = compatibility_colour(i, 0, self._scale_bar.get_width() - 1)
            pg.draw.line(self._scale_bar, tint, (i, 0), (i, self._scale_bar.get_height()))
        pg.draw.rect(self._scale_bar, MUTED, self._scale_bar.get_rect(), 1)

    # -- drawing ------------------------------------------------------------

    def draw(self, env: ChickenYardEnv, returns: dict[str, float]) -> None:
        """Draw the env's yard as it is now; ``returns``: summed reward per agent id."""
        self.draw_snapshot(YardSnapshot.of(env, returns))

    def draw_snapshot(self, snap: YardSnapshot) -> None:
        """Draw a yard captured earlier (see :meth:`YardSnapshot.of`)."""
        r, c = snap.compatibilities.shape
        if (r, c) != (self.config.num_robots, self.config.num_chickens):
            raise ValueError(
                f"this renderer draws {self.config.num_robots} robots and "
                f"{self.config.num_chickens} chickens, the yard has {r} and {c}"
            )
        pg = self._pg
        self._draw_yard(snap)
        pg.transform.smoothscale(self._yard, (self.size, self.size), self._yard_view)
        self._draw_labels(snap)
        self._draw_panel(snap)

    def frame(self) -> np.ndarray:
        """The last drawn frame as an (H, W, 3) uint8 array."""
        data = bytearray(self._pg.image.tobytes(self._canvas, "RGB"))
        return np.frombuffer(data, dtype=np.uint8).reshape(self.height, self.width, 3)

    # -- the yard -----------------------------------------------------------

    def _px(self, point: np.ndarray) -> tuple[float, float]:
        """Yard coordinates to pixels on the supersampled yard surface."""
        span = self.size - 2 * self._margin
        return (
            (self._margin + float(point[0]) * span) * SUPERSAMPLE,
            (self._margin + float(point[1]) * span) * SUPERSAMPLE,
        )

    def _draw_yard(self, snap: YardSnapshot) -> None:
        pg, surf, k = self._pg, self._yard, self._u * SUPERSAMPLE
        surf.fill(GRASS)
        span = (self.size - 2 * self._margin) * SUPERSAMPLE
        left = self._margin * SUPERSAMPLE
        for i in range(1, 10):
            at = left + span * i / 10
            pg.draw.line(surf, GRID, (at, left), (at, left + span), max(1, round(k)))
            pg.draw.line(surf, GRID, (left, at), (left + span, at), max(1, round(k)))
        pg.draw.rect(surf, FENCE, (left, left, span, span), max(2, round(3 * k)))

        chosen = self._chosen(snap)
        radius = self.config.closeness_threshold * span
        for chicken, robots in chosen.items():
            centre = self._px(snap.chicken_positions[chicken])
            tint = self._tint(snap, robots[0], chicken)
            self._disc(centre, radius, (*tint, 130))
            for n, robot in enumerate(robots):
                ring = radius + n * 3 * k
                pg.draw.circle(surf, robot_colour(robot), centre, ring, max(2, round(2 * k)))
        for robot, chicken in enumerate(snap.targets):
            if chicken is not None:
                self._dashed(
                    self._px(snap.positions[robot]),
                    self._px(snap.chicken_positions[chicken]),
                    robot_colour(robot),
                    max(2, round(2 * k)),
                )
        for chicken, position in enumerate(snap.chicken_positions):
            robots = chosen.get(chicken)
            # Lightened, so the hen's outline still shows on the darkest tint.
            body = _mix(self._tint(snap, robots[0], chicken), HEN, 0.35) if robots else HEN
            self._hen(self._px(position), body)
        for robot, position in enumerate(snap.positions):
            self._robot(self._px(position), robot, self._status(snap, robot))

    def _chosen(self, snap: YardSnapshot) -> dict[int, list[int]]:
        """Chosen chicken → the robots that chose it."""
        chosen: dict[int, list[int]] = {}
        for robot, chicken in enumerate(snap.targets):
            if chicken is not None:
                chosen.setdefault(chicken, []).append(robot)
        return chosen

    def _tint(self, snap: YardSnapshot, robot: int, chicken: int) -> RGB:
        row = snap.compatibilities[robot]
        return compatibility_colour(row[chicken], row.min(), row.max())

    def _disc(self, centre: tuple[float, float], radius: float, rgba: tuple[int, ...]) -> None:
        pg = self._pg
        side = int(2 * radius) + 2
        patch = pg.Surface((side, side), pg.SRCALPHA)
        pg.draw.circle(patch, rgba, (side / 2, side / 2), radius)
        self._yard.blit(patch, (centre[0] - side / 2, centre[1] - side / 2))

    def _dashed(
        self, start: tuple[float, float], end: tuple[float, float], colour: RGB, width: int
    ) -> None:
        a, b = np.array(start), np.array(end)
        length = float(np.linalg.norm(b - a))
        dash, gap = 10 * self._u * SUPERSAMPLE, 7 * self._u * SUPERSAMPLE
        at = 0.0
        while at < length:
            p = a + (b - a) * (at / length)
            q = a + (b - a) * (min(at + dash, length) / length)
            self._pg.draw.line(self._yard, colour, p, q, width)
            at += dash + gap

    def _hen(self, centre: tuple[float, float], body: RGB) -> None:
        """A hen facing right, about 30 px wide at 640 px, centred on her position."""
        pg, surf, k = self._pg, self._yard, self._u * SUPERSAMPLE
        x, y = centre
        line = max(1, round(1.5 * k))
        self._shadow((x, y + 11 * k), 24 * k)
        for dx in (-3, 3):  # legs
            pg.draw.line(surf, BEAK, (x + dx * k, y + 5 * k), (x + dx * k, y + 11 * k), line)
        tail = [(x - 9 * k, y - 1 * k), (x - 16 * k, y - 8 * k), (x - 14 * k, y + 2 * k)]
        pg.draw.polygon(surf, body, tail)
        pg.draw.polygon(surf, INK, tail, line)
        rect = pg.Rect(0, 0, 24 * k, 17 * k)
        rect.center = (round(x), round(y + 1 * k))
        pg.draw.ellipse(surf, body, rect)
        pg.draw.ellipse(surf, INK, rect, line)
        wing = pg.Rect(0, 0, 12 * k, 7 * k)
        wing.center = (round(x - 1 * k), round(y + 2 * k))
        pg.draw.arc(surf, INK, wing, 3.4, 6.0, line)
        head = (x + 10 * k, y - 7 * k)
        for dx in (-2.5, 0.5, 3.5):  # comb
            pg.draw.circle(surf, COMB, (head[0] + dx * k, head[1] - 5 * k), 2.3 * k)
        beak = [(head[0] + 4 * k, head[1] - 2 * k), (head[0] + 10 * k, head[1] + 0.5 * k)]
        beak.append((head[0] + 4 * k, head[1] + 2.5 * k))
        pg.draw.polygon(surf, BEAK, beak)
        pg.draw.circle(surf, body, head, 5.5 * k)
        pg.draw.circle(surf, INK, head, 5.5 * k, line)
        pg.draw.circle(surf, INK, (head[0] + 2 * k, head[1] - 1 * k), 1.2 * k)
        pg.draw.circle(surf, COMB, (head[0] + 3 * k, head[1] + 4 * k), 1.6 * k)  # wattle

    def _robot(self, centre: tuple[float, float], robot: int, status: str) -> None:
        """A boxy robot in its colour; a tick once it arrived, a cross if out of time."""
        pg, surf, k = self._pg, self._yard, self._u * SUPERSAMPLE * 1.25
        x, y = centre
        colour, line = robot_colour(robot), max(1, round(1.5 * k))
        self._shadow((x, y + 10 * k), 26 * k)
        pg.draw.line(surf, INK, (x, y - 10 * k), (x, y - 15 * k), line)  # antenna
        pg.draw.circle(surf, colour, (x, y - 16 * k), 2.5 * k)
        pg.draw.circle(surf, INK, (x, y - 16 * k), 2.5 * k, line)
        body = pg.Rect(0, 0, 24 * k, 20 * k)
        body.center = (round(x), round(y))
        pg.draw.rect(surf, colour, body, border_radius=round(5 * k))
        pg.draw.rect(surf, INK, body, line, border_radius=round(5 * k))
        face = body.inflate(-8 * k, -9 * k).move(0, round(-1.5 * k))
        pg.draw.rect(surf, (250, 250, 250), face, border_radius=round(2 * k))
        for dx in (-4, 4):
            pg.draw.circle(surf, INK, (x + dx * k, face.centery), 1.8 * k)
        badge = (x + 12 * k, y - 10 * k)
        if status in ("arrived", "out of time"):
            pg.draw.circle(surf, (255, 255, 255), badge, 6 * k)
            pg.draw.circle(surf, INK, badge, 6 * k, line)
            bx, by = badge
            width = max(2, round(2 * k))
            if status == "arrived":
                tick = [(bx - 3.5 * k, by), (bx - 1 * k, by + 2.8 * k), (bx + 3.5 * k, by - 3 * k)]
                pg.draw.lines(surf, SCALE[2], False, tick, width)
            else:
                for s in (-1, 1):
                    a, b = (bx - 3 * k, by - 3 * k * s), (bx + 3 * k, by + 3 * k * s)
                    pg.draw.line(surf, SCALE[0], a, b, width)

    def _shadow(self, centre: tuple[float, float], width: float) -> None:
        pg = self._pg
        patch = pg.Surface((round(width), round(width / 3)), pg.SRCALPHA)
        pg.draw.ellipse(patch, (40, 60, 20, 60), patch.get_rect())
        self._yard.blit(patch, patch.get_rect(center=(round(centre[0]), round(centre[1]))))

    def _draw_labels(self, snap: YardSnapshot) -> None:
        """Chicken numbers, drawn after the downscale so they stay crisp."""
        for chicken, position in enumerate(snap.chicken_positions):
            x, y = (v / SUPERSAMPLE for v in self._px(position))
            text = self._small.render(str(chicken), True, INK)
            self._canvas.blit(text, text.get_rect(midtop=(x, y + 12 * self._u)))

    # -- the panel ----------------------------------------------------------

    def _status(self, snap: YardSnapshot, robot: int) -> str:
        """The panel's status: choosing, arrived, out of time, or the distance to go."""
        chicken = snap.targets[robot]
        # Arrival first: a robot arriving on the last step has arrived, as in the env.
        if chicken is not None:
            gap = snap.positions[robot] - snap.chicken_positions[chicken]
            distance = float(np.hypot(*gap))
            if distance <= self.config.closeness_threshold:
                return "arrived"
        if snap.steps >= self.config.timeout:
            return "out of time"
        return "choosing" if chicken is None else f"{distance:.2f} to go"

    def _high_cell(self, snap: YardSnapshot, robot: int) -> str:
        """The panel's high-level cell: the reward summed so far."""
        return f"{snap.returns.get(high_agent(robot + 1), 0.0):+.3f}"

    def _draw_panel(self, snap: YardSnapshot) -> None:
        pg, canvas, u = self._pg, self._canvas, self._u
        top = self.size
        pg.draw.rect(canvas, PANEL, (0, top, self.width, self.height - top))
        pg.draw.line(canvas, FENCE, (0, top), (self.width, top), max(1, round(2 * u)))
        left = self._margin
        y = top + round(8 * u)
        self._text(f"step {snap.steps} / {self.config.timeout}", (left, y), self._bold)

        xs = [left, *(round(f * self.width) for f in (0.15, 0.29, 0.56, 0.69, 0.81))]
        y += self._line + round(4 * u)
        for x, head in zip(xs, self.PANEL_HEADS, strict=True):
            self._text(head, (x, y), self._small, MUTED)
        for robot in range(self.config.num_robots):
            y += self._line
            colour = robot_colour(robot)
            swatch = pg.Rect(xs[0], y + round(2 * u), round(13 * u), round(13 * u))
            pg.draw.rect(canvas, colour, swatch, border_radius=round(3 * u))
            self._text(str(robot + 1), (xs[0] + round(20 * u), y))
            chicken = snap.targets[robot]
            row = snap.compatibilities[robot]
            if chicken is None:
                self._text("–", (xs[1], y), colour=MUTED)
                self._text(f"– / {row.max():.3f}", (xs[2] + round(18 * u), y), colour=MUTED)
            else:
                self._text(f"#{chicken}", (xs[1], y))
                tint = compatibility_colour(row[chicken], row.min(), row.max())
                swatch = pg.Rect(xs[2], y + round(2 * u), round(13 * u), round(13 * u))
                pg.draw.rect(canvas, tint, swatch, border_radius=round(3 * u))
                compat = f"{row[chicken]:.3f} / {row.max():.3f}"
                self._text(compat, (xs[2] + round(18 * u), y))
            self._text(self._high_cell(snap, robot), (xs[3], y))
            self._text(f"{snap.returns.get(low_agent(robot + 1), 0.0):+.3f}", (xs[4], y))
            status = self._status(snap, robot)
            status_colour = {"arrived": SCALE[2], "out of time": SCALE[0]}.get(status, INK)
            self._text(status, (xs[5], y), colour=status_colour)

        y += self._line + round(6 * u)
        legend = "chosen chicken's compatibility, that robot's worst to best:"
        self._text(legend, (left, y), self._small, MUTED)
        canvas.blit(self._scale_bar, self._scale_bar.get_rect(topright=(self.width - left, y)))
        self._legend_y = y
        """Where the legend's row is, for a subclass's rows under it."""

    def _text(
        self,
        text: str,
        at: tuple[int, int],
        font: Any = None,
        colour: RGB = INK,
        anchor: str = "topleft",
    ) -> None:
        rendered = (font or self._font).render(text, True, colour)
        self._canvas.blit(rendered, rendered.get_rect(**{anchor: at}))


def _mix(a: RGB, b: RGB, share_of_b: float) -> RGB:
    return tuple(round(x + (y - x) * share_of_b) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def robot_colour(robot: int) -> RGB:
    """A robot's colour (0-based), the same in every frame."""
    return ROBOT_COLOURS[robot % len(ROBOT_COLOURS)]

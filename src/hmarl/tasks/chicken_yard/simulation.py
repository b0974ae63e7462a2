"""The chicken yard as a plain simulation: state and rules, no reinforcement learning.

This module knows nothing of agents, observations or RLlib. It is the part a user
replaces with their own system; :mod:`~hmarl.tasks.chicken_yard.env` adapts it to RLlib and
:mod:`~hmarl.tasks.chicken_yard.batched` runs the same rules over many yards at once.

The array helpers (:func:`draw_yard`, :func:`move_positions`, :func:`compatibility`,
:func:`distances`) accept any leading batch dimensions, so the single yard and the
batched yard share them rather than restating the rules.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np

#: Unit steps for the low-level actions 0..7 = N, NE, E, SE, S, SW, W, NW.
#: The yard's origin is top-left and y grows downward, so north is -y.
DIRECTIONS = np.array(
    [[0, -1], [1, -1], [1, 0], [1, 1], [0, 1], [-1, 1], [-1, 0], [-1, -1]], dtype=np.float64
)
DIRECTION_NAMES = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")


class EnvConfig:
    """What every typed env config of a yard shares: built from RLlib's plain ``env_config``.

    A frozen dataclass subclasses it (:class:`YardConfig`, and the round-up's config).
    """

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Self:
        """Build from a plain dict (RLlib's ``env_config``), refusing unknown keys."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"unknown {cls.__name__} field(s): {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        return cls(**values)

    @classmethod
    def coerce(cls, config: Self | dict[str, Any] | None) -> Self:
        """Accept a config of this class, a plain dict, or nothing (the defaults)."""
        if config is None:
            return cls()
        if isinstance(config, cls):
            return config
        if isinstance(config, dict):
            return cls.from_dict(dict(config))
        raise ValueError(f"expected a {cls.__name__} or a dict, got {type(config).__name__}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]


def check_integers(config: Any, names: Sequence[str], minimum: int = 1) -> None:
    """Refuse fields that are not whole numbers of at least ``minimum``, naming the field."""
    for name in names:
        value = getattr(config, name)
        where = f"{type(config).__name__}.{name}"
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ValueError(f"{where} must be an integer, got {value!r}")
        if value < minimum:
            raise ValueError(f"{where} must be at least {minimum}, got {value}")


def check_numbers(config: Any, names: Sequence[str]) -> None:
    """Refuse fields that are not finite numbers, naming the field."""
    for name in names:
        value = getattr(config, name)
        where = f"{type(config).__name__}.{name}"
        # bool is an int to Python, but True is no step length or reward.
        if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
            raise ValueError(f"{where} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{where} must be finite, got {value!r}")


def check_yard_rules(config: Any) -> None:
    """Refuse values of the yard's shared fields on which the task means nothing.

    Any config with the yard's fields goes through here, so its errors name its
    own class and field.
    """
    name = type(config).__name__
    if not 0 < config.move_amount <= 1:
        raise ValueError(
            f"{name}.move_amount must be in (0, 1] (the yard is the unit square), "
            f"got {config.move_amount}"
        )
    if not 0 < config.closeness_threshold <= math.sqrt(2):
        raise ValueError(
            f"{name}.closeness_threshold must be in (0, 1.414] (at 0 no robot can "
            f"arrive), got {config.closeness_threshold}"
        )
    if config.step_reward > 0:
        raise ValueError(
            f"{name}.step_reward must not be positive (robots would be paid to never "
            f"arrive), got {config.step_reward}"
        )
    if not -1 <= config.personality_low < 1:
        raise ValueError(
            f"{name}.personality_low must be in [-1, 1) (personality entries are drawn "
            f"in [personality_low, 1)), got {config.personality_low}"
        )


@dataclass(frozen=True)
class YardConfig(EnvConfig):
    """Every constant of the chicken yard; the defaults are the 2022 tutorial's."""

    num_robots: int = 2
    """Robots in the yard; all of them share the high- and the low-level policy."""
    num_chickens: int = 10
    """Chickens, fixed for the episode."""
    num_ocean_features: int = 5
    """Length of each personality vector (the OCEAN model has five traits)."""
    move_amount: float = 0.03
    """Step length along each axis a move names (diagonals move on both axes)."""
    closeness_threshold: float = 0.03
    """Euclidean distance to its chosen chicken at which a robot has arrived."""
    step_reward: float = -0.001
    """Low-level reward for each move that does not arrive."""
    arrival_reward: float = 1.0
    """Low-level reward for arriving at the chosen chicken."""
    timeout_reward: float = -1.0
    """Reward for both levels of a robot still out at the time limit."""
    timeout: int = 1000
    """Environment steps (the choosing step included) before the time limit."""
    personality_low: float = 0.0
    """Personality entries are uniform in [this, 1) before normalising (0: the tutorial's)."""

    def __post_init__(self) -> None:
        check_integers(self, ("num_robots", "num_chickens", "num_ocean_features", "timeout"))
        rewards = ("step_reward", "arrival_reward", "timeout_reward")
        check_numbers(self, ("move_amount", "closeness_threshold", *rewards, "personality_low"))
        check_yard_rules(self)


def normalise(oceans: np.ndarray) -> np.ndarray:
    """L2-normalise personality vectors along the last axis."""
    return oceans / np.linalg.norm(oceans, axis=-1, keepdims=True)


def personalities(uniform: np.ndarray, config: YardConfig) -> np.ndarray:
    """Personality vectors from uniform [0, 1) draws: spread over [personality_low, 1), normalised.

    At the default ``personality_low`` of 0 the spread changes no bit of the draws.
    """
    low = config.personality_low
    return normalise(low + (1.0 - low) * uniform)


@dataclass
class YardLayout:
    """Where everything starts and who everyone is; drawn once per episode.

    Shapes are for one yard; :func:`draw_yards` stacks yards on a leading axis.
    """

    chicken_positions: np.ndarray
    """(C, 2) x, y in [0, 1]."""
    chicken_oceans: np.ndarray
    """(C, O) unit personality vectors (entries in [0, 1] unless ``personality_low`` < 0)."""
    robot_positions: np.ndarray
    """(R, 2) x, y in [0, 1]."""
    robot_oceans: np.ndarray
    """(R, O) unit personality vectors, like the chickens'."""


def _draw_shapes(config: YardConfig) -> list[tuple[int, int]]:
    """Shapes of the uniform draws that make a yard, in the order they are drawn:
    chicken positions, chicken OCEANs, robot positions, robot OCEANs. The order is
    the seeding contract: the same seed, the same yard."""
    c, r, o = config.num_chickens, config.num_robots, config.num_ocean_features
    return [(c, 2), (c, o), (r, 2), (r, o)]


def draw_count(config: YardConfig) -> int:
    """How many uniform doubles :func:`draw_yard` takes from its generator."""
    return sum(a * b for a, b in _draw_shapes(config))


def _layout(
    config: YardConfig,
    chicken_positions: np.ndarray,
    chicken_oceans: np.ndarray,
    robot_positions: np.ndarray,
    robot_oceans: np.ndarray,
) -> YardLayout:
    """A layout from the raw uniform draws: the OCEAN vectors become personalities."""
    return YardLayout(
        chicken_positions,
        personalities(chicken_oceans, config),
        robot_positions,
        personalities(robot_oceans, config),
    )


def draw_yard(rng: np.random.Generator, config: YardConfig) -> YardLayout:
    """Draw a new yard: uniform positions, uniform OCEAN vectors made personalities."""
    return _layout(config, *(rng.random(shape) for shape in _draw_shapes(config)))


def draw_yards(seeds: Sequence[int], config: YardConfig) -> YardLayout:
    """One yard per seed, each exactly as :func:`draw_yard` draws it with ``default_rng(seed)``.

    Made for speed, since a batch may hold 100,000 yards: each yard's generator is
    asked for its raw 64-bit outputs once, and those become the same doubles
    ``Generator.random`` makes of them (top 53 bits times 2**-53), for the whole
    batch at once. The tests hold this equal to :func:`draw_yard`.
    """
    shapes = _draw_shapes(config)
    sizes = [a * b for a, b in shapes]
    raw = np.stack([np.random.PCG64(int(s)).random_raw(sum(sizes)) for s in seeds])
    uniform = (raw >> np.uint64(11)).astype(np.float64) * (1.0 / 2**53)
    parts = np.split(uniform, np.cumsum(sizes)[:-1], axis=1)
    return _layout(
        config,
        *(part.reshape(len(seeds), *shape) for part, shape in zip(parts, shapes, strict=True)),
    )


def move_positions(positions: np.ndarray, directions: np.ndarray, amount: float) -> np.ndarray:
    """Positions (..., 2) after moving in directions (...), clipped to the unit square."""
    return np.clip(positions + DIRECTIONS[directions] * amount, 0.0, 1.0)


def compatibility(robot_oceans: np.ndarray, chicken_oceans: np.ndarray) -> np.ndarray:
    """(..., R, C) dot products of robot (..., R, O) and chicken (..., C, O) personalities."""
    return robot_oceans @ np.swapaxes(chicken_oceans, -1, -2)


def squared_distances(points: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances between (..., 2) points and (..., 2) targets."""
    dx = points[..., 0] - targets[..., 0]
    dy = points[..., 1] - targets[..., 1]
    dx *= dx
    dy *= dy
    dx += dy
    return dx


def distances(points: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Euclidean distances between (..., 2) points and (..., 2) targets."""
    return np.sqrt(squared_distances(points, targets))


def has_arrived(squared_distance: np.ndarray | float, config: YardConfig) -> np.ndarray | bool:
    """Within ``closeness_threshold``, decided on squared distances (no square root)."""
    return squared_distance <= config.closeness_threshold**2


class ChickenYard:
    """One chicken yard, robot by robot (robots are numbered from 0 here).

    A robot is *choosing* until it picks a chicken, then *moving* until it arrives
    at that chicken or the time limit ends the episode. The yard only keeps the
    rules; who acts when, and for what reward, is the adapter's business.
    """

    def __init__(self, config: YardConfig | None = None) -> None:
        self.config = config or YardConfig()
        self.layout: YardLayout | None = None
        self.positions = np.zeros((self.config.num_robots, 2))
        """(R, 2) robot positions now."""
        self.targets: list[int | None] = []
        """The chicken each robot chose, or None while it is choosing."""
        self.steps = 0
        """Steps taken since reset; the choosing step counts."""
        self.compatibilities = np.zeros((self.config.num_robots, self.config.num_chickens))
        """(R, C) compatibility of every robot with every chicken."""
        self._steps = (DIRECTIONS * self.config.move_amount).tolist()

    def reset(self, rng: np.random.Generator) -> None:
        self.layout = draw_yard(rng, self.config)
        self.positions = self.layout.robot_positions.copy()
        self.targets = [None] * self.config.num_robots
        self._targets_xy: list[tuple[float, float]] = [(0.0, 0.0)] * self.config.num_robots
        self.steps = 0
        self.compatibilities = compatibility(self.layout.robot_oceans, self.layout.chicken_oceans)

    def choose(self, robot: int, chicken: int) -> None:
        """The robot heads for this chicken from now on."""
        self.targets[robot] = chicken
        self._targets_xy[robot] = tuple(self.layout.chicken_positions[chicken].tolist())

    def move(self, robot: int, direction: int) -> bool:
        """Move one robot one step; True if that brought it to its chosen chicken."""
        # The arithmetic of `move_positions` and `squared_distances`, on plain floats:
        # NumPy costs microseconds per call on (2,) arrays, and the float operations
        # are the same, so the batched yard agrees to the last bit.
        step_x, step_y = self._steps[direction]
        x = min(max(self.positions[robot, 0] + step_x, 0.0), 1.0)
        y = min(max(self.positions[robot, 1] + step_y, 0.0), 1.0)
        self.positions[robot] = x, y
        dx, dy = x - self._targets_xy[robot][0], y - self._targets_xy[robot][1]
        return has_arrived(dx * dx + dy * dy, self.config)

    def tick(self) -> bool:
        """Count one step; True once the time limit is reached."""
        self.steps += 1
        return self.steps >= self.config.timeout

    def compatibility_of(self, robot: int) -> float:
        """Compatibility of a robot with the chicken it chose."""
        return float(self.compatibilities[robot, self.targets[robot]])

    def target_position(self, robot: int) -> np.ndarray:
        return self.layout.chicken_positions[self.targets[robot]]

    def heading(self, robot: int) -> tuple[float, float]:
        """Where the robot's chosen chicken stood when it chose; kept after the choice ends."""
        return self._targets_xy[robot]

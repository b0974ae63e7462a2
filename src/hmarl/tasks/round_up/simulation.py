"""The round-up as a plain simulation: the chicken yard over a fixed horizon, with respawns.

Same yard, robots, chickens, moves and arrival rule as
:mod:`hmarl.tasks.chicken_yard.simulation`, whose rules this module reuses rather than
restates; what it adds is the round-up's own: a robot that reaches the chicken it
chose *catches* it, the chicken is replaced at once by a new one (a fresh position
and personality, drawn from the episode's generator), and the robot chooses again.
A robot heading for a chicken that another robot catches first is *interrupted*
and chooses again too. Nothing here knows of agents, observations or RLlib:
:mod:`~hmarl.tasks.round_up.env` adapts it, and :mod:`~hmarl.tasks.round_up.batched`
runs the same rules over many yards at once.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeVar, get_args

import numpy as np

from hmarl.tasks.chicken_yard.simulation import (
    ChickenYard,
    EnvConfig,
    YardConfig,
    check_integers,
    check_numbers,
    check_yard_rules,
    compatibility,
    personalities,
)

Horizon = Literal["terminated", "truncated"]
HORIZONS: tuple[Horizon, ...] = get_args(Horizon)
"""The values of :attr:`RoundUpConfig.horizon`."""
Flags = TypeVar("Flags")


@dataclass(frozen=True)
class RoundUpConfig(EnvConfig):
    """Every constant of the round-up."""

    num_robots: int = 3
    """Robots in the yard; all of them share the high- and the low-level policy."""
    num_chickens: int = 10
    """Chickens in the yard at every moment: a caught one is replaced at once."""
    num_ocean_features: int = 5
    """Length of each personality vector (the OCEAN model has five traits)."""
    move_amount: float = 0.03
    """Step length along each axis a move names (diagonals move on both axes)."""
    closeness_threshold: float = 0.03
    """Euclidean distance to its chosen chicken at which a robot catches it."""
    step_reward: float = -0.001
    """Low-level reward for each move that does not catch."""
    arrival_reward: float = 1.0
    """Low-level reward for catching the chosen chicken."""
    episode_steps: int = 500
    """Environment steps per episode; then the episode ends (no penalty)."""
    horizon: Horizon = "terminated"
    """What the end of an episode is: "terminated", the task's own end (nothing lies
    beyond it; both levels observe the clock), or "truncated", a time limit outside the
    task (the last decisions' values bootstrap past it)."""
    personality_low: float = -1.0
    """Personality entries are uniform in [this, 1) before normalising; at -1 a catch can cost."""
    replan_every: int = 0
    """Decide again after this many moves towards one chicken without a catch (0: off)."""
    # The score is the team's: paid only for its own catches, a high level grabs what
    # suits it, claimed or not (0.85 of priced_greedy in 600 s, against 0.97 paid the
    # team's, both measured before the high level saw the other robots' personalities).
    team_reward: float = 1.0
    """Team share of a high level's reward: (1 - this) x own catch + this x mean catch."""

    def __post_init__(self) -> None:
        check_integers(self, ("num_robots", "num_chickens", "num_ocean_features", "episode_steps"))
        check_integers(self, ("replan_every",), minimum=0)
        rewards = ("step_reward", "arrival_reward", "team_reward")
        check_numbers(self, ("move_amount", "closeness_threshold", *rewards, "personality_low"))
        check_yard_rules(self)
        if self.horizon not in HORIZONS:
            raise ValueError(
                f"RoundUpConfig.horizon must be one of {', '.join(HORIZONS)}, got {self.horizon!r}"
            )
        if not 0 <= self.team_reward <= 1:
            raise ValueError(
                f"RoundUpConfig.team_reward must be in [0, 1] (a share), got {self.team_reward}"
            )

    def end_flags(self, ended: Flags, clear: Flags) -> tuple[Flags, Flags]:
        """(terminated, truncated) at the horizon: ``ended`` (the agents it ends) where
        :attr:`horizon` puts them, ``clear`` in the other."""
        return (ended, clear) if self.horizon == "terminated" else (clear, ended)

    def high_rewards(self, own: np.ndarray) -> np.ndarray:
        """High-level rewards (..., R) of one step from each robot's own catch (..., R)."""
        if not self.team_reward:
            return own
        team = own.mean(axis=-1, keepdims=True)
        return (1.0 - self.team_reward) * own + self.team_reward * team

    @functools.cached_property
    def yard(self) -> YardConfig:
        """The yard these rules run on, as the yard's helpers take it: its time limit is
        the episode's end, and it costs nothing."""
        return YardConfig(
            num_robots=self.num_robots,
            num_chickens=self.num_chickens,
            num_ocean_features=self.num_ocean_features,
            move_amount=self.move_amount,
            closeness_threshold=self.closeness_threshold,
            step_reward=self.step_reward,
            arrival_reward=self.arrival_reward,
            timeout_reward=0.0,
            timeout=self.episode_steps,
            personality_low=self.personality_low,
        )


def respawn_draws(config: RoundUpConfig) -> int:
    """How many uniform doubles one new chicken takes from the generator."""
    return 2 + config.num_ocean_features


def new_chickens(uniform: np.ndarray, config: RoundUpConfig) -> tuple[np.ndarray, np.ndarray]:
    """New chickens' positions (..., 2) and personalities (..., O) from (..., 2 + O) uniform
    draws, in that order: the seeding contract of respawns, as the yard's draw order is
    that of resets."""
    return uniform[..., :2], personalities(uniform[..., 2:], config.yard)


@dataclass
class Outcome:
    """What one step did; robots are numbered from 0."""

    moved: list[int] = field(default_factory=list)
    """Robots that made a move, in robot order."""
    caught: dict[int, float] = field(default_factory=dict)
    """Robot -> the compatibility of the chicken it caught."""
    interrupted: list[int] = field(default_factory=list)
    """Robots whose chosen chicken another robot caught on this step."""
    replanned: list[int] = field(default_factory=list)
    """Robots whose choice ran ``replan_every`` moves without a catch."""
    respawned: list[int] = field(default_factory=list)
    """Chickens replaced on this step, in the order they were drawn."""
    over: bool = False
    """The step reached ``episode_steps``."""


class RoundUp:
    """One round-up yard, step by step (robots are numbered from 0 here).

    A robot *decides* (no target) or is *heading* for the chicken it chose. Within a
    step, in this order:

    1. deciding robots choose their chicken (they do not move on this step);
    2. heading robots move, all at once;
    3. catches, in robot order: a robot that moved to within closeness_threshold of
       its chicken catches it, unless a robot before it caught that chicken on this
       step; the caught chicken is replaced at once (a draw from ``rng``);
    4. every other robot whose chicken was caught on this step is interrupted, the
       robots that chose it on this very step included;
    5. with ``replan_every``, a robot that has made that many moves towards its
       chicken without a catch is made to decide again;
    6. the clock ticks.

    Robots that caught, were interrupted or re-plan decide on the next step.
    """

    def __init__(self, config: RoundUpConfig | None = None) -> None:
        self.config = config or RoundUpConfig()
        self.yard = ChickenYard(self.config.yard)
        """The yard: layout, robot positions, chosen chickens, the clock."""
        r = self.config.num_robots
        self.catches = np.zeros(r, dtype=np.int64)
        """(R,) chickens caught since reset."""
        self.caught_compatibility = np.zeros(r)
        """(R,) compatibility of the chickens caught since reset, summed."""
        self.moves = np.zeros(r, dtype=np.int64)
        """(R,) moves made since reset."""
        self.option_moves = np.zeros(r, dtype=np.int64)
        """(R,) moves made towards the chicken chosen last."""

    @property
    def targets(self) -> list[int | None]:
        """The chicken each robot is heading for, or None while it decides."""
        return self.yard.targets

    @property
    def steps(self) -> int:
        return self.yard.steps

    def reset(self, rng: np.random.Generator) -> None:
        self.yard.reset(rng)
        for tally in (self.catches, self.caught_compatibility, self.moves, self.option_moves):
            tally[:] = 0

    def step(
        self, choices: Mapping[int, int], moves: Mapping[int, int], rng: np.random.Generator
    ) -> Outcome:
        """One step: robot -> chicken for the deciding robots, robot -> direction for the
        heading ones (see the class docstring for the order of events)."""
        yard, out = self.yard, Outcome()
        for robot, chicken in choices.items():
            yard.choose(robot, chicken)
            self.option_moves[robot] = 0
        arrived = set()
        for robot in sorted(moves):
            out.moved.append(robot)
            self.moves[robot] += 1
            self.option_moves[robot] += 1
            if yard.move(robot, moves[robot]):
                arrived.add(robot)

        taken: set[int] = set()
        for robot in out.moved:
            chicken = yard.targets[robot]
            if robot in arrived and chicken not in taken:
                taken.add(chicken)
                out.caught[robot] = yard.compatibility_of(robot)
                self.catches[robot] += 1
                self.caught_compatibility[robot] += out.caught[robot]
                self.respawn(chicken, rng)
                out.respawned.append(chicken)
        for robot, chicken in enumerate(yard.targets):
            if chicken in taken and robot not in out.caught:
                out.interrupted.append(robot)
        if self.config.replan_every:
            out.replanned = [
                robot
                for robot in out.moved
                if robot not in out.caught
                and robot not in out.interrupted
                and self.option_moves[robot] >= self.config.replan_every
            ]
        for robot in (*out.caught, *out.interrupted, *out.replanned):
            yard.targets[robot] = None
        out.over = yard.tick()
        return out

    def respawn(self, chicken: int, rng: np.random.Generator) -> None:
        """Replace a chicken by a new one at a random position with a fresh personality."""
        layout = self.yard.layout
        position, ocean = new_chickens(rng.random(respawn_draws(self.config)), self.config)
        layout.chicken_positions[chicken] = position
        layout.chicken_oceans[chicken] = ocean
        self.yard.compatibilities[:, chicken] = compatibility(layout.robot_oceans, ocean[None])[
            :, 0
        ]

    def others_targets(self, robot: int) -> np.ndarray:
        """(R - 1, C) 1.0 at the chicken each other robot is heading for, the others in
        robot order (a row of zeros for one that is deciding)."""
        targets = np.zeros((self.config.num_robots - 1, self.config.num_chickens))
        others = (chicken for other, chicken in enumerate(self.yard.targets) if other != robot)
        for row, chicken in enumerate(others):
            if chicken is not None:
                targets[row, chicken] = 1.0
        return targets

    def claimed(self, robot: int) -> np.ndarray:
        """(C,) 1.0 where another robot is heading for the chicken, else 0.0."""
        return self.others_targets(robot).max(axis=0, initial=0.0)

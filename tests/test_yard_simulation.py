"""The yard's rules and its config, without RLlib."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hmarl.tasks.chicken_yard.simulation import (
    DIRECTION_NAMES,
    DIRECTIONS,
    ChickenYard,
    YardConfig,
    draw_yard,
    draw_yards,
    move_positions,
    normalise,
)

SPEC_DEFAULTS = {
    "num_robots": 2,
    "num_chickens": 10,
    "num_ocean_features": 5,
    "move_amount": 0.03,
    "closeness_threshold": 0.03,
    "step_reward": -0.001,
    "arrival_reward": 1.0,
    "timeout_reward": -1.0,
    "timeout": 1000,
    "personality_low": 0.0,
}


def test_defaults_are_the_spec_table() -> None:
    assert YardConfig().to_dict() == SPEC_DEFAULTS


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("num_robots", 0),
        ("num_chickens", -1),
        ("num_ocean_features", 0),
        ("timeout", 0),
        ("num_robots", 2.5),
        ("num_chickens", True),
        ("timeout", "10"),
        ("move_amount", 0),
        ("move_amount", -0.03),
        ("move_amount", math.inf),
        ("closeness_threshold", -0.1),
        ("closeness_threshold", 0),
        ("move_amount", 50),
        ("step_reward", 0.01),
        ("closeness_threshold", math.nan),
        ("step_reward", math.nan),
        ("arrival_reward", math.nan),
        ("timeout_reward", math.inf),
        ("step_reward", "-0.001"),
        ("move_amount", True),
        ("arrival_reward", False),
        ("personality_low", 1.0),
        ("personality_low", -1.5),
        ("personality_low", math.nan),
    ],
)
def test_bad_values_are_refused_by_name(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"YardConfig\.{field}\b"):
        YardConfig(**{field: value})


def test_numpy_integers_are_counts() -> None:
    assert YardConfig(num_robots=np.int64(3)).num_robots == 3


def test_from_dict_refuses_unknown_keys() -> None:
    with pytest.raises(ValueError, match="num_robot, speed"):
        YardConfig.from_dict({"num_robot": 3, "speed": 1, "num_chickens": 4})
    assert YardConfig.from_dict({"num_chickens": 4}) == YardConfig(num_chickens=4)


def test_coerce() -> None:
    config = YardConfig(num_robots=3)
    assert YardConfig.coerce(None) == YardConfig()
    assert YardConfig.coerce(config) is config
    assert YardConfig.coerce({"num_robots": 3}) == config
    with pytest.raises(ValueError, match="YardConfig or a dict"):
        YardConfig.coerce([("num_robots", 3)])  # type: ignore[arg-type]


def test_oceans_are_unit_vectors_in_the_unit_cube() -> None:
    config = YardConfig(num_robots=3, num_chickens=7)
    for seed in range(20):
        layout = draw_yard(np.random.default_rng(seed), config)
        for oceans in (layout.chicken_oceans, layout.robot_oceans):
            np.testing.assert_allclose(np.linalg.norm(oceans, axis=-1), 1.0)
            assert ((oceans >= 0) & (oceans <= 1)).all()
        for positions in (layout.chicken_positions, layout.robot_positions):
            assert ((positions >= 0) & (positions <= 1)).all()
    assert layout.chicken_oceans.shape == (7, 5) and layout.robot_oceans.shape == (3, 5)
    assert layout.chicken_positions.shape == (7, 2) and layout.robot_positions.shape == (3, 2)


def test_personality_low_spreads_the_draws_and_leaves_the_default_untouched() -> None:
    config = YardConfig(num_robots=3, num_chickens=7)
    rng = np.random.default_rng(4)
    positions, oceans = rng.random((7, 2)), rng.random((7, 5))
    default = draw_yard(np.random.default_rng(4), config)
    assert np.array_equal(default.chicken_positions, positions)
    assert np.array_equal(default.chicken_oceans, normalise(oceans))  # bit for bit
    spread = draw_yard(
        np.random.default_rng(4), YardConfig(num_robots=3, num_chickens=7, personality_low=-1.0)
    )
    np.testing.assert_allclose(np.linalg.norm(spread.chicken_oceans, axis=-1), 1.0)
    np.testing.assert_allclose(spread.chicken_oceans, normalise(2 * oceans - 1))
    assert (spread.chicken_oceans < 0).any()
    many = draw_yards(range(3), YardConfig(personality_low=-1.0))
    one = draw_yard(np.random.default_rng(2), YardConfig(personality_low=-1.0))
    assert np.array_equal(many.robot_oceans[2], one.robot_oceans)


# y grows downward: north is -y.
EXPECTED_STEPS = {
    "N": (0, -1),
    "NE": (1, -1),
    "E": (1, 0),
    "SE": (1, 1),
    "S": (0, 1),
    "SW": (-1, 1),
    "W": (-1, 0),
    "NW": (-1, -1),
}


@pytest.mark.parametrize("direction", range(8))
def test_moves(direction: int) -> None:
    dx, dy = EXPECTED_STEPS[DIRECTION_NAMES[direction]]
    start = np.array([0.5, 0.5])
    after = move_positions(start, np.int64(direction), 0.03)
    np.testing.assert_allclose(after, [0.5 + 0.03 * dx, 0.5 + 0.03 * dy])


def test_moves_clip_at_the_borders() -> None:
    corners = np.array([[0.0, 0.0], [1.0, 1.0], [0.01, 0.99]])
    north_west = move_positions(corners, np.full(3, DIRECTION_NAMES.index("NW")), 0.03)
    south_east = move_positions(corners, np.full(3, DIRECTION_NAMES.index("SE")), 0.03)
    np.testing.assert_allclose(north_west, [[0.0, 0.0], [0.97, 0.97], [0.0, 0.96]])
    np.testing.assert_allclose(south_east, [[0.03, 0.03], [1.0, 1.0], [0.04, 1.0]])
    assert DIRECTIONS.shape == (8, 2)


def make_yard(**overrides: object) -> ChickenYard:
    yard = ChickenYard(YardConfig(**{"num_robots": 1, "num_chickens": 2, **overrides}))
    yard.reset(np.random.default_rng(0))
    yard.layout.chicken_positions[:] = [[0.5, 0.5], [0.5, 0.55]]
    yard.positions[0] = [0.5, 0.47]  # near chicken 0, 0.08 north of chicken 1
    return yard


def test_arrival_only_at_the_chosen_chicken() -> None:
    yard = make_yard()
    yard.choose(0, 1)
    assert not yard.move(0, DIRECTION_NAMES.index("W"))  # beside chicken 0: nothing
    yard.positions[0] = [0.5, 0.5]  # standing on chicken 0
    assert not yard.move(0, DIRECTION_NAMES.index("E"))
    yard.positions[0] = [0.5, 0.5]
    assert yard.move(0, DIRECTION_NAMES.index("S"))  # 0.02 from chicken 1
    assert yard.compatibility_of(0) == pytest.approx(
        float(yard.layout.robot_oceans[0] @ yard.layout.chicken_oceans[1])
    )


def test_tick_reaches_the_time_limit() -> None:
    yard = make_yard(timeout=3)
    assert [yard.tick() for _ in range(3)] == [False, False, True]

"""The yard's frames, drawn off-screen with pygame: no display needed."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from hmarl.tasks.chicken_yard.env import ChickenYardEnv
from hmarl.tasks.chicken_yard.render import SCALE, YardRenderer, compatibility_colour
from hmarl.tasks.chicken_yard.simulation import YardConfig

CONFIG = YardConfig(num_robots=2, num_chickens=5)


def test_frame_is_an_rgb_picture_of_the_yard() -> None:
    env = ChickenYardEnv(CONFIG)
    env.reset(seed=0)
    renderer = YardRenderer(CONFIG)
    renderer.draw(env, dict.fromkeys(env.possible_agents, 0.0))
    before = renderer.frame()
    assert before.shape == (renderer.height, renderer.width, 3) == (renderer.height, 640, 3)
    assert before.dtype == np.uint8
    assert renderer.height > 640 and renderer.height % 16 == 0
    assert len(np.unique(before.reshape(-1, 3), axis=0)) > 50  # not blank

    env.step({a: 0 for a in env.due_agents})
    env.step({a: 4 for a in env.due_agents})
    renderer.draw(env, {"robot_1_low": -0.001, "robot_2_low": -0.001})
    assert (renderer.frame() != before).any()


def test_draw_refuses_an_unreset_or_mismatched_env() -> None:
    renderer = YardRenderer(CONFIG)
    with pytest.raises(ValueError, match="reset the env"):
        renderer.draw(ChickenYardEnv(CONFIG), {})
    other = ChickenYardEnv(YardConfig(num_robots=3))
    other.reset(seed=0)
    with pytest.raises(ValueError, match="draws 2 robots and 5 chickens"):
        renderer.draw(other, {})


def test_compatibility_colours_run_red_to_green() -> None:
    assert compatibility_colour(0.2, 0.2, 0.9) == SCALE[0]
    assert compatibility_colour(0.9, 0.2, 0.9) == SCALE[2]
    assert compatibility_colour(0.5, 0.5, 0.5) == SCALE[1]


def test_missing_pygame_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pygame", None)  # makes `import pygame` fail
    with pytest.raises(RuntimeError, match="pip install pygame"):
        YardRenderer(CONFIG)

"""Frames, GIF/MP4 files and the live window of :mod:`hmarl.render`, all without a screen."""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageSequence

from hmarl import render
from hmarl.baselines import OraclePolicy, RandomPolicy
from hmarl.evaluation import play_episode
from hmarl.render import SCALE, YardRenderer, compatibility_colour, record, watch_live
from hmarl.simulation import YardConfig
from hmarl.yard import ChickenYardEnv

CONFIG = YardConfig(num_robots=2, num_chickens=5)


@pytest.fixture(autouse=True)
def offscreen(monkeypatch: pytest.MonkeyPatch) -> None:
    # SDL's dummy video driver: a "window" that needs no display.
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setattr(render, "HOLD_SECONDS", 0.05)


def gif_frames(path: Path) -> list[int]:
    """The duration of each frame in a GIF, in milliseconds."""
    with Image.open(path) as gif:
        return [frame.info["duration"] for frame in ImageSequence.Iterator(gif)]


def episode_steps(config: YardConfig, seeds: list[int]) -> list[int]:
    env = ChickenYardEnv(config)
    return [play_episode(env, OraclePolicy(config), s).steps for s in seeds]


# -- frames ---------------------------------------------------------------------


def test_frame_is_an_rgb_picture_of_the_yard() -> None:
    env = ChickenYardEnv(CONFIG)
    env.reset(seed=0)
    renderer = YardRenderer(CONFIG)
    renderer.draw(env, dict.fromkeys(env.possible_agents, 0.0), "seed 0")
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


def test_play_episode_calls_back_after_reset_and_every_step() -> None:
    env = ChickenYardEnv(CONFIG)
    seen: list[int] = []
    with_hook = play_episode(
        env, OraclePolicy(CONFIG), 3, on_step=lambda e, r: seen.append(e.yard.steps)
    )
    assert seen == list(range(with_hook.steps + 1))
    assert play_episode(env, OraclePolicy(CONFIG), 3) == with_hook


# -- files ----------------------------------------------------------------------


def test_record_writes_a_frame_per_step_and_holds_the_last(tmp_path: Path) -> None:
    seeds = [0, 1]
    out = tmp_path / "yard.gif"
    written = record(OraclePolicy(CONFIG), CONFIG, seeds, out, fps=10)

    steps = episode_steps(CONFIG, seeds)
    assert written == sum(s + 1 for s in steps)  # the reset frame, then one per step
    durations = gif_frames(out)
    assert len(durations) == written
    ends = np.cumsum([s + 1 for s in steps]) - 1
    hold = 100 + round(render.HOLD_SECONDS * 1000)
    assert [durations[i] for i in ends] == [hold, hold]
    assert set(np.delete(durations, ends)) == {100}
    assert os.listdir(tmp_path) == ["yard.gif"]  # no temporary file left


def test_max_frames_makes_a_time_lapse(tmp_path: Path) -> None:
    config = YardConfig(num_chickens=5, timeout=60)
    out = tmp_path / "long.gif"
    written = record(RandomPolicy(config, seed=0), config, [0, 1], out, max_frames=10)
    assert written == 20 == len(gif_frames(out))


def test_record_refuses_bad_arguments(tmp_path: Path) -> None:
    policy = OraclePolicy(CONFIG)
    with pytest.raises(ValueError, match=r"unknown suffix '\.png'"):
        record(policy, CONFIG, [0], tmp_path / "yard.png")
    with pytest.raises(ValueError, match="fps"):
        record(policy, CONFIG, [0], tmp_path / "yard.gif", fps=0)
    with pytest.raises(ValueError, match="max_frames"):
        record(policy, CONFIG, [0], tmp_path / "yard.gif", max_frames=1)
    assert os.listdir(tmp_path) == []


def test_record_names_a_directory_it_cannot_write(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "yard.gif"
    with pytest.raises(ValueError, match=f"{re.escape(str(missing.parent))} does not exist"):
        record(OraclePolicy(CONFIG), CONFIG, [0], missing)
    afile = tmp_path / "afile"
    afile.write_text("")
    with pytest.raises(ValueError, match="is not a directory"):
        record(OraclePolicy(CONFIG), CONFIG, [0], afile / "yard.gif")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write anywhere")
def test_record_refuses_a_read_only_directory(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(PermissionError, match=re.escape(str(locked))):
            record(OraclePolicy(CONFIG), CONFIG, [0], locked / "yard.gif")
    finally:
        locked.chmod(0o700)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "yard.gif"
    out.write_bytes(b"the previous recording")

    def half_write(path: Path, frames: object, fps: int) -> int:
        path.write_bytes(b"GIF89a, then the disk filled up")
        raise OSError("disk full")

    monkeypatch.setattr(render, "_write_gif", half_write)
    with pytest.raises(OSError, match="disk full"):
        record(OraclePolicy(CONFIG), CONFIG, [0], out)
    assert out.read_bytes() == b"the previous recording"
    assert os.listdir(tmp_path) == ["yard.gif"]


def test_mp4_without_ffmpeg_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "imageio_ffmpeg" else real_find_spec(name, *a),
    )
    with pytest.raises(RuntimeError, match=r"pip install imageio-ffmpeg, or use \.gif"):
        record(OraclePolicy(CONFIG), CONFIG, [0], tmp_path / "yard.mp4")
    assert os.listdir(tmp_path) == []


def test_mp4_holds_the_last_frame_by_repeating_it(tmp_path: Path) -> None:
    pytest.importorskip("imageio_ffmpeg")
    import imageio.v2 as imageio

    out = tmp_path / "yard.mp4"
    written = record(OraclePolicy(CONFIG), CONFIG, [0], out, fps=10)
    assert written == episode_steps(CONFIG, [0])[0] + 1 + round(render.HOLD_SECONDS * 10)
    with imageio.get_reader(out, format="FFMPEG") as video:
        assert sum(1 for _ in video) == written


# -- pygame and the window ------------------------------------------------------


def test_missing_pygame_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pygame", None)  # makes `import pygame` fail
    with pytest.raises(RuntimeError, match="pip install pygame"):
        YardRenderer(CONFIG)


def test_no_display_suggests_a_file(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SDL_VIDEODRIVER", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    with pytest.raises(RuntimeError, match=r"no display.*--out FILE\.gif \(or \.mp4\)"):
        watch_live(OraclePolicy(CONFIG), CONFIG, [0])
    YardRenderer(CONFIG).frame()  # off-screen drawing needs no display


def test_watch_live_plays_the_episodes_and_closes() -> None:
    import pygame

    config = YardConfig(num_chickens=5, timeout=6)
    watch_live(RandomPolicy(config, seed=0), config, [0, 1], fps=200)
    assert not pygame.display.get_init()


def test_escape_stops_watching_at_once() -> None:
    import pygame

    class PressesEscape(OraclePolicy):
        lows = 0

        def high(self, obs: dict[str, np.ndarray]) -> np.ndarray:
            pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_ESCAPE))
            return super().high(obs)

        def low(self, obs: dict[str, np.ndarray]) -> np.ndarray:
            self.lows += 1
            return super().low(obs)

    policy = PressesEscape(CONFIG)
    watch_live(policy, CONFIG, [0, 1], fps=200)
    assert policy.lows == 0  # the frame after the choice saw the key: nobody moved
    assert not pygame.display.get_init()

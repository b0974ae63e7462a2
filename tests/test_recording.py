"""Watching any task: GIF/MP4 files and the live window of :mod:`hmarl.recording`, screenless.

Run on the tiny corridor task (not the yard): the recorder knows no task.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageSequence
from tiny_task import TASK

from hmarl import recording
from hmarl.evaluation import baseline_policies, play_episode
from hmarl.recording import FrameKeeper, record, watch_live
from hmarl.task import TaskError

CONFIG = {"limit": 20}


@pytest.fixture(autouse=True)
def offscreen(monkeypatch: pytest.MonkeyPatch) -> None:
    # SDL's dummy video driver: a "window" that needs no display.
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setattr(recording, "HOLD_SECONDS", 0.05)


def random_policy(seed: int = 0):
    return baseline_policies(TASK, CONFIG, seed)["random"]


def gif_frames(path: Path) -> list[int]:
    """The duration of each frame in a GIF, in milliseconds."""
    with Image.open(path) as gif:
        return [frame.info["duration"] for frame in ImageSequence.Iterator(gif)]


def episode_steps(seeds: list[int]) -> list[int]:
    """Episode lengths as :func:`record` plays them: one policy through all the seeds."""
    env, policy = TASK.make_env(CONFIG), random_policy()
    return [play_episode(TASK, env, policy, s).steps for s in seeds]


def test_play_episode_calls_back_after_reset_and_every_step() -> None:
    env = TASK.make_env(CONFIG)
    seen: list[tuple[int, bool]] = []
    episode = play_episode(
        TASK, env, random_policy(), 3, on_step=lambda r, o: seen.append((r.steps, o))
    )
    assert [s for s, _ in seen] == list(range(episode.steps + 1))
    assert [o for _, o in seen] == [False] * episode.steps + [True]
    assert play_episode(TASK, env, random_policy(), 3) == episode


def test_record_writes_a_frame_per_step_and_holds_the_last(tmp_path: Path) -> None:
    seeds = [0, 1]
    out = tmp_path / "corridor.gif"
    written = record(TASK, CONFIG, random_policy(), seeds, out, fps=10)

    steps = episode_steps(seeds)
    assert written == sum(s + 1 for s in steps)  # the reset frame, then one per step
    durations = gif_frames(out)
    assert len(durations) == written
    ends = np.cumsum([s + 1 for s in steps]) - 1
    hold = 100 + round(recording.HOLD_SECONDS * 1000)
    assert [durations[i] for i in ends] == [hold, hold]
    assert set(np.delete(durations, ends)) == {100}
    assert os.listdir(tmp_path) == ["corridor.gif"]  # no temporary file left


def test_frames_carry_a_caption_and_a_video_friendly_height(tmp_path: Path) -> None:
    out = tmp_path / "corridor.gif"
    record(TASK, CONFIG, random_policy(), [0], out)
    with Image.open(out) as gif:
        assert gif.size[1] % 16 == 0 and gif.size[1] > 16  # frame plus caption


def test_long_episodes_become_time_lapses(tmp_path: Path) -> None:
    config = {"limit": 200}
    policy = baseline_policies(TASK, config, 0)["random"]
    out = tmp_path / "long.gif"
    written = record(TASK, config, policy, [0, 1], out, max_frames=10)
    assert written <= 20 == 2 * 10 and written == len(gif_frames(out))


def test_frame_keeper_keeps_first_last_and_even_spacing() -> None:
    keeper = FrameKeeper(8)
    for step in range(100):
        if keeper.wanted(step):
            keeper.offer(step, np.full(1, step))
    keeper.offer(100, np.full(1, 100), last=True)
    steps = [int(f[0]) for f in keeper.frames]
    assert steps[0] == 0 and steps[-1] == 100 and len(steps) <= 8
    assert len(set(np.diff(steps[:-1]))) == 1  # evenly spaced, but for the last


def test_record_refuses_bad_arguments(tmp_path: Path) -> None:
    policy = random_policy()
    with pytest.raises(ValueError, match=r"unknown suffix '\.png'"):
        record(TASK, CONFIG, policy, [0], tmp_path / "x.png")
    with pytest.raises(ValueError, match="fps"):
        record(TASK, CONFIG, policy, [0], tmp_path / "x.gif", fps=0)
    with pytest.raises(ValueError, match="max_frames"):
        record(TASK, CONFIG, policy, [0], tmp_path / "x.gif", max_frames=1)
    assert os.listdir(tmp_path) == []


def test_a_task_without_a_renderer_says_so(tmp_path: Path) -> None:
    with pytest.raises(TaskError, match="task corridor has no renderer"):
        record(TASK, {"render": "no"}, random_policy(), [0], tmp_path / "x.gif")
    assert os.listdir(tmp_path) == []


def test_record_names_a_directory_it_cannot_write(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "x.gif"
    with pytest.raises(ValueError, match=f"{re.escape(str(missing.parent))} does not exist"):
        record(TASK, CONFIG, random_policy(), [0], missing)
    afile = tmp_path / "afile"
    afile.write_text("")
    with pytest.raises(ValueError, match="is not a directory"):
        record(TASK, CONFIG, random_policy(), [0], afile / "x.gif")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write anywhere")
def test_record_refuses_a_read_only_directory(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(PermissionError, match=re.escape(str(locked))):
            record(TASK, CONFIG, random_policy(), [0], locked / "x.gif")
    finally:
        locked.chmod(0o700)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "x.gif"
    out.write_bytes(b"the previous recording")

    def half_write(path: Path, frames: object, fps: int) -> int:
        path.write_bytes(b"GIF89a, then the disk filled up")
        raise OSError("disk full")

    monkeypatch.setattr(recording, "_write_gif", half_write)
    with pytest.raises(OSError, match="disk full"):
        record(TASK, CONFIG, random_policy(), [0], out)
    assert out.read_bytes() == b"the previous recording"
    assert os.listdir(tmp_path) == ["x.gif"]


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
        record(TASK, CONFIG, random_policy(), [0], tmp_path / "x.mp4")
    assert os.listdir(tmp_path) == []


def test_mp4_holds_the_last_frame_by_repeating_it(tmp_path: Path) -> None:
    pytest.importorskip("imageio_ffmpeg")
    import imageio.v2 as imageio

    out = tmp_path / "x.mp4"
    written = record(TASK, CONFIG, random_policy(), [0], out, fps=10)
    assert written == episode_steps([0])[0] + 1 + round(recording.HOLD_SECONDS * 10)
    with imageio.get_reader(out, format="FFMPEG") as video:
        assert sum(1 for _ in video) == written


def test_no_display_suggests_a_file(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SDL_VIDEODRIVER", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    with pytest.raises(RuntimeError, match=r"no display.*--out FILE\.gif \(or \.mp4\)"):
        watch_live(TASK, CONFIG, random_policy(), [0])


def test_watch_live_plays_the_episodes_and_closes() -> None:
    import pygame

    watch_live(TASK, CONFIG, random_policy(), [0, 1], fps=200)
    assert not pygame.display.get_init()


def test_escape_stops_watching_at_once() -> None:
    import pygame

    class PressesEscape:
        walks = 0

        def act(self, policy_id: str, obs: np.ndarray) -> np.ndarray:
            if policy_id == "planner":
                pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_ESCAPE))
                return np.zeros(len(obs), dtype=np.int64)
            self.walks += 1
            return np.ones(len(obs), dtype=np.int64)

    policy = PressesEscape()
    watch_live(TASK, CONFIG, policy, [0, 1], fps=200)
    assert policy.walks == 0  # the frame after the plan saw the key: nobody walked
    assert not pygame.display.get_init()

"""Watching any task: episodes as GIF/MP4 files, or live in a pygame window.

A task shows itself the Gymnasium way: its env lists ``"rgb_array"`` in
``metadata["render_modes"]`` and, once ``env.render_mode = "rgb_array"``,
``render()`` returns an (H, W, 3) uint8 frame. This module plays episodes with any
policy, takes a frame after the reset and after each step, adds a caption (task,
seed, episode, step), and writes the frames to a file or shows them in a window.
It knows nothing of any task.

Files are written whole or not at all (a hidden temporary file, then a rename).
Long episodes become time-lapses: at most ``max_frames`` frames per episode are
kept, evenly spaced, the first and the last always among them.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from hmarl.evaluation import play_episode
from hmarl.task import Policy, Task, TaskError

#: How long the last frame of each episode stays up, in files and in the window.
HOLD_SECONDS = 1.0
#: The file types :func:`record` writes.
SUFFIXES = (".gif", ".mp4")
#: The default cap on frames per episode (a 1000-step episode becomes a time-lapse).
DEFAULT_MAX_FRAMES = 300
CAPTION_HEIGHT = 28
MIN_WIDTH = 320
"""Narrower frames are scaled up (whole pixels): to be seen, and to fit their caption."""

NO_DISPLAY = (
    "no display was found for a live window; "
    "pass --out FILE.gif (or .mp4) to write the episodes to a file instead"
)


def import_pygame() -> ModuleType:
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    try:
        import pygame
    except ImportError as err:
        raise RuntimeError("drawing needs pygame: pip install pygame") from err
    return pygame


def rendering_env(task: Task, env_config: dict[str, Any]) -> Any:
    """The task's env, set to render frames; a TaskError if it cannot."""
    from hmarl.task_env import make_task_env

    env = make_task_env(task, env_config)
    if "rgb_array" not in (getattr(env, "metadata", None) or {}).get("render_modes", []):
        raise TaskError(
            f"task {task.name} has no renderer: its env does not list 'rgb_array' in "
            "metadata['render_modes']"
        )
    env.render_mode = "rgb_array"
    return env


class FrameKeeper:
    """Keeps at most ``limit`` frames of an episode, evenly spaced, first and last included.

    Frames are offered step by step; ``wanted(step)`` says whether a frame is worth
    drawing at all. When the keeper is full, every other kept frame goes and the
    spacing doubles, so memory stays bounded however long the episode.
    """

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.stride = 1
        self.kept: list[tuple[int, np.ndarray]] = []

    def wanted(self, step: int) -> bool:
        return step % self.stride == 0

    def offer(self, step: int, frame: np.ndarray, last: bool = False) -> None:
        if last:
            if self.kept and self.kept[-1][0] == step:
                self.kept.pop()
            self.kept.append((step, frame))
            return
        if not self.wanted(step) or (self.kept and self.kept[-1][0] == step):
            return  # (a decision that took no world time leaves the picture as it was)
        self.kept.append((step, frame))
        # One place stays free for the last frame.
        while self.limit is not None and len(self.kept) >= self.limit:
            self.stride *= 2
            self.kept = [(s, f) for s, f in self.kept if s % self.stride == 0]

    @property
    def frames(self) -> list[np.ndarray]:
        return [frame for _, frame in self.kept]


def episode_frames(
    task: Task,
    env: Any,
    policy: Policy,
    seed: int,
    caption: str,
    max_frames: int | None = DEFAULT_MAX_FRAMES,
    on_frame: Callable[[np.ndarray], None] | None = None,
) -> list[np.ndarray]:
    """Play one episode; its frames (captioned), or each passed to ``on_frame`` as drawn."""
    keeper = FrameKeeper(max_frames if on_frame is None else 2)

    def take(run: Any, over: bool) -> None:
        if not (over or keeper.wanted(run.steps) or on_frame is not None):
            return
        frame = with_caption(env.render(), f"{caption}  ·  step {run.steps}")
        if on_frame is not None:
            on_frame(frame)
        keeper.offer(run.steps, frame, last=over)

    play_episode(task, env, policy, seed, on_step=take)
    return keeper.frames


def with_caption(frame: np.ndarray, text: str) -> np.ndarray:
    """The frame under a caption strip; the height padded to a multiple of 16 for video.

    The caption holds the step count, so consecutive frames always differ (a GIF
    encoder merges identical ones).
    """
    from PIL import Image, ImageDraw

    frame = np.asarray(frame, dtype=np.uint8)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise TaskError(f"render() returned an array of shape {frame.shape}, not (H, W, 3)")
    scale = -(-MIN_WIDTH // frame.shape[1])
    if scale > 1:
        frame = frame.repeat(scale, axis=0).repeat(scale, axis=1)
    height, width = frame.shape[:2]
    total = -(-(height + CAPTION_HEIGHT) // 16) * 16
    image = Image.new("RGB", (width, total), (40, 40, 40))
    image.paste(Image.fromarray(frame), (0, total - height))
    ImageDraw.Draw(image).text((8, 7), text, fill=(235, 235, 235))
    return np.asarray(image)


def record(
    task: Task,
    env_config: dict[str, Any],
    policy: Policy,
    seeds: Sequence[int],
    out: Path,
    fps: int = 10,
    *,
    max_frames: int | None = DEFAULT_MAX_FRAMES,
) -> int:
    """Play one episode per seed and write them to a GIF or MP4 file; the frames written.

    Each episode's last frame stays up :data:`HOLD_SECONDS` more: in a GIF by its
    duration (so the file holds exactly the drawn frames), in an MP4 by repeating it
    ``round(HOLD_SECONDS * fps)`` times. GIF frame times are kept in hundredths of a
    second, so keep ``fps`` at 50 or less for GIFs.

    Raises ValueError for an unknown suffix or a missing directory, PermissionError
    for a directory that cannot be written, RuntimeError for MP4 without ffmpeg,
    TaskError for a task without a renderer.
    """
    out = Path(out)
    suffix = check_output(out)
    if isinstance(fps, bool) or not isinstance(fps, int) or fps < 1:
        raise ValueError(f"fps must be a whole number of at least 1, got {fps!r}")
    if max_frames is not None and max_frames < 2:
        raise ValueError(f"max_frames must be at least 2 (or None for all), got {max_frames}")
    if suffix == ".mp4" and importlib.util.find_spec("imageio_ffmpeg") is None:
        raise RuntimeError("MP4 needs imageio-ffmpeg: pip install imageio-ffmpeg, or use .gif")
    if not seeds:
        raise ValueError("no seeds given: nothing to record")
    env = rendering_env(task, env_config)
    episodes = [
        episode_frames(
            task, env, policy, int(seed), _caption(task, seed, n, len(seeds)), max_frames
        )
        for n, seed in enumerate(seeds, 1)
    ]

    # Each frame comes with the seconds it is held beyond its 1 / fps.
    def frames() -> Iterator[tuple[np.ndarray, float]]:
        for episode in episodes:
            for i, frame in enumerate(episode):
                yield frame, HOLD_SECONDS if i == len(episode) - 1 else 0.0

    write = _write_gif if suffix == ".gif" else _write_mp4
    return _write_atomically(out, lambda path: write(path, frames(), fps))


def _caption(task: Task, seed: int, number: int, count: int) -> str:
    return f"{task.name}  ·  seed {seed}  ·  episode {number}/{count}"


def check_output(out: Path) -> str:
    """The output file's suffix, after checking it can be written."""
    suffix = out.suffix.lower()
    if suffix not in SUFFIXES:
        known = " or ".join(SUFFIXES)
        raise ValueError(f"cannot write {out}: unknown suffix {out.suffix!r}, use {known}")
    parent = out.parent
    if not parent.exists():
        raise ValueError(f"cannot write {out}: the directory {parent} does not exist")
    if not parent.is_dir():
        raise ValueError(f"cannot write {out}: {parent} is not a directory")
    if out.is_dir():
        raise ValueError(f"cannot write {out}: it is a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot write {out}: no permission to write in {parent}")
    return suffix


def _write_atomically(out: Path, write: Callable[[Path], int]) -> int:
    """``write`` a hidden file beside ``out``, then rename it: never a half-written ``out``."""
    temp = out.with_name(f".{out.stem}.{secrets.token_hex(4)}.partial{out.suffix}")
    try:
        # Made by us, with the usual permissions (tempfile's would be private).
        os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as err:
        raise OSError(f"cannot write {out}: {err.strerror} ({temp})") from err
    try:
        count = write(temp)
        os.replace(temp, out)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return count


def _write_gif(path: Path, frames: Iterator[tuple[np.ndarray, float]], fps: int) -> int:
    # Pillow directly (imageio's GIF plugin is Pillow too): it takes the frames as a
    # stream and a duration per frame, which holds the last frame of each episode.
    from PIL import Image

    count = 0

    def images() -> Iterator[Image.Image]:
        nonlocal count
        palette = None
        for rgb, held in frames:
            image = Image.fromarray(rgb)
            # One palette for the file, from the first frame: ten times faster than a
            # palette per frame.
            if palette is None:
                palette = image.quantize(256, method=Image.Quantize.MEDIANCUT)
            image = image.quantize(palette=palette, dither=Image.Dither.NONE)
            image.info["duration"] = round(1000 / fps + held * 1000)
            count += 1
            yield image

    stream = images()
    first = next(stream)
    first.save(path, format="GIF", save_all=True, append_images=stream, loop=0)
    return count


def _write_mp4(path: Path, frames: Iterator[tuple[np.ndarray, float]], fps: int) -> int:
    import imageio.v2 as imageio

    count = 0
    with imageio.get_writer(path, format="FFMPEG", fps=fps, codec="libx264") as writer:
        for rgb, held in frames:
            for _ in range(1 + round(held * fps)):
                writer.append_data(rgb)
                count += 1
    return count


# -- a live window -------------------------------------------------------------------


class _WindowClosed(Exception):
    """The user closed the window: stop the episode being played."""


class Window:
    """A pygame window that shows frames, at most ``fps`` a second.

    Made only with a display; otherwise a RuntimeError says to write a file.
    """

    def __init__(self, fps: int) -> None:
        pg = import_pygame()
        # Without a display SDL may fail late or pick a driver that shows nothing;
        # say so up front. A chosen SDL_VIDEODRIVER (dummy, kmsdrm, ...) is taken at
        # its word.
        if (
            sys.platform.startswith("linux")
            and not os.environ.get("SDL_VIDEODRIVER")
            and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
        ):
            raise RuntimeError(NO_DISPLAY)
        try:
            pg.display.init()
        except pg.error as err:
            pg.display.quit()
            raise RuntimeError(f"{NO_DISPLAY} (pygame: {err})") from err
        self.pg, self.fps = pg, fps
        self.surface: Any = None
        self.clock = pg.time.Clock()
        self.open = True

    def show(self, frame: np.ndarray) -> None:
        """Show a frame; raises _WindowClosed once the window is closed or Escape pressed."""
        pg = self.pg
        for event in pg.event.get():
            if event.type == pg.QUIT or (event.type == pg.KEYDOWN and event.key == pg.K_ESCAPE):
                self.close()
        if not self.open:
            raise _WindowClosed
        height, width = frame.shape[:2]
        if self.surface is None or self.surface.get_size() != (width, height):
            self.surface = pg.display.set_mode((width, height))
            pg.display.set_caption("hmarl")
        pg.surfarray.blit_array(self.surface, np.ascontiguousarray(frame.swapaxes(0, 1)))
        pg.display.flip()
        self.clock.tick(self.fps)

    def close(self) -> None:
        if self.open:
            self.pg.display.quit()
            self.open = False


def watch_live(
    task: Task, env_config: dict[str, Any], policy: Policy, seeds: Sequence[int], fps: int = 10
) -> None:
    """Play one episode per seed in a pygame window, ``fps`` steps a second.

    Each episode's last frame stays up for :data:`HOLD_SECONDS`. Closing the window
    or pressing Escape stops at once. Raises RuntimeError when there is no display.
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    env = rendering_env(task, env_config)
    window = Window(fps)
    try:
        for number, seed in enumerate(seeds, 1):
            caption = _caption(task, seed, number, len(seeds))
            last = episode_frames(task, env, policy, int(seed), caption, on_frame=window.show)
            for _ in range(round(HOLD_SECONDS * fps)):
                window.show(last[-1] if last else np.zeros((1, 1, 3), np.uint8))
    except _WindowClosed:
        pass
    finally:
        window.close()

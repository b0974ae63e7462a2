"""Tables and lines for people: what the command line prints."""

from __future__ import annotations

import math
import time

from rich.console import Console
from rich.table import Table

from hmarl.evaluation import Episode, Metrics
from hmarl.metrics import COMPATIBILITY, SUCCESS

console = Console(highlight=False)


def _num(value: float, digits: int = 3) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def print_episode(episode: Episode) -> None:
    rewards = "  ".join(f"{agent} {value:+.3f}" for agent, value in episode.returns.items())
    console.print(f"episode seed {episode.seed}: {episode.steps} steps  {rewards}", soft_wrap=True)


def print_metrics_table(
    rows: dict[str, Metrics], title: str, normalized: float | None = None
) -> None:
    table = Table(title=title)
    table.add_column("policy")
    table.add_column("mean compatibility", justify="right")
    table.add_column("success rate", justify="right")
    table.add_column("mean steps to arrive", justify="right")
    for name, m in rows.items():
        table.add_row(name, _num(m.mean_compatibility), _num(m.success_rate), _num(m.mean_steps, 1))
    console.print(table)
    if normalized is not None:
        console.print(f"normalised high-level score: {normalized:.3f} (0 = random, 1 = oracle)")


class TrainingProgress:
    """One line per training iteration, under a progress bar when on a terminal."""

    def __init__(self, stop_iters: int | None, time_budget: float | None, started: float) -> None:
        from rich.progress import BarColumn, Progress, TextColumn

        self.start = started
        self.time_budget = time_budget
        # The bar counts iterations when there is a count, otherwise seconds.
        self.total = stop_iters or time_budget
        self.by_iterations = stop_iters is not None
        self._progress = Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        )
        self._task = self._progress.add_task("training", total=self.total)
        self._last_steps, self._last_time = 0.0, time.monotonic()
        self._progress.start()

    def update(self, result: dict) -> None:
        runners = result.get("env_runners", {})
        returns = runners.get("module_episode_returns_mean", {})
        now = time.monotonic()
        steps = float(result.get("num_env_steps_sampled_lifetime", 0.0))
        rate = (steps - self._last_steps) / max(now - self._last_time, 1e-9)
        self._last_steps, self._last_time = steps, now
        elapsed = now - self.start
        left = None if self.time_budget is None else max(0.0, self.time_budget - elapsed)
        line = (
            f"iter {result['training_iteration']:>4}"
            f"  return high {_num(returns.get('high_level_policy', math.nan), 2):>6}"
            f" low {_num(returns.get('low_level_policy', math.nan), 2):>6}"
            f"  len {_num(runners.get('episode_len_mean', math.nan), 1):>6}"
            f"  compat {_num(runners.get(COMPATIBILITY, math.nan))}"
            f"  success {_num(runners.get(SUCCESS, math.nan))}"
            f"  {rate:>6,.0f} steps/s"
            f"  {clock(elapsed)} elapsed" + (f", {clock(left)} left" if left is not None else "")
        )
        self._progress.console.print(line, soft_wrap=True)
        done = result["training_iteration"] if self.by_iterations else elapsed
        self._progress.update(self._task, completed=done)

    def close(self) -> None:
        self._progress.stop()


def clock(seconds: float) -> str:
    """A duration for people: 75.2 -> '1:15'."""
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"

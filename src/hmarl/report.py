"""Tables and lines for people: what the command line prints."""

from __future__ import annotations

import math
import time
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hmarl.evaluation import Comparison, Episode, Result
from hmarl.metrics import metric_key, return_key
from hmarl.task import Task

console = Console(highlight=False)
if not console.is_terminal:
    # Piped or captured output has no width to fit; rich would squeeze tables into 80.
    console.width = 120

LEARNING_STATS = (
    ("entropy", "H"),
    ("mean_kl_loss", "kl"),
    ("clip_fraction", "clip"),
    ("vf_explained_var", "ev"),
)
"""Per-policy learner results shown compactly in the progress line (key, label)."""


def num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def short(policy: str) -> str:
    """A policy id for narrow columns: ``high_level_policy`` -> ``high_level``."""
    return policy.removesuffix("_policy")


def label(name: str) -> str:
    """A metric name for people: ``mean_compatibility`` -> ``mean compatibility``."""
    return name.replace("_", " ")


def print_episode(episode: Episode) -> None:
    rewards = "  ".join(f"{agent} {value:+.3f}" for agent, value in episode.returns.items())
    console.print(f"episode seed {episode.seed}: {episode.steps} steps  {rewards}", soft_wrap=True)


def print_results_table(task: Task, rows: dict[str, Result], title: str) -> None:
    """A row per policy: each task metric, then the mean return per agent of each policy id."""
    table = Table(title=escape(title))
    table.add_column("policy")
    for metric in task.metrics:
        table.add_column(label(metric.name), justify="right")
    policies = list(next(iter(rows.values())).returns)
    for policy in policies:
        table.add_column(f"return {short(policy)}", justify="right")
    for name, result in rows.items():
        metrics = [num(result.metrics[m.name]) for m in task.metrics]
        returns = [num(result.returns.get(p, math.nan)) for p in policies]
        table.add_row(name, *metrics, *returns)
    console.print(table)


def print_comparison(task: Task, comparison: Comparison, title: str) -> None:
    print_results_table(task, comparison.policies, title)
    if task.score is None:
        return
    if comparison.score is None:
        console.print(f"normalised score: {escape(comparison.score_note)}")
    else:
        console.print(
            f"normalised score ({label(task.score.metric)}): {comparison.score:.3f} "
            f"({escape(comparison.score_note)})"
        )


class TrainingProgress:
    """A line per training iteration, under a progress bar when on a terminal.

    With ``every`` (seconds), a line at most that often: the first iteration's, then
    the newest each time ``every`` has passed, and the last one's at :meth:`close`;
    faults and warnings show at once. The returns are those of the episodes sampled
    for training: the policies' sampled actions, not their greedy ones.
    """

    def __init__(self, plan: Any, started: float, every: float = 0.0) -> None:
        from rich.progress import BarColumn, Progress, TextColumn

        cfg = plan.cfg
        self.plan = plan
        self.task: Task = plan.task
        self.start = started
        self.time_budget = plan.time_left  # a resumed run's: the rest of its budget
        # The bar counts iterations when there is a count, otherwise seconds.
        self.by_iterations = cfg.stop_iters is not None
        self.total = cfg.stop_iters or self.time_budget
        self._progress = Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            console=console,
            transient=True,
            disable=not console.is_terminal or self.total is None,
        )
        self._bar = self._progress.add_task("training", total=self.total)
        self._last_steps: float | None = None
        self._last_time = time.monotonic()
        self._warned = False
        self._seen_faults: set[str] = set()
        self._values: dict[tuple[str, ...], float] = {}
        self.every = every
        self._shown_at: float | None = None
        self._pending: str | None = None
        self._progress.start()

    @property
    def policies(self) -> list[str]:
        # Known once train() has checked the env, before the first result.
        return list(self.plan.policies or ())

    def update(self, result: dict) -> None:
        runners = result.get("env_runners", {})
        now = time.monotonic()
        steps = float(result.get("num_env_steps_sampled_lifetime", 0.0))
        if self._last_steps is None:  # a resumed run's lifetime count began before this process
            self._last_steps = steps - float(runners.get("num_env_steps_sampled", steps))
        rate = (steps - self._last_steps) / max(now - self._last_time, 1e-9)
        self._last_steps, self._last_time = steps, now
        elapsed = now - self.start
        left = None if self.time_budget is None else max(0.0, self.time_budget - elapsed)
        returns = " ".join(
            f"{short(p)} {num(self._latest(runners, return_key(p)), 2)}" for p in self.policies
        )
        metrics = "".join(
            f"  {label(m.name)} {num(self._latest(runners, metric_key(m.name)))}"
            for m in self.task.metrics
        )
        failures = int(result.get("hmarl", {}).get("env_runner_failures", 0))
        line = (
            f"iter {result['training_iteration']:>4}  return (sampled actions) {returns}{metrics}"
            f"  {rate:>6,.0f} steps/s  {clock(elapsed)}"
            + (f", {clock(left)} left" if left is not None else "")
            + (f"  env failures {failures}" if failures else "")
            + self._learning(result)
        )
        if self._shown_at is None or now - self._shown_at >= self.every:
            self._show(line, now)
        else:
            self._pending = line
        self._faults(result)
        self._schedule_warning(result, steps)
        done = result["training_iteration"] if self.by_iterations else elapsed
        self._progress.update(self._bar, completed=done)

    def _latest(self, runners: dict, key: tuple[str, ...]) -> float | None:
        """The value in this result, else the last one seen: in an iteration where no
        episode ended (long episodes, many envs ending together) RLlib reports none."""
        value = _get(runners, key)
        if value is not None and not math.isnan(value):
            self._values[key] = value
        return self._values.get(key)

    def _learning(self, result: dict) -> str:
        """Per policy: entropy, KL, clip fraction, explained variance of the last update."""
        learners = result.get("learners", {})
        parts = []
        for policy in self.policies:
            stats = learners.get(policy, {})
            values = [f"{tag} {num(_float(stats.get(key)), 2)}" for key, tag in LEARNING_STATS]
            parts.append(f"{short(policy)}: {' '.join(values)}")
        return "  [" + "; ".join(parts) + "]"

    def _faults(self, result: dict) -> None:
        """Each env runner failure once: its line, and how many there were so far."""
        hmarl = result.get("hmarl", {})
        for error in hmarl.get("env_runner_errors", []):
            if error not in self._seen_faults:
                self._seen_faults.add(error)
                self._progress.console.print(
                    escape(f"env runner failed and was restarted: {error}"),
                    style="yellow",
                    soft_wrap=True,
                )

    def _schedule_warning(self, result: dict, steps: float) -> None:
        schedule = self.task.schedule
        if self._warned or schedule is None:
            return
        if result.get("hmarl", {}).get("schedule_stalled"):
            self._warned = True
            seen = _get(result.get("env_runners", {}), metric_key(schedule.metric))
            why = (
                f"its metric {schedule.metric} has not appeared (does the env put "
                f"{self.task.metric(schedule.metric).key!r} in the infos?)"
                if seen is None
                else f"{schedule.metric} is {num(seen)}, below {schedule.threshold}"
            )
            self._progress.console.print(
                f"warning: after {steps:,.0f} env steps the schedule still holds "
                f"{schedule.hold} back: {why}",
                style="bold yellow",
                soft_wrap=True,
            )

    def _show(self, line: str, now: float) -> None:
        self._progress.console.print(escape(line), soft_wrap=True)
        self._shown_at, self._pending = now, None

    def close(self) -> None:
        """The last iteration's line, if not shown yet; then the bar goes."""
        if self._pending is not None:
            self._show(self._pending, time.monotonic())
        self._progress.stop()


def _get(tree: dict, key: tuple[str, ...]) -> float | None:
    for part in key:
        if not isinstance(tree, dict):
            return None
        tree = tree.get(part)
    return _float(tree)


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def clock(seconds: float) -> str:
    """A duration for people: 75.2 -> '1:15'."""
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"

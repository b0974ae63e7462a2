"""Learning curves from a run's logs, drawn to a PNG: what ``hmarl plot`` shows, for any task.

Every run writes ``result.json``, one JSON line per training iteration: Tune into
each trial folder, :mod:`hmarl.run_log` into a direct run's folder. So one reader
serves both, and :func:`plot_run` takes a run folder or a single trial folder.
Every ``result.json`` below the folder is a trial and gets its own line.

The panels share one x axis, environment steps sampled (the top axis shows the
training time they took): each policy's mean return per agent-episode, the
episode length, each of the task's metrics, and the learning itself, one line
per policy: entropy, KL divergence, clip fraction and the value function's
explained variance. Dashed lines mark the random policy's and the task's
baselines' levels on seeded episodes of the run's env (:func:`reference_levels`;
the run's folder records its task and env), and a dotted line marks where the
schedule let a held policy start to learn (see :mod:`hmarl.algorithm`).

A run resumed after an interruption repeats the iterations since its last
checkpoint; the repeats replace the lines they redo, so the curves show the run
that the checkpoints hold. Through Tune each leg of a resumed run is a trial
folder of its own; the legs of one run (one ``hmarl_run.json``) make one line.

The returns are those of the episodes sampled for training, so of the policies'
sampled actions; ``hmarl evaluate`` scores their greedy actions unless told
``--actions sampled``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hmarl.evaluation import Result, episode_seeds
from hmarl.metrics import metric_key, return_key
from hmarl.report import clock, label, short
from hmarl.runs import find_run
from hmarl.task import Task, TaskError
from hmarl.training import RESULT_FILE

REFERENCE_EPISODES = 300
"""Seeded episodes the reference levels are measured on: steady to about 0.01, in a second."""
DPI = 110
COLUMNS = 3

Reference = Mapping[str, Mapping[str, Any]]
"""Levels to draw, by policy name: ``{"returns": {policy: value}, metric: value}`` (as
``hmarl evaluate --json`` prints each policy; None = not known)."""


@dataclass(frozen=True)
class Panel:
    title: str
    keys: dict[str, str]
    """Line label -> '/'-joined path to the value in a result line."""
    reference: tuple[str, ...] | None = None
    """Where this panel's reference level sits in a policy's levels: ("returns", policy)
    or (metric,)."""


def panels(task: Task | None, policies: list[str]) -> list[Panel]:
    """The panels of a run of ``task`` whose results name ``policies``."""
    made = [
        Panel(
            f"{short(p)}: mean return per agent (sampled actions)",
            {"": _path("env_runners", *return_key(p))},
            reference=("returns", p),
        )
        for p in policies
    ]
    made.append(Panel("mean episode length (env steps)", {"": "env_runners/episode_len_mean"}))
    for metric in task.metrics if task else ():
        policy = next((p for p in metric.policies if p in policies), metric.policies[0])
        title = f"{short(policy)}: {label(metric.name)}"
        made.append(
            Panel(
                title,
                {"": _path("env_runners", *metric_key(metric.name))},
                reference=(metric.name,),
            )
        )
    for key, title in LEARNING_PANELS:
        made.append(Panel(title, {short(p): f"learners/{p}/{key}" for p in policies}))
    return made


LEARNING_PANELS = (
    ("entropy", "learning: policy entropy"),
    ("mean_kl_loss", "learning: KL divergence per update"),
    ("clip_fraction", "learning: clip fraction"),
    ("vf_explained_var", "learning: value explained variance"),
)

RANDOM_COLOR = "#d62728"
BASELINE_COLORS = ("#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf")
TRIAL_COLORS = ("#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")


def _path(*parts: str) -> str:
    return "/".join(parts)


@dataclass
class Trial:
    """One trial's curves: an entry per training iteration."""

    name: str
    folder: Path
    iterations: np.ndarray
    steps: np.ndarray
    """Environment steps sampled so far, at the end of each iteration."""
    seconds: np.ndarray
    """Training time so far (the iterations' own time, without start-up and checkpoints)."""
    rows: list[dict[str, Any]]
    schedule_start: float | None
    """Steps at which the schedule let the held policy learn (None: from the start, or not yet)."""

    def curve(self, key: str) -> np.ndarray:
        """A series per iteration; NaN where the iteration had no value."""
        return np.array([_value(row, key) for row in self.rows])

    def policies(self) -> list[str]:
        """The policies the results report returns for."""
        found: dict[str, None] = {}
        for row in self.rows:
            found |= dict.fromkeys(_lookup(row, "env_runners/hmarl/return") or {})
        return list(found)


def find_results(run_dir: Path) -> list[Path]:
    """Every ``result.json`` in or below ``run_dir``, oldest first."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise ValueError(f"{run_dir} does not exist")
    if not run_dir.is_dir():
        raise ValueError(f"{run_dir} is not a folder; give a run, experiment or trial folder")
    found = [
        path
        for path in run_dir.rglob(RESULT_FILE)
        # Hidden folders hold partial checkpoints and other tools' scratch files.
        if path.is_file() and not any(p.startswith(".") for p in path.relative_to(run_dir).parts)
    ]
    if not found:
        raise ValueError(f"{run_dir} holds no {RESULT_FILE}: it is not a training run folder")
    return sorted(found, key=lambda path: path.stat().st_mtime)


def read_trial(result_file: Path, *more: Path) -> Trial:
    """One trial's ``result.json``; with ``more``, the later legs of the same run after it."""
    files = [Path(result_file), *map(Path, more)]
    result_file = files[-1]
    rows = [row for path in files for row in _read_rows(path)]
    kept: list[dict[str, Any]] = []
    for row in rows:
        # A resumed run redoes the iterations after its last checkpoint: keep the redo.
        while kept and kept[-1]["training_iteration"] >= row["training_iteration"]:
            kept.pop()
        kept.append(row)
    opened = np.array([_value(row, "hmarl/schedule_open") for row in kept])
    steps = np.array([_value(row, "num_env_steps_sampled_lifetime") for row in kept])
    first_open = np.flatnonzero(opened >= 0.5)
    # Tune's trial ids are short and unique; a direct run's is "default".
    trial_id = kept[-1].get("trial_id")
    named = isinstance(trial_id, str) and trial_id not in ("", "default")
    return Trial(
        name=trial_id if named else result_file.parent.name,
        folder=result_file.parent,
        iterations=np.array([row["training_iteration"] for row in kept]),
        steps=steps,
        seconds=np.cumsum([_value(row, "time_this_iter_s") for row in kept]),
        rows=kept,
        # Opened at the end of that iteration: learning starts after its steps.
        schedule_start=float(steps[first_open[0]])
        if first_open.size and np.isfinite(opened[0]) and opened[0] < 0.5
        else None,
    )


def _runs(result_files: list[Path]) -> list[list[Path]]:
    """Result files grouped by the run they belong to (its record's folder), oldest first."""
    runs: dict[Path, list[Path]] = {}
    for path in result_files:
        run = find_run(path.parent)
        runs.setdefault(run[0] if run else path.parent, []).append(path)
    return list(runs.values())


def reference_levels(
    task: Task, env_config: dict[str, Any], episodes: int = REFERENCE_EPISODES
) -> dict[str, Result]:
    """The random policy and the task's baselines on the same seeded episodes of its env."""
    from hmarl.evaluation import baseline_policies, evaluate

    seeds = episode_seeds(None, episodes)
    return {
        name: evaluate(task, env_config, policy, seeds)
        for name, policy in baseline_policies(task, env_config, seeds[0]).items()
    }


def plot_run(
    run_dir: Path,
    out: Path,
    reference: Reference | None = None,
    *,
    reference_episodes: int = REFERENCE_EPISODES,
) -> Path:
    """Draw the learning curves of the run in ``run_dir`` to the PNG file ``out``.

    ``reference`` names the levels to draw as dashed lines (``{}`` for none); by
    default they are :func:`reference_levels` on ``reference_episodes`` episodes of
    the run's task and env, from the run's record. The file is written whole or not
    at all (a temporary file, then a rename). Returns ``out``.

    Raises ValueError if ``run_dir`` holds no readable ``result.json`` (missing,
    empty or corrupt) or ``out`` is not a ``.png`` file that can be written.
    """
    if reference_episodes < 1:
        raise ValueError(f"reference_episodes must be at least 1, got {reference_episodes}")
    out = Path(out)
    run_dir = Path(run_dir)
    found = find_results(run_dir)  # first: a missing run says so, not that out cannot be written
    _check_writable(out)
    trials = [read_trial(*legs) for legs in _runs(found)]
    run = find_run(run_dir)
    task, note = None, ""
    if run is not None:
        try:
            task = run[1].load_task()
        except TaskError as err:
            note = f"the run's task cannot be loaded ({err})"
    if reference is not None:
        levels = {name: _checked_levels(name, value) for name, value in reference.items()}
        note = "dashed: the reference levels given" if levels else note
    elif task is not None:
        env_config = task.env_config_dict(run[1].env_config)
        computed = reference_levels(task, env_config, reference_episodes)
        levels = {name: result.to_dict() for name, result in computed.items()}
        note = (
            f"dashed: {', '.join(levels)} on {reference_episodes} seeded episodes of the run's env"
        )
    else:
        levels = {}
        note = note or "no reference levels: the folder records no task"
    policies = list(dict.fromkeys(p for trial in trials for p in trial.policies()))
    figure = _draw(trials, panels(task, policies), levels, title=run_dir.resolve().name, note=note)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.partial")
    try:
        with open(tmp, "wb") as file:
            figure.savefig(file, format="png", dpi=DPI)
        os.replace(tmp, out)
    except OSError as err:
        raise ValueError(f"cannot write {out}: {err.strerror or err}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return out


def _check_writable(out: Path) -> None:
    """Fail before the work: a bad name, a missing folder, a folder we may not write."""
    if out.suffix.lower() != ".png":
        raise ValueError(f"{out}: the plot is a PNG image; give a file name ending in .png")
    if out.is_dir():
        raise ValueError(f"{out} is a folder; give a file name ending in .png")
    folder = out.parent
    if not folder.is_dir():
        raise ValueError(f"cannot write {out}: {folder} is not an existing folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write {out}: folder {folder} is not writable")


def _read_rows(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read {path}: {err}") from None
    lines = text.split("\n")
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            if number == len(lines):  # no newline yet: a running trial is writing it
                break
            raise ValueError(
                f"{path} is corrupt: line {number} is not valid JSON ({err.msg})"
            ) from None
        for key in ("training_iteration", "num_env_steps_sampled_lifetime"):
            if not isinstance(row, dict) or not isinstance(_lookup(row, key), int | float):
                raise ValueError(
                    f"{path} is corrupt: line {number} is not a training result (no {key})"
                )
        rows.append(row)
    if not rows:
        raise ValueError(f"{path} is empty: the run has not finished a training iteration")
    return rows


def _lookup(row: dict[str, Any], key: str) -> Any:
    for part in key.split("/"):
        if not isinstance(row, dict):
            return None
        row = row.get(part)
    return row


def _value(row: dict[str, Any], key: str) -> float:
    """A number from a result line; NaN if absent (or, as RLlib writes some, not a number)."""
    try:
        return float(_lookup(row, key))
    except (TypeError, ValueError):
        return math.nan


def _checked_levels(name: str, value: Any) -> Mapping[str, Any]:
    if isinstance(value, Result):
        return value.to_dict()
    if not isinstance(value, Mapping) or not isinstance(value.get("returns", {}), Mapping):
        raise ValueError(
            f"reference {name!r}: expected a Result or a dict like hmarl evaluate --json prints "
            "per policy ({'returns': {policy: value}, metric: value})"
        )
    return value


def _level(levels: Mapping[str, Any], where: tuple[str, ...]) -> float | None:
    for part in where:
        if not isinstance(levels, Mapping):
            return None
        levels = levels.get(part)
    try:
        value = float(levels)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _draw(
    trials: list[Trial],
    shown: list[Panel],
    references: dict[str, Mapping[str, Any]],
    title: str,
    note: str,
) -> Any:
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import EngFormatter

    rows = -(-len(shown) // COLUMNS)
    # A Figure without pyplot: no GUI backend, no global state; it renders with Agg.
    figure = Figure(figsize=(14, 1.5 + 2.6 * rows), layout="constrained")
    axes = figure.subplots(rows, COLUMNS, sharex=True, squeeze=False)
    many = len(trials) > 1
    colors = [TRIAL_COLORS[i % len(TRIAL_COLORS)] for i in range(len(trials))]
    styles = ("-", "--", ":", "-.")
    for ax in axes.flat[len(shown) :]:
        ax.set_visible(False)
    for ax, panel in zip(axes.flat, shown, strict=False):
        ax.set_title(panel.title, fontsize=10)
        has_data = False
        for trial, color in zip(trials, colors, strict=True):
            for n, (name, key) in enumerate(panel.keys.items()):
                values = trial.curve(key)
                # An iteration in which no episode ended has no value (NaN). The line
                # joins those that have one: drawn with the gaps, RWARE's 500-step
                # episodes, ending in every env at once every 16 or so iterations, left
                # only isolated points, which a line does not show.
                known = np.isfinite(values)
                has_data |= bool(known.any())
                marker = "o" if known.sum() <= 40 else None  # a few points: show each
                line_color = color if many or len(panel.keys) == 1 else f"C{n}"
                ax.plot(
                    trial.steps[known],
                    values[known],
                    color=line_color,
                    lw=1.6,
                    marker=marker,
                    ms=3,
                    ls=styles[n % len(styles)] if many else "-",
                    label=name or None,
                )
            if trial.schedule_start is not None:
                ax.axvline(trial.schedule_start, color=color if many else "0.45", ls=":")
        if not has_data:
            ax.text(0.5, 0.5, "no data yet", transform=ax.transAxes, ha="center", color="0.5")
        if panel.reference is not None:
            _reference_lines(ax, references, panel.reference)
        if len(panel.keys) > 1:
            ax.legend(fontsize=7, loc="best")
        # From the start of training, so its length shows; set, not autoscaled, so
        # that panels without data yet keep the same axis.
        ax.set_xlim(0, 1.03 * max(1.0, *(float(np.nanmax(t.steps)) for t in trials)))
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.tick_params(labelsize=8)
    for ax in axes[-1]:
        ax.set_xlabel("environment steps sampled", fontsize=9)
    if not many:
        for ax in axes[0]:
            if ax.get_visible():
                _time_axis(ax, trials[0])
    figure.suptitle(f"Learning curves: {title}\n{_summary(trials)}", fontsize=13)

    handles = {}
    for trial, color in zip(trials, colors, strict=True):
        name = _trial_label(trial) if many else "trained policy"
        handles[name] = Line2D([], [], color=color, lw=1.8)
    if any(trial.schedule_start is not None for trial in trials):
        handles["schedule lets the held policy learn"] = Line2D([], [], color="0.45", ls=":")
    for ax in axes.flat:
        for handle, name in zip(*ax.get_legend_handles_labels(), strict=True):
            if name.endswith(" policy"):
                handles.setdefault(name, handle)
    legend = figure.legend(
        handles.values(),
        handles.keys(),
        loc="outside lower center",
        ncols=min(len(handles), 6),
        fontsize=10,
        frameon=False,
        title=note or None,
    )
    legend.get_title().set_fontsize(9)
    legend.get_title().set_color("0.3")
    return figure


def _trial_label(trial: Trial) -> str:
    if not math.isfinite(trial.seconds[-1]):
        return trial.name
    return f"{trial.name} ({clock(trial.seconds[-1])})"


def _reference_lines(
    ax: Any, references: dict[str, Mapping[str, Any]], where: tuple[str, ...]
) -> None:
    levels = {name: _level(levels, where) for name, levels in references.items()}
    # e.g. no random robot arrived, so random has no steps to arrive: no line
    levels = {name: value for name, value in levels.items() if value is not None}
    baselines = [name for name in references if name != "random"]
    for name, value in levels.items():
        color = (
            RANDOM_COLOR
            if name == "random"
            else BASELINE_COLORS[baselines.index(name) % len(BASELINE_COLORS)]
        )
        ax.axhline(value, color=color, ls="--", lw=1.2, label=f"{name} policy")
        # The top line's label goes under it, where the axes' edge cannot clip it.
        below = len(levels) > 1 and value == max(levels.values())
        ax.annotate(
            f"{name} {value:.3g}",
            xy=(1, value),
            xycoords=ax.get_yaxis_transform(),
            xytext=(-4, -3 if below else 3),
            textcoords="offset points",
            ha="right",
            va="top" if below else "bottom",
            fontsize=7,
            color=color,
        )


def _time_axis(ax: Any, trial: Trial) -> None:
    """Training time along the top, mapped piecewise from the trial's steps."""
    from matplotlib.ticker import FuncFormatter, MultipleLocator

    steps = np.concatenate([[0.0], trial.steps])
    seconds = np.concatenate([[0.0], trial.seconds])
    if not (np.all(np.diff(steps) > 0) and np.all(np.diff(seconds) > 0)):
        return  # not invertible (missing times): leave the top axis off
    top = ax.secondary_xaxis(
        "top",
        functions=(
            lambda x: _extrapolate(x, steps, seconds),
            lambda t: _extrapolate(t, seconds, steps),
        ),
    )
    # Ticks at round durations (5 s, 1 min, 10 min, ...), five or so across.
    bases = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)
    base = next((b for b in bases if seconds[-1] / b <= 6), 3600 * math.ceil(seconds[-1] / 21600))
    top.xaxis.set_major_locator(MultipleLocator(base))
    top.xaxis.set_major_formatter(FuncFormatter(lambda t, _: clock(max(t, 0.0))))
    top.set_xlabel("training time (min:s)", fontsize=9, color="0.35")
    top.tick_params(labelsize=8, colors="0.35")


def _extrapolate(x: Any, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """``np.interp`` that continues the end segments' slopes past the ends (axis margins)."""
    x = np.asarray(x, dtype=float)
    y = np.interp(x, xp, fp)
    left = (fp[1] - fp[0]) / (xp[1] - xp[0])
    right = (fp[-1] - fp[-2]) / (xp[-1] - xp[-2])
    y = np.where(x < xp[0], fp[0] + (x - xp[0]) * left, y)
    return np.where(x > xp[-1], fp[-1] + (x - xp[-1]) * right, y)


def _summary(trials: list[Trial]) -> str:
    if len(trials) > 1:
        return f"{len(trials)} trials, one line each"
    trial = trials[0]
    iterations = int(trial.iterations[-1])
    parts = [
        f"{iterations} iteration{'s' if iterations != 1 else ''}",
        f"{int(trial.steps[-1]):,} env steps",
    ]
    if math.isfinite(trial.seconds[-1]):
        parts.append(f"{clock(trial.seconds[-1])} training time")
    return "  ·  ".join(parts)

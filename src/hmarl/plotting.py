"""Learning curves from a run's logs, drawn to a PNG: what ``hmarl plot`` shows.

Every run writes ``result.json``, one JSON line per training iteration: Tune into
each trial folder, :mod:`hmarl.run_log` into a direct run's folder. So one reader
serves both, and :func:`plot_run` takes a direct run's folder, a Tune experiment
folder or a single trial folder. Every ``result.json`` below the folder is a trial
and gets its own line (an experiment from ``hmarl train`` has one trial).

Six panels share one x axis, environment steps sampled; the top axis shows the
training time they took. They are each policy's mean episode return, the episode
length, the high level's compatibility with the chicken it chose, and the low
level's success rate and steps to arrive. Dashed lines mark the random and oracle
policies' levels on seeded episodes of the run's yard (:func:`reference_levels`),
and a dotted line marks where the high level started to train (see
:mod:`hmarl.algorithm`).

A run resumed after an interruption repeats the iterations since its last
checkpoint; the repeats replace the lines they redo, so the curves show the run
that the checkpoints hold.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hmarl.algorithm import HIGH_LEVEL_POLICY, LOW_LEVEL_POLICY
from hmarl.evaluation import Metrics, episode_seeds, evaluate
from hmarl.metrics import COMPATIBILITY, STEPS_TO_ARRIVE, SUCCESS
from hmarl.report import clock
from hmarl.simulation import YardConfig
from hmarl.training import RESULT_FILE

REFERENCE_EPISODES = 300
"""Seeded episodes the reference levels are measured on: steady to about 0.01, in a second."""
PARAMS_FILE = "params.json"
"""Tune's record of a trial's config, beside its ``result.json``; ``env_config`` is the yard."""
DPI = 110

Reference = Mapping[str, Metrics | Mapping[str, float | None]]
"""Levels to draw, by name: :class:`Metrics`, or their ``to_dict()`` form (None = not known)."""


@dataclass(frozen=True)
class Panel:
    title: str
    key: str
    """'/'-joined path to the value in a result line."""
    reference: str | None = None
    """The :class:`Metrics` field whose random and oracle levels this panel shows."""
    rate: bool = False
    """A fraction: the y axis spans 0 to 1."""


PANELS = (
    Panel(
        "high level: mean episode return",
        f"env_runners/module_episode_returns_mean/{HIGH_LEVEL_POLICY}",
    ),
    Panel(
        "low level: mean episode return",
        f"env_runners/module_episode_returns_mean/{LOW_LEVEL_POLICY}",
    ),
    Panel("mean episode length (env steps)", "env_runners/episode_len_mean"),
    Panel(
        "high level: compatibility with chosen chicken",
        f"env_runners/{COMPATIBILITY}",
        reference="mean_compatibility",
    ),
    Panel("low level: success rate", f"env_runners/{SUCCESS}", reference="success_rate", rate=True),
    Panel(
        "low level: moves to arrive (arrivals only)",
        f"env_runners/{STEPS_TO_ARRIVE}",
        reference="mean_steps",
    ),
)

REFERENCE_COLORS = {"random": "#d62728", "oracle": "#2ca02c"}
TRIAL_COLORS = ("#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")


@dataclass
class Trial:
    """One trial's curves: an entry per training iteration."""

    name: str
    folder: Path
    yard: YardConfig | None
    """The yard from the trial's ``params.json``; None when the folder records none."""
    iterations: np.ndarray
    steps: np.ndarray
    """Environment steps sampled so far, at the end of each iteration."""
    seconds: np.ndarray
    """Training time so far (the iterations' own time, without start-up and checkpoints)."""
    curves: dict[str, np.ndarray]
    """A series per panel key; NaN where the iteration had no value (no episode finished)."""
    high_level_start: float | None
    """Steps at which the high level started to train (None: from the start, or not yet)."""


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


def read_trial(result_file: Path) -> Trial:
    """One trial's ``result.json`` (and ``params.json`` beside it, if any)."""
    result_file = Path(result_file)
    rows = _read_rows(result_file)
    kept: list[dict[str, Any]] = []
    for row in rows:
        # A resumed run redoes the iterations after its last checkpoint: keep the redo.
        while kept and kept[-1]["training_iteration"] >= row["training_iteration"]:
            kept.pop()
        kept.append(row)
    training = np.array([_value(row, "high_level_training") for row in kept])
    started = np.flatnonzero(training >= 0.5)
    steps = np.array([_value(row, "num_env_steps_sampled_lifetime") for row in kept])
    # Tune's trial ids are short and unique; a direct run's is "default".
    trial_id = kept[-1].get("trial_id")
    named = isinstance(trial_id, str) and trial_id not in ("", "default")
    return Trial(
        name=trial_id if named else result_file.parent.name,
        folder=result_file.parent,
        yard=_recorded_yard(result_file.parent),
        iterations=np.array([row["training_iteration"] for row in kept]),
        steps=steps,
        seconds=np.cumsum([_value(row, "time_this_iter_s") for row in kept]),
        curves={p.key: np.array([_value(row, p.key) for row in kept]) for p in PANELS},
        high_level_start=float(steps[started[0] - 1]) if started.size and started[0] > 0 else None,
    )


def reference_levels(
    config: YardConfig, episodes: int = REFERENCE_EPISODES, seed: int = 0
) -> dict[str, Metrics]:
    """The random and the oracle policy on the same seeded episodes of ``config``'s yard."""
    from hmarl.baselines import OraclePolicy, RandomPolicy

    seeds = episode_seeds(seed, episodes)
    return {
        "random": evaluate(RandomPolicy(config, seed), config, seeds),
        "oracle": evaluate(OraclePolicy(config), config, seeds),
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
    the run's yard: from Tune's ``params.json``, or the default yard for a run that
    records none (a direct run), which the figure then says. The file is written
    whole or not at all (a temporary file, then a rename). Returns ``out``.

    Raises ValueError if ``run_dir`` holds no readable ``result.json`` (missing,
    empty or corrupt) or ``out`` is not a ``.png`` file that can be written.
    """
    if reference_episodes < 1:
        raise ValueError(f"reference_episodes must be at least 1, got {reference_episodes}")
    out = Path(out)
    _check_writable(out)
    run_dir = Path(run_dir)
    results = find_results(run_dir)
    trials = [read_trial(path) for path in results]
    if reference is not None:
        levels = {name: _as_metrics(name, value) for name, value in reference.items()}
        note = "dashed: the reference levels given" if levels else ""
    else:
        levels, note = _computed_references(trials, reference_episodes)
    figure = _draw(trials, levels, title=run_dir.resolve().name, note=note)
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


def _recorded_yard(folder: Path) -> YardConfig | None:
    path = folder / PARAMS_FILE
    if not path.is_file():
        return None
    try:
        return YardConfig.from_dict(json.loads(path.read_text()).get("env_config") or {})
    except (OSError, json.JSONDecodeError, AttributeError, ValueError, TypeError) as err:
        raise ValueError(f"cannot read the yard config in {path}: {err}") from None


def _as_metrics(name: str, value: Metrics | Mapping[str, float | None]) -> Metrics:
    if isinstance(value, Metrics):
        return value
    fields = {f.name for f in dataclasses.fields(Metrics)}
    if not isinstance(value, Mapping) or set(value) - fields:
        raise ValueError(
            f"reference {name!r}: expected Metrics or a dict of {', '.join(sorted(fields))}"
        )
    return Metrics(**{f: math.nan if value.get(f) is None else float(value[f]) for f in fields})


def _computed_references(trials: list[Trial], episodes: int) -> tuple[dict[str, Metrics], str]:
    yards = {trial.yard for trial in trials}
    if len(yards) > 1:
        return {}, "no reference levels: the trials ran on different yards"
    (yard,) = yards
    whose = "the run's yard" if yard is not None else "the default yard (the run records none)"
    yard = yard or YardConfig()
    note = (
        f"dashed: random and oracle policies on {episodes} seeded episodes of {whose}: "
        f"{yard.num_robots} robots, {yard.num_chickens} chickens, time limit {yard.timeout}"
    )
    return reference_levels(yard, episodes), note


def _draw(trials: list[Trial], references: dict[str, Metrics], title: str, note: str) -> Any:
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import EngFormatter

    # A Figure without pyplot: no GUI backend, no global state; it renders with Agg.
    figure = Figure(figsize=(14, 8), layout="constrained")
    axes = figure.subplots(2, 3, sharex=True)
    many = len(trials) > 1
    colors = [TRIAL_COLORS[i % len(TRIAL_COLORS)] for i in range(len(trials))]
    for ax, panel in zip(axes.flat, PANELS, strict=True):
        ax.set_title(panel.title, fontsize=11)
        for trial, color in zip(trials, colors, strict=True):
            values = trial.curves[panel.key]
            # Early iterations are NaN-separated points: markers keep them visible.
            marker = "o" if len(values) <= 40 else None
            ax.plot(trial.steps, values, color=color, lw=1.8, marker=marker, ms=3.5)
            if trial.high_level_start is not None:
                ax.axvline(trial.high_level_start, color=color if many else "0.45", ls=":")
        if not any(np.isfinite(t.curves[panel.key]).any() for t in trials):
            ax.text(0.5, 0.5, "no data yet", transform=ax.transAxes, ha="center", color="0.5")
        if panel.reference is not None:
            _reference_lines(ax, references, panel.reference)
        if panel.rate:
            ax.set_ylim(-0.03, 1.03)
        # From the start of training, so its length shows; set, not autoscaled, so
        # that panels without data yet keep the same axis.
        ax.set_xlim(0, 1.03 * max(1.0, *(float(np.nanmax(t.steps)) for t in trials)))
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.tick_params(labelsize=9)
    for ax in axes[1]:
        ax.set_xlabel("environment steps sampled")
    if not many:
        for ax in axes[0]:
            _time_axis(ax, trials[0])
    figure.suptitle(f"Learning curves: {title}\n{_summary(trials)}", fontsize=13)

    handles = {}
    for trial, color in zip(trials, colors, strict=True):
        label = _trial_label(trial) if many else "trained policy"
        handles[label] = Line2D([], [], color=color, lw=1.8)
    if any(trial.high_level_start is not None for trial in trials):
        handles["high level starts training"] = Line2D([], [], color="0.45", ls=":")
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
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


def _reference_lines(ax: Any, references: dict[str, Metrics], field: str) -> None:
    levels = {name: getattr(m, field) for name, m in references.items()}
    # e.g. no random robot arrived, so random has no steps to arrive: no line
    levels = {name: value for name, value in levels.items() if math.isfinite(value)}
    for i, (name, value) in enumerate(levels.items()):
        color = REFERENCE_COLORS.get(name, f"C{4 + i}")
        ax.axhline(value, color=color, ls="--", lw=1.3, label=f"{name} policy")
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
            fontsize=8,
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

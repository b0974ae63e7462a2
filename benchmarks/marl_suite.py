"""The field's benchmarks, flat and hierarchical: LBF and RWARE, seeds, curves and a table.

For each task (an env id of ``lbf`` or ``rware``) and each variant:

- ``ippo``: flat, every agent acts every step for one shared policy, its value local;
- ``mappo``: the same with ``--critic central`` (the value also reads the global state);
- ``hierarchical``: ``--hierarchy goals``, a high and a low level per agent
  (:mod:`hmarl.tasks.lbf.goals`, :mod:`hmarl.tasks.rware.goals`),

N seeds of ``hmarl train --stop-timesteps BUDGET --seed S`` (a subprocess, as a user runs
it, with the task's own settings), then ``hmarl evaluate RUN --json`` on held-out episodes
(sampled actions, the tasks' default; beside random and the task's hand-written policy).
Written to ``--out``:

- ``<env id>.png``: the return while training (sampled, over the last 200 agent-episodes:
  ``env_runners/hmarl/metric/return``) against env steps, the mean over seeds with a 95 %
  bootstrap band, one line per variant; random and the hand-written policy as dashes
  (each variant's own: in the hierarchical one they act through the goal wrapper, the
  hand-written policy split at its goals, and score differently on the same episodes);
- ``summary.md`` and ``summary.json``: per task and variant, the final return on held-out
  episodes as the interquartile mean over seeds with a 95 % percentile-bootstrap interval
  over the seeds (as rliable and marl-eval report it), and the env steps and minutes of
  training each variant needs to reach 90 % of the best variant's final return (its
  training return averaged over 10 iterations; the median over seeds; a seed that never
  reaches it counts as never: with fewer than half reaching it, never).

The return is the package's episode return summed over the agents (in LBF the share of
the food loaded), the same for every variant: a hierarchy's high levels carry it.

**Resumable.** Each run writes ``<out>/<env id>/<variant>/seed<S>/suite_run.json`` when it
is done (trained and evaluated); run the same command again and it skips those, starts
interrupted runs over, and rewrites the summary. ``--summarize`` only rewrites the
summary from what is done. Two commands on the same ``--out`` at once would start each
other's runs over: to use more cores, ``--jobs N`` runs N runs at a time. Runs go seed by
seed (seed 0 of every task and variant, then seed 1, ...), so a suite stopped part way
has every variant at the same seeds.

Run: ``python benchmarks/marl_suite.py [--seeds 5] [--tasks ID,...] [--variants ...]
[--jobs 2]``;
``--quick``: two tasks (LBF 8x8 coop, RWARE tiny-2ag), every variant, one seed, 20,000
env steps each on 16 envs, 20 episodes (a smoke run of a few minutes: it shows the
machinery, not learning).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from hmarl.plotting import find_results, read_trial

VARIANTS = {
    "ippo": [],
    "mappo": ["--critic", "central"],
    "hierarchical": ["--hierarchy", "goals"],
}
"""Each variant's flags to ``hmarl train``."""


@dataclass(frozen=True)
class Benchmark:
    task: str
    env_id: str
    budget: int
    """Env steps of training per run."""


BENCHMARKS = (
    Benchmark("lbf", "Foraging-8x8-2p-2f-coop-v3", 3_000_000),
    Benchmark("lbf", "Foraging-10x10-3p-3f-v3", 8_000_000),
    Benchmark("lbf", "Foraging-15x15-4p-3f-v3", 10_000_000),
    Benchmark("lbf", "Foraging-2s-8x8-2p-2f-coop-v3", 5_000_000),
    Benchmark("rware", "rware-tiny-2ag-v2", 10_000_000),
    Benchmark("rware", "rware-tiny-4ag-v2", 10_000_000),
    Benchmark("rware", "rware-small-4ag-v2", 10_000_000),
)
RETURN = "env_runners/hmarl/metric/return"
"""Where a result line holds the training return (see hmarl.metrics)."""
REACH = 0.9
"""The share of the best variant's final return a variant's steps to reach are counted to."""
REACH_WINDOW = 10
"""Iterations the training return is averaged over before it counts as reaching a level.
One iteration's return can stand far above its neighbours': on LBF 2s-8x8, where the
runs' returns were 0.3-0.4, single iterations read 0.5-0.7, and a first crossing of the
raw curve put flat IPPO at 90 % of the best in 0.22 M env steps, where its mean over
seeds got there near 1 M. Only full windows count: the first iterations' returns are those
of the few episodes that ended early, and in LBF an episode ends early when all its food
is loaded, so iteration 1 read 1.0 (LBF 15x15, hierarchical and MAPPO), and a window of
that one iteration put the hierarchy at 90 % of the best in 8,384 env steps."""
RESAMPLES = 2000
"""Bootstrap resamples for every interval."""
RUN_FILE = "suite_run.json"
QUICK_BUDGET = 20_000
"""Env steps of every ``--quick`` run."""


# -- one run ------------------------------------------------------------------------------


def run_once(
    bench: Benchmark, variant: str, seed: int, folder: Path, episodes: int, extra: list[str]
) -> dict:
    """Train and evaluate one seed of one variant, unless done; its record. ``extra``:
    more flags to ``hmarl train``."""
    record_file = folder / RUN_FILE
    if record_file.exists():
        return json.loads(record_file.read_text())
    if folder.exists():  # an interrupted run: it starts over
        shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    hmarl = [sys.executable, "-m", "hmarl.cli"]
    began = time.time()
    train = [
        *hmarl,
        "train",
        "--task",
        bench.task,
        "--env-id",
        bench.env_id,
        *VARIANTS[variant],
        "--seed",
        str(seed),
        "--stop-timesteps",
        str(bench.budget),
        "--no-evaluate",
        "--progress-every",
        "60",
        "--out",
        str(folder),
        *extra,
    ]
    with open(folder.parent / f"seed{seed}.log", "w") as log:
        subprocess.run(train, check=True, stdout=log, stderr=subprocess.STDOUT)
    evaluate = [*hmarl, "evaluate", str(folder), "--episodes", str(episodes), "--json"]
    done = subprocess.run(evaluate, check=True, capture_output=True, text=True)
    scores = json.loads(done.stdout)
    record = {
        "task": bench.task,
        "env_id": bench.env_id,
        "variant": variant,
        "seed": seed,
        "budget": bench.budget,
        "curve": curve(folder),
        "returns": {name: p["return"] for name, p in scores["policies"].items()},
        "actions": scores["actions"],
        "episodes": episodes,
        "wall_seconds": time.time() - began,
    }
    partial = record_file.with_suffix(".partial")
    partial.write_text(json.dumps(record))
    os.replace(partial, record_file)  # a record is whole or absent
    return record


def schedule(
    benches: list[Benchmark], variants: list[str], seeds: int, out: Path
) -> list[tuple[Benchmark, str, int, Path]]:
    """Every run of the suite, seed by seed: seed 0 of every task and variant first, so
    that a suite stopped part way has every variant at the same seeds."""
    return [
        (bench, variant, seed, out / bench.env_id / variant / f"seed{seed}")
        for seed in range(seeds)
        for bench in benches
        for variant in variants
    ]


def curve(folder: Path) -> list[list[float]]:
    """[env steps, seconds of training, return] per iteration of the run in ``folder`` that
    ended an episode, read as ``hmarl plot`` reads a run (every leg of a resumed one)."""
    trial = read_trial(*find_results(folder))
    points = np.column_stack([trial.steps, trial.seconds, trial.curve(RETURN)])
    return points[np.isfinite(points[:, 2])].tolist()


# -- statistics ---------------------------------------------------------------------------


def iqm(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """The interquartile mean: the mean of the middle half (25 % trimmed off each end)."""
    return stats.trim_mean(values, 0.25, axis=axis)


def iqm_interval(values: list[float], rng: np.random.Generator) -> tuple[float, float, float]:
    """(IQM, low, high): the IQM over seeds and its 95 % percentile-bootstrap interval."""
    x = np.asarray(values, dtype=float)
    picks = rng.integers(len(x), size=(RESAMPLES, len(x)))
    boot = iqm(x[picks], axis=1)
    low, high = np.percentile(boot, [2.5, 97.5])
    return float(iqm(x)), float(low), float(high)


def mean_band(curves: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """(mean, low, high) over seeds (rows) at each grid point, a 95 % bootstrap band."""
    picks = rng.integers(len(curves), size=(RESAMPLES, len(curves)))
    with warnings.catch_warnings():  # before its first finished episode a run has no value
        warnings.simplefilter("ignore", RuntimeWarning)
        boot = np.nanmean(curves[picks], axis=1)
        low, high = np.nanpercentile(boot, [2.5, 97.5], axis=0)
        return np.nanmean(curves, axis=0), low, high


def first_reach(points: list[list[float]], level: float) -> tuple[float, float]:
    """(env steps, seconds) at which a run's training return, averaged over its last
    :data:`REACH_WINDOW` iterations, first reaches ``level``."""
    values = np.array([value for _, _, value in points])
    if len(values) < REACH_WINDOW:
        return math.inf, math.inf
    means = np.convolve(values, np.ones(REACH_WINDOW) / REACH_WINDOW, mode="valid")
    for (steps, seconds, _), mean in zip(points[REACH_WINDOW - 1 :], means, strict=True):
        if mean >= level:
            return steps, seconds
    return math.inf, math.inf


# -- the summary --------------------------------------------------------------------------


def summarize(records: list[dict], benches: list[Benchmark], out: Path) -> dict:
    """Tables and PNGs of every task that has records; returns the summary written."""
    rng = np.random.default_rng(0)
    summary: dict[str, dict] = {}
    for bench in benches:
        mine = [r for r in records if r["env_id"] == bench.env_id]
        if not mine:
            continue
        by_variant = {v: [r for r in mine if r["variant"] == v] for v in VARIANTS}
        by_variant = {v: rs for v, rs in by_variant.items() if rs}
        finals = {
            v: iqm_interval([r["returns"]["trained"] for r in rs], rng)
            for v, rs in by_variant.items()
        }
        best = max(f[0] for f in finals.values())
        level = REACH * best
        rows = {}
        for variant, runs in by_variant.items():
            reached = [first_reach(r["curve"], level) for r in runs]
            steps = float(np.median([s for s, _ in reached]))
            minutes = float(np.median([t for _, t in reached])) / 60
            rows[variant] = {
                "seeds": len(runs),
                "final_iqm": finals[variant][0],
                "final_ci": finals[variant][1:],
                "reached": sum(math.isfinite(s) for s, _ in reached),
                "steps_to_90": steps,
                "minutes_to_90": minutes,
            }
        # Per variant: in the hierarchical one the baselines act through the goal wrapper
        # (the hand-written policy split at its goals, a random high level), other
        # policies than the flat variants' on the same episodes, with other returns.
        references = {
            variant: {
                name: float(np.mean([r["returns"][name] for r in runs]))
                for name in runs[0]["returns"]
                if name != "trained"
            }
            for variant, runs in by_variant.items()
        }
        summary[bench.env_id] = {
            "budget": bench.budget,
            "level": level,
            "variants": rows,
            "references": references,
        }
        plot(bench, by_variant, references, out / f"{bench.env_id}.png", rng)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    (out / "summary.md").write_text(table(summary))
    return summary


def table(summary: dict) -> str:
    lines = [
        "| task | variant | seeds | final return (IQM, 95 % CI) | env steps to 90 % of best "
        "| minutes to 90 % of best |",
        "|---|---|---|---|---|---|",
    ]
    for env_id, entry in summary.items():
        for variant, row in entry["variants"].items():
            low, high = row["final_ci"]
            never = not math.isfinite(row["steps_to_90"])
            steps = "never" if never else f"{row['steps_to_90'] / 1e6:.2f} M"
            minutes = "never" if never else f"{row['minutes_to_90']:.1f}"
            lines.append(
                f"| {env_id} | {variant} | {row['seeds']} | {row['final_iqm']:.3f} "
                f"[{low:.3f}, {high:.3f}] | {steps} ({row['reached']}/{row['seeds']} reached) "
                f"| {minutes} |"
            )
    notes = [
        f"- {env_id}: "
        + "; ".join(
            f"{', '.join(variants)}: " + ", ".join(f"{name} {value:.3f}" for name, value in refs)
            for refs, variants in shared_references(entry["references"]).items()
        )
        + f"; 90 % of the best: {entry['level']:.3f}"
        for env_id, entry in summary.items()
    ]
    heading = "References on the same held-out episodes (each variant's baselines act as it does):"
    return "\n".join([*lines, "", heading, *notes, ""])


def shared_references(
    references: dict[str, dict[str, float]],
) -> dict[tuple[tuple[str, float], ...], list[str]]:
    """Each distinct set of baseline returns, with the variants whose baselines scored it
    (the flat variants share theirs)."""
    shared: dict[tuple[tuple[str, float], ...], list[str]] = {}
    for variant, refs in references.items():
        # Rounded: the mean of one value over 3 seeds and over 2 can differ in the last
        # bits (29.9 against 29.899999999999995).
        key = tuple((name, round(value, 9)) for name, value in refs.items())
        shared.setdefault(key, []).append(variant)
    return shared


def plot(
    bench: Benchmark,
    by_variant: dict[str, list[dict]],
    references: dict[str, dict[str, float]],
    path: Path,
    rng: np.random.Generator,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = np.linspace(0, bench.budget, 101)
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for variant, runs in by_variant.items():
        curves = np.array([interpolate(r["curve"], grid) for r in runs])
        mean, low, high = mean_band(curves, rng)
        (line,) = ax.plot(grid, mean, label=f"{variant} ({len(runs)} seeds)")
        ax.fill_between(grid, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    sets = shared_references(references)
    for i, (refs, variants) in enumerate(sets.items()):
        color = ("#444444", "#999999")[i % 2]
        for (name, value), dashes in zip(refs, (":", "--", "-."), strict=False):
            label = name if len(sets) == 1 else f"{name} ({', '.join(variants)})"
            ax.axhline(value, linestyle=dashes, color=color, linewidth=1, label=label)
    ax.set_title(f"{bench.env_id}: return while training (sampled), 95 % band")
    ax.set_xlabel("env steps")
    ax.set_ylabel("episode return, summed over agents")
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def interpolate(points: list[list[float]], grid: np.ndarray) -> np.ndarray:
    """A run's training return on ``grid`` env steps (NaN before its first value)."""
    if not points:
        return np.full(len(grid), np.nan)
    steps, _, values = np.array(points).T
    out = np.interp(grid, steps, values)
    out[grid < steps[0]] = np.nan
    return out


# -- the command --------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/marl_suite"), help="results folder")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per variant, 0..N-1")
    parser.add_argument("--tasks", help="comma-separated env ids (default: all seven)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated")
    parser.add_argument(
        "--budget-scale", type=float, default=1.0, help="multiply every task's env-step budget"
    )
    parser.add_argument("--episodes", type=int, default=200, help="held-out episodes per run")
    parser.add_argument(
        "--jobs", type=int, default=1, help="runs at a time (each mostly uses one core)"
    )
    parser.add_argument("--summarize", action="store_true", help="only rewrite the summary")
    parser.add_argument("--quick", action="store_true", help="a smoke run (module docstring)")
    args = parser.parse_args()
    extra = []
    if args.quick:
        args.tasks = args.tasks or "Foraging-8x8-2p-2f-coop-v3,rware-tiny-2ag-v2"
        args.seeds, args.episodes = 1, 20
        # 16 envs, so that episodes (500 steps in RWARE) end within the budget.
        extra = ["--num-envs-per-env-runner", "16"]
        if args.out == parser.get_default("out"):
            args.out = Path("runs/marl_suite_quick")
    budget = (lambda b: QUICK_BUDGET) if args.quick else lambda b: round(b * args.budget_scale)
    wanted = args.tasks.split(",") if args.tasks else [b.env_id for b in BENCHMARKS]
    unknown = sorted(set(wanted) - {b.env_id for b in BENCHMARKS})
    variants = args.variants.split(",")
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, not {args.jobs}")
    if unknown or set(variants) - set(VARIANTS):
        parser.error(f"unknown tasks {unknown} or variants {sorted(set(variants) - set(VARIANTS))}")
    benches = [
        Benchmark(b.task, b.env_id, max(1, budget(b.budget)))
        for b in BENCHMARKS
        if b.env_id in wanted
    ]
    todo = schedule(benches, variants, args.seeds, args.out)
    if args.summarize:
        todo = [job for job in todo if (job[3] / RUN_FILE).exists()]
        if not todo:  # rather than overwrite a summary with an empty one
            parser.error(f"--summarize: no finished run in {args.out} of these tasks and seeds")
    args.out.mkdir(parents=True, exist_ok=True)

    def run(job: tuple[Benchmark, str, int, Path]) -> dict:
        bench, variant, seed, folder = job
        began = time.time()
        record = run_once(bench, variant, seed, folder, args.episodes, extra)
        print(
            f"{bench.env_id:<32} {variant:<13} seed {seed}: return "
            f"{record['returns']['trained']:.3f} ({record['actions']}, "
            f"{record['episodes']} episodes), {record['wall_seconds'] / 60:.1f} min "
            f"({time.time() - began:.0f} s now)\n",
            end="",  # one write, so that the lines of two jobs do not run together
            flush=True,
        )
        return record

    # Each run is its own `hmarl train` process with its own local Ray, mostly on one
    # core (num_env_runners 0, one torch thread), so --jobs 2 keeps 2 cores busy. A
    # thread per job only waits on its subprocesses. A failed run stops the suite as it
    # did one run at a time: the runs under way finish (and are kept), none starts.
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(run, job) for job in todo]
        try:
            records = [future.result() for future in futures]
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise
    summary = summarize(records, benches, args.out)
    print()
    print((args.out / "summary.md").read_text())
    print(f"written: {args.out}/summary.md, summary.json, {len(summary)} PNGs")


if __name__ == "__main__":
    main()

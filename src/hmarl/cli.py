"""The `hmarl` command line: one sub-command per tool, each a thin shell over a library module.

Every command works on every task. ``--task`` names it (default ``chicken_yard``);
commands that read a run folder take the task and its env settings from the run.
A task's own settings (the fields of its config dataclass) are flags too, built
from the dataclass by tyro, with the fields' docstrings as help.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import logging
import os
import sys
import time
import typing
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

STARTED = time.monotonic()
"""When this command began: the time budget counts from here, before Ray is imported."""

TASK_COMMANDS = ("random", "train", "evaluate", "watch", "check")
"""Commands that take a task's settings as flags."""
DEFAULT_EVALUATE_EPISODES = 500
DEFAULT_STOP_ITERS = 30
DEFAULT_PROGRESS_EVERY = 5.0
"""Seconds between progress lines of `train`: about 36 for a 3-minute run."""
CLOSING_SHARE = 0.2
"""The most of a time budget the closing evaluation may take; fewer episodes if need be."""
ACTIONS_NOTE = {
    "greedy": "trained: greedy actions (its most likely one at each step; the returns "
    "shown while training are of sampled actions: --actions sampled)",
    "sampled": "trained: actions sampled from its action distribution, as in training "
    "(seeded: the same --seed, the same numbers)",
}
"""Under every table of the trained policy: how it acted."""
LOAD_SECONDS = 1.0
"""Time kept for loading the final checkpoint's modules for the closing evaluation."""
PROBE_EPISODES = 4
"""Episodes of each baseline timed to size the closing evaluation of a task without a
batched env (whose evaluation steps its envs one by one, in proportion to the episodes)."""


class CliError(Exception):
    """A problem with the user's input: printed as one line, exit code 2."""


class CommandFailed(Exception):
    """The command could not finish (an env failed, say): one line, exit code 1."""


class Interrupted(Exception):
    """Ctrl-C: one line saying what was kept, exit code 130."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad option is one line on stderr (``--help`` shows the usage)."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def positive_int(text: str) -> int:
    value = _parse(text, int, "a whole number")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = _parse(text, int, "a whole number")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def positive_float(text: str) -> float:
    value = _parse(text, float, "a number")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def non_negative_float(text: str) -> float:
    value = _parse(text, float, "a number")
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of at least 0, got {text}")
    return value


def _parse(text: str, kind: type, what: str) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None


# -- tasks and their settings -------------------------------------------------------


def load_task(spec: str) -> Any:
    from hmarl.registry import load_task as find
    from hmarl.task import TaskError

    try:
        return find(spec)
    except TaskError as err:
        raise CliError(str(err)) from None


def task_settings(task: Any, flags: list[str], base: dict[str, Any], command: str) -> dict:
    """The task's env config: ``base`` with the task flags given on the command line.

    The flags are parsed by tyro from the task's config dataclass; a task without
    one takes no flags.
    """
    from hmarl.task import TaskError

    if not flags:
        return dict(base)
    if task.config is None:
        raise CliError(
            f"unrecognized arguments: {' '.join(flags)} (task {task.name} has no settings)"
        )
    import tyro

    try:
        default = task.env_config(base)
    except TaskError as err:
        raise CliError(str(err)) from None
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            config = tyro.cli(
                task.config, args=flags, default=default, prog=f"hmarl {command} --task {task.name}"
            )
    except SystemExit:
        line = _one_line(captured.getvalue())
        raise CliError(line.removeprefix(f"{task.config.__name__}: ")) from None
    except (TypeError, ValueError) as err:  # the config's own checks
        raise CliError(f"task {task.name}: {err}") from None
    return dataclasses.asdict(config)


def _one_line(tyro_output: str) -> str:
    """tyro's boxed error message as one line: the box's first section, its wrapped
    lines joined (tyro wraps at 80 columns)."""
    lines = [line.strip() for line in tyro_output.splitlines()]
    rules = [i for i, line in enumerate(lines) if line and not set(line) - set("-─│┃━ ")]
    section = lines[rules[0] + 1 : rules[1]] if len(rules) > 1 else []
    detail = " ".join(line for line in section if line)
    if not detail:
        meaningful = [line for line in lines if line and set(line) - set("-─│┃━ ")]
        detail = meaningful[1] if len(meaningful) > 1 else (meaningful or ["bad task option"])[0]
    return detail.removeprefix("Error parsing ").rstrip()


def task_help(spec: str, command: str) -> str:
    """The task's settings as help text (for ``--help``)."""
    from hmarl.registry import load_task as find
    from hmarl.task import TaskError

    try:
        task = find(spec)
    except TaskError as err:
        return f"(task options unavailable: {err})"
    if task.config is None:
        return f"task {task.name} has no settings of its own."
    import tyro

    captured = io.StringIO()
    with contextlib.redirect_stdout(captured), contextlib.suppress(SystemExit):
        tyro.cli(task.config, args=["--help"], prog=f"hmarl {command} --task {task.name}")
    lines = captured.getvalue().splitlines()
    start = next((i for i, line in enumerate(lines) if "--help" in line), -1) + 1
    body = "\n".join(line.rstrip() for line in lines[start:]).strip("\n")
    where = " (also an [env] table in --config)" if command == "train" else ""
    return f"settings of task {task.name}{where}:\n{body}"


def _task_in(argv: Sequence[str]) -> str:
    """The --task value on a command line, for help text before parsing."""
    from hmarl.registry import DEFAULT_TASK

    for i, arg in enumerate(argv):
        if arg == "--task" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--task="):
            return arg.split("=", 1)[1]
    return DEFAULT_TASK


# -- the commands ---------------------------------------------------------------------


def cmd_tasks(args: argparse.Namespace, flags: list[str]) -> None:
    from hmarl.registry import available_tasks
    from hmarl.registry import load_task as find
    from hmarl.task import TaskError

    for listing in available_tasks():
        if listing.missing:
            print(f"{listing.name:<16} {listing.origin:<16} (not installed: {listing.missing})")
            continue
        try:
            description = find(listing.name).description or "-"
        except TaskError as err:
            description = f"(cannot load: {err})"
        print(f"{listing.name:<16} {listing.origin:<16} {description}")


def cmd_new_task(args: argparse.Namespace, flags: list[str]) -> None:
    from hmarl.scaffold import write_package

    try:
        written = write_package(args.name, args.out)
    except ValueError as err:
        raise CliError(str(err)) from None
    print(f"wrote a task package for {args.name!r} in {written}")
    print(f"next: pip install -e {written} && hmarl train --task {args.name} --stop-iters 2")


def cmd_random(args: argparse.Namespace, flags: list[str]) -> None:
    from hmarl.evaluation import baseline_policies, episode_seeds, evaluate, play_episode
    from hmarl.registry import DEFAULT_TASK
    from hmarl.report import print_episode, print_results_table
    from hmarl.task_env import make_task_env

    task = load_task(args.task or DEFAULT_TASK)
    env_config = task_settings(task, flags, task.env_config_dict(), "random")
    _preflight(task, env_config)
    seeds = episode_seeds(args.seed, args.episodes)
    policies = baseline_policies(task, env_config, seeds[0])
    if args.policy not in policies:
        raise CliError(
            f"task {task.name} has no policy {args.policy!r}; choose {', '.join(policies)}"
        )
    policy = policies[args.policy]
    if args.out or args.window:
        _render(task, env_config, policy, seeds, args.out, args.fps)
    env = make_task_env(task, env_config)
    for seed in seeds:
        print_episode(play_episode(task, env, policy, seed))
    result = evaluate(task, env_config, policy, seeds, batched=False)
    print_results_table(task, {args.policy: result}, title=f"{args.episodes} episodes")


def _preflight(task: Any, env_config: dict, **budget: Any) -> tuple[dict, Any]:
    """The checks `train` runs before Ray starts (see hmarl.training.preflight)."""
    from hmarl.task import TaskError
    from hmarl.training import preflight

    try:
        return preflight(task, env_config, **budget)
    except TaskError as err:
        raise CliError(str(err)) from None


def cmd_check(args: argparse.Namespace, flags: list[str]) -> None:
    from hmarl.conformance import check_batched_env, check_determinism
    from hmarl.evaluation import EVAL_SEED_BASE
    from hmarl.registry import DEFAULT_TASK
    from hmarl.task import TaskError
    from hmarl.task_env import make_task_env

    task = load_task(args.task or DEFAULT_TASK)
    env_config = task_settings(task, flags, task.env_config_dict(), "check")
    _preflight(task, env_config, episodes=args.episodes, step_budget=None)
    passed = [
        f"hmarl's conformance checks, RLlib's episodes and RLlib's env checker "
        f"({args.episodes} episodes)"
    ]
    try:
        check_determinism(lambda: make_task_env(task, env_config), seed=0, episodes=2)
        passed.append("seeded runs identical")
        if task.make_batched_env is not None:
            seeds = [EVAL_SEED_BASE + i for i in range(args.episodes)]
            check_batched_env(task, env_config, seeds)
            passed.append(f"its batched env equal to its env ({len(seeds)} episodes)")
    except AssertionError as err:
        raise CliError(f"task {task.name}: its env breaks the protocol: {err}") from None
    except TaskError as err:
        raise CliError(str(err)) from None
    except Exception as err:
        raise CliError(f"task {task.name}: its env failed: {type(err).__name__}: {err}") from None
    print(f"task {task.name}: passed: {', '.join(passed)}")


def _render(
    task: Any, env_config: dict, policy: Any, seeds: list[int], out: Path | None, fps: int
) -> None:
    """Episodes to a GIF/MP4 file, or to a live window when no file is given."""
    from hmarl.recording import record, watch_live
    from hmarl.task import TaskError

    try:
        if out is None:
            watch_live(task, env_config, policy, seeds, fps=fps)
        else:
            frames = record(task, env_config, policy, seeds, out, fps=fps)
            print(f"wrote {out} ({frames} frames)")
    except (ValueError, RuntimeError, OSError, TaskError) as err:
        raise CliError(str(err)) from None


def load_trained(args: argparse.Namespace, flags: list[str], command: str) -> Any:
    """The trained policy a RUN argument names, on the env it was trained on (and flags)."""
    from hmarl.checkpoints import CheckpointError
    from hmarl.export import Description, is_export
    from hmarl.runs import find_run
    from hmarl.runs import load_trained as load
    from hmarl.task import TaskError

    path = Path(args.checkpoint)
    given = load_task(args.task) if args.task else None
    try:
        if is_export(path):
            description = Description.read(path)
            record = description.record
            task = given or description.load_task(path)
        else:
            run = find_run(path) if path.exists() else None
            record = run[1] if run else None
            task = given or (record.load_task() if record else None)
        base = record.env_config if record else {}
        overrides = {}
        if task is not None and flags:
            settings = task_settings(task, flags, task.env_config_dict(base), command)
            overrides = {k: v for k, v in settings.items() if base.get(k) != v}
        return load(args.checkpoint, env_overrides=overrides, task=task)
    except (CheckpointError, TaskError) as err:
        raise CliError(str(err)) from None


def _print_source(loaded: Any) -> None:
    """Which checkpoint (or export) a tool uses, and the newer ones it skipped."""
    _print_skipped(loaded, sys.stdout)
    print(f"checkpoint: {loaded.source}")


def _print_skipped(loaded: Any, out: Any) -> None:
    for note in loaded.skipped:
        print(f"skipped an incomplete checkpoint: {note}", file=out)


def _acting(trained: Any, actions: str | None, seed: int) -> str:
    """Make the trained policy act as asked (default: as its task says); return how."""
    import torch

    # One torch thread, as training has (HierarchicalPPOConfig.torch_threads): the policy
    # acts on small batches, where a second thread costs more than it saves, and on a busy
    # machine far more (`hmarl evaluate` of a hierarchical rware-tiny-2ag run, 20 episodes,
    # at a load of 5 on 2 cores: 77 s with torch's default of two threads, 15 s with one).
    torch.set_num_threads(1)
    how = actions or trained.task.evaluation_actions
    if how == "sampled":
        trained.policy = trained.policy.sampling(seed)
    return how


def cmd_watch(args: argparse.Namespace, flags: list[str]) -> None:
    from hmarl.evaluation import episode_seeds

    trained = load_trained(args, flags, "watch")
    _print_source(trained)
    seeds = episode_seeds(args.seed, args.episodes)
    print(ACTIONS_NOTE[_acting(trained, args.actions, seeds[0])])
    _render(trained.task, trained.env_config, trained.policy, seeds, args.out, args.fps)


def cmd_inspect(args: argparse.Namespace, flags: list[str]) -> None:
    from hmarl.inspection import describe_policies, print_policies

    trained = load_trained(args, flags, "inspect")
    summaries = describe_policies(trained.policy.modules)
    if args.json:
        _print_skipped(trained, sys.stderr)  # stdout is the JSON alone
        print(json.dumps({name: s.to_dict() for name, s in summaries.items()}))
        return
    _print_source(trained)
    print_policies(summaries)


def cmd_export(args: argparse.Namespace, flags: list[str]) -> None:
    from hmarl.checkpoints import CheckpointError
    from hmarl.export import export
    from hmarl.task import TaskError

    try:
        done = export(args.checkpoint, args.out, args.format or (), task_ref=args.task)
    except (CheckpointError, TaskError) as err:
        raise CliError(str(err)) from None
    _print_source(done)
    for name in done.files:
        print(f"wrote {done.folder / name}")


def cmd_plot(args: argparse.Namespace, flags: list[str]) -> None:
    from hmarl.plotting import plot_run

    out = args.out or args.run_dir / "learning_curves.png"
    try:
        plot_run(args.run_dir, out)
    except ValueError as err:
        raise CliError(str(err)) from None
    print(f"wrote {out}")


def cmd_train(args: argparse.Namespace, flags: list[str]) -> None:
    from hmarl.faults import TrainingStopped
    from hmarl.registry import DEFAULT_TASK
    from hmarl.report import TrainingProgress, console
    from hmarl.training import (
        TrainConfig,
        describe_stop,
        plan,
        read_toml,
        train,
        with_task_training,
    )

    settings = {
        "task": args.task,
        "stop_iters": args.stop_iters,
        "stop_timesteps": args.stop_timesteps,
        "time_budget": args.time_budget,
        "num_env_runners": args.num_env_runners,
        "num_envs_per_env_runner": args.num_envs_per_env_runner,
        "torch_threads": args.torch_threads,
        "address": args.address,
        "out": args.out,
        "seed": args.seed,
        "resume": args.resume or None,
        "use_tune": False if args.no_tune else None,
        "checkpoint_every": args.checkpoint_every,
        "keep_checkpoints": args.keep_checkpoints,
        "modules": args.modules,
        "critic": args.critic,
        "memory": args.memory,
        "max_seq_len": args.max_seq_len,
        "schedule_timeout": args.schedule_timeout,
        "discounting": args.discounting,
        "sampler": args.sampler,
        "anneal_lr": args.anneal_lr,
    }
    given = {k: v for k, v in settings.items() if v is not None}
    try:
        in_file = read_toml(args.config) if args.config else {}
        cfg = TrainConfig.from_settings(in_file, given, source=args.config)
        task = load_task(cfg.task or _resumed_task(cfg) or DEFAULT_TASK)
        cfg, own = with_task_training(cfg, task, told=set(given) | set(in_file))
        if flags:
            cfg.env = {
                **cfg.env,
                **task_settings(task, flags, task.env_config_dict(cfg.env), "train"),
            }
        # The env's checks run here, before Ray starts (RLlib is imported already).
        p = plan(cfg, default_stop_iters=DEFAULT_STOP_ITERS)
    except ValueError as err:
        raise CliError(str(err)) from None
    if own:
        told_by_task = ", ".join(f"{k} {v}" for k, v in own.items())
        console.print(f"the task's training settings: {told_by_task}", soft_wrap=True)
    for note in p.skipped:
        console.print(f"skipped an incomplete checkpoint: {note}", soft_wrap=True)
    if p.start_from is not None:
        console.print(
            f"resuming {p.out} from {p.start_from} (iteration {p.start_iteration})",
            soft_wrap=True,
        )
    elif cfg.resume:
        console.print(
            f"resuming {p.out} from the start: it holds no complete checkpoint yet",
            soft_wrap=True,
        )
    console.print(
        f"training {p.task.name} into {p.out} ({'Ray Tune' if cfg.use_tune else 'no Tune'}); "
        f"stops {describe_stop(cfg, p.time_left)}",
        soft_wrap=True,
    )
    closing = None if args.no_evaluate else _plan_closing_evaluation(p)
    if closing is not None and closing.note:
        console.print(closing.note, soft_wrap=True)
    progress = TrainingProgress(p, STARTED, every=args.progress_every)
    try:
        checkpoint = train(
            p,
            on_result=progress.update,
            started=STARTED,
            reserve=closing.seconds if closing else 0.0,
        )
    except ValueError as err:
        raise CliError(str(err)) from None
    except TrainingStopped as err:
        raise CommandFailed(str(err)) from None
    except KeyboardInterrupt:
        raise Interrupted(_kept(p)) from None
    finally:
        progress.close()
    if closing is not None:
        _closing_evaluation(p, checkpoint, closing)
    print(f"checkpoint: {checkpoint}")


def _kept(p: Any) -> str:
    """What an interrupted run keeps, and the command that continues it."""
    from hmarl.checkpoints import find_checkpoints, read_marker

    found = find_checkpoints(p.out) if p.out.is_dir() else []
    again = f"continue with `hmarl train --resume --out {p.out}`"
    if not found:
        return f"no checkpoint was saved yet; {again} (it starts over)"
    newest = found[-1]
    return f"newest checkpoint {newest} (iteration {read_marker(newest)['iteration']}); {again}"


def _resumed_task(cfg: Any) -> str | None:
    from hmarl.runs import find_run

    run = find_run(cfg.out) if cfg.resume and cfg.out is not None else None
    return run[1].task_ref if run else None


@dataclasses.dataclass
class Closing:
    """The closing evaluation of `train`, planned before training."""

    seeds: list[int]
    """Its episodes' seeds (none: it does not fit in the time budget)."""
    known: dict[str, Any] | None = None
    """Random's and the baselines' results on ``seeds``, measured before training."""
    seconds: float = 0.0
    """The time budget kept for it (the trained policy's part)."""
    note: str = ""


def _plan_closing_evaluation(p: Any) -> Closing:
    """Size the closing evaluation so that a budgeted run ends within its budget.

    Without a time budget it is played after training, as `evaluate` plays it. With
    one, random and the baselines are played before training (the same seeds, the
    same numbers) and the time they took, the slowest's, is kept for the trained
    policy; a task without a batched env, whose evaluation costs in proportion to
    its episodes, gets as many of them as fit in a fifth of the budget, sized on
    PROBE_EPISODES episodes of each baseline.
    """
    from hmarl.evaluation import episode_seeds, evaluate_baselines
    from hmarl.training import episodes_that_fit

    seeds = episode_seeds(None, DEFAULT_EVALUATE_EPISODES)
    if p.time_left is None:
        return Closing(seeds)
    allowed = CLOSING_SHARE * p.time_left
    if p.task.make_batched_env is None:
        _, probe = evaluate_baselines(p.task, p.env_config, seeds[:PROBE_EPISODES])
        per_episode = (sum(probe.values()) + max(probe.values())) / PROBE_EPISODES
        fit = episodes_that_fit(per_episode, allowed, len(seeds))
        if fit < 1:
            return Closing([], note=_no_closing(p, per_episode))
        seeds = seeds[:fit]
    known, seconds = evaluate_baselines(p.task, p.env_config, seeds)
    # The trained policy's part: as long as the slowest baseline's, twice over (its
    # network), and loading the checkpoint.
    reserve = 2 * max(seconds.values()) + LOAD_SECONDS
    note = ""
    if len(seeds) < DEFAULT_EVALUATE_EPISODES:
        note = (
            f"the closing evaluation plays {len(seeds)} episodes (of {DEFAULT_EVALUATE_EPISODES}): "
            f"more would not fit in a fifth of the time budget"
        )
    return Closing(seeds, known, reserve, note)


def _no_closing(p: Any, per_episode: float) -> str:
    return (
        f"no closing evaluation: one episode of each policy takes about {per_episode:.1f} s, "
        f"more than a fifth of the time budget; run `hmarl evaluate {p.out}` after training"
    )


def _compare(trained: Any, seeds: list[int], known: dict[str, Any] | None = None) -> Any:
    """The trained policy against random and the task's baselines on seeded episodes."""
    from hmarl.evaluation import compare

    return compare(trained.task, trained.env_config, trained.policy, seeds, known=known)


def _print_comparison(trained: Any, seeds: list[int], how: str, known: Any = None) -> None:
    from hmarl.report import print_comparison

    comparison = _compare(trained, seeds, known)
    print_comparison(trained.task, comparison, title=f"{len(seeds)} episodes from seed {seeds[0]}")
    print(ACTIONS_NOTE[how])


def _closing_evaluation(p: Any, checkpoint: Path, closing: Closing) -> None:
    from hmarl.checkpoints import CheckpointError
    from hmarl.runs import load_trained as load

    if not closing.seeds:
        print(closing.note)
        return
    try:
        trained = load(checkpoint, task=p.task)
    except CheckpointError as err:
        raise CliError(str(err)) from None
    how = _acting(trained, None, closing.seeds[0])
    _print_comparison(trained, closing.seeds, how, closing.known)


def cmd_evaluate(args: argparse.Namespace, flags: list[str]) -> None:
    from hmarl.evaluation import episode_seeds

    trained = load_trained(args, flags, "evaluate")
    seeds = episode_seeds(args.seed, args.episodes)
    how = _acting(trained, args.actions, seeds[0])
    if not args.json:
        _print_source(trained)
        _print_comparison(trained, seeds, how)
        return
    _print_skipped(trained, sys.stderr)  # stdout is the JSON alone
    comparison = _compare(trained, seeds)
    result = {
        "task": trained.task.name,
        "episodes": args.episodes,
        "seed": seeds[0],
        "actions": how,
        "checkpoint": str(trained.source),
        "policies": {name: r.to_dict() for name, r in comparison.policies.items()},
        "normalized_score": comparison.score,
    }
    print(json.dumps(result))


# -- the parser ------------------------------------------------------------------------


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    from hmarl.registry import DEFAULT_TASK

    parser = OneLineParser(
        prog="hmarl",
        description="Hierarchical multi-agent RL on Ray RLlib: train, evaluate, watch, inspect "
        f"and plot any task ({DEFAULT_TASK} by default).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wants_help = any(a in ("-h", "--help") for a in argv)
    command_name = next((a for a in argv if a in TASK_COMMANDS), "COMMAND")
    epilog = task_help(_task_in(argv), command_name) if wants_help else None

    def command(name: str, help: str, **kwargs: Any) -> argparse.ArgumentParser:
        takes = name in TASK_COMMANDS
        return sub.add_parser(
            name,
            help=help,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            epilog=epilog.replace("COMMAND", name) if epilog and takes else None,
            **kwargs,
        )

    p = command("tasks", "list the tasks hmarl can find: built-in and installed")
    p.set_defaults(func=cmd_tasks)

    p = command("new-task", "write a small installable package for a new task")
    p.add_argument("name", help="the task's name, e.g. couriers")
    p.add_argument("--out", type=Path, required=True, help="folder to write the package into")
    p.set_defaults(func=cmd_new_task)

    p = command(
        "check",
        "check a task's env before training: hmarl's conformance checks and RLlib's own",
        description="Play a task's env under every check `train` runs before Ray starts, "
        "on more episodes: hmarl's conformance checks, RLlib's episodes and env checker, "
        "seeded runs, and its batched env against its env. One line; exit 2 if it fails.",
    )
    _add_task_option(p)
    p.add_argument("--episodes", type=positive_int, default=5, help="episodes to play (5)")
    p.set_defaults(func=cmd_check)

    p = command("random", "run a task with random (or a baseline's) actions")
    _add_task_option(p)
    _add_episode_options(p, episodes=5, default_seed=0)
    p.add_argument("--policy", default="random", help="random, or one of the task's baselines")
    _add_render_options(p, window_flag=True)
    p.set_defaults(func=cmd_random)

    p = command(
        "train",
        "train a task's policies with PPO (through Ray Tune unless --no-tune)",
        description="Train every policy of a task. Prints progress per iteration, evaluates "
        "the result against the baselines, and ends with 'checkpoint: PATH'.",
    )
    _add_task_option(p)
    stop = p.add_argument_group(
        f"when to stop (default: --stop-iters {DEFAULT_STOP_ITERS}; given several, training "
        "stops at whichever comes first; --resume without any: the run's own)"
    )
    stop.add_argument("--stop-iters", type=positive_int, help="training iterations")
    stop.add_argument("--stop-timesteps", type=positive_int, help="env steps sampled")
    stop.add_argument(
        "--time-budget",
        type=positive_float,
        metavar="SECONDS",
        help="wall-clock seconds for the whole command; stops in time to checkpoint",
    )
    p.add_argument("--num-env-runners", type=non_negative_int, help="sampling processes (0)")
    p.add_argument(
        "--num-envs-per-env-runner",
        type=positive_int,
        help="envs per env runner (256 with the batched sampler, 16 with RLlib's)",
    )
    p.add_argument(
        "--torch-threads",
        type=positive_int,
        metavar="N",
        help="torch threads of the training process (default: every core with "
        "--time-budget on a local Ray, else 1; give 1 to runs sharing the machine)",
    )
    p.add_argument("--address", help="join this Ray cluster instead of starting a local Ray")
    p.add_argument("--out", type=Path, help="run folder (default runs/TASK)")
    p.add_argument("--seed", type=non_negative_int, help="RLlib seed (0)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out (default runs/TASK) toward its own stop, unless given one",
    )
    p.add_argument("--no-tune", action="store_true", help="run the algorithm directly")
    p.add_argument(
        "--checkpoint-every", type=positive_int, help="iterations between checkpoints (5)"
    )
    p.add_argument(
        "--keep-checkpoints",
        type=non_negative_int,
        metavar="N",
        help="keep the newest N checkpoints of the run, 0 every one (10)",
    )
    p.add_argument("--config", type=Path, help="TOML file of training settings ([env] table too)")
    p.add_argument("--no-evaluate", action="store_true", help="skip the closing evaluation")
    p.add_argument(
        "--progress-every",
        type=non_negative_float,
        default=DEFAULT_PROGRESS_EVERY,
        metavar="SECONDS",
        help=f"seconds between progress lines ({DEFAULT_PROGRESS_EVERY:g}; 0: every "
        "iteration); the first and the last iteration's always show",
    )
    p.add_argument(
        "--modules",
        choices=("task", "default"),
        help="task: the task's RL modules (default); default: RLlib's MLPs",
    )
    p.add_argument(
        "--critic",
        choices=("local", "central"),
        help="central: every policy's value also reads the env's global state (MAPPO); "
        "default: each policy's own (the task's, else local)",
    )
    p.add_argument(
        "--memory",
        choices=("none", "lstm"),
        help="lstm: every policy on RLlib's default module gets an LSTM (memory across its "
        "agent's decisions); default: each policy's own (the task's, else none)",
    )
    p.add_argument(
        "--max-seq-len",
        type=positive_int,
        metavar="N",
        help="decisions per training sequence of a policy with memory (default: the "
        "task's, else 20)",
    )
    p.add_argument(
        "--schedule-timeout",
        type=positive_int,
        metavar="STEPS",
        help="warn when the schedule still holds a policy after this many env steps",
    )
    p.add_argument(
        "--discounting",
        choices=("smdp", "per-decision"),
        help="a decision lasting k env steps counts gamma**k (smdp) or gamma once (RLlib's "
        "per-decision); default: the task's",
    )
    p.add_argument(
        "--sampler",
        choices=("auto", "batched", "rllib"),
        help="batched: hmarl's sampler on the task's batched env; rllib: RLlib's env runner; "
        "auto (default): batched when the task has a batched env",
    )
    p.add_argument(
        "--anneal-lr",
        action=argparse.BooleanOptionalAction,
        help="every learning rate falls linearly to zero by the run's stop (default: the "
        "task's, else no)",
    )
    p.set_defaults(func=cmd_train)

    p = command("evaluate", "trained policy vs random vs baselines on the same seeded episodes")
    _add_run_argument(p)
    _add_episode_options(p, episodes=1000, default_seed=None)
    _add_actions_option(p)
    p.add_argument("--json", action="store_true", help="print JSON for programs")
    p.set_defaults(func=cmd_evaluate)

    p = command("watch", "watch a trained policy: a live pygame window, or a GIF/MP4 file")
    _add_run_argument(p)
    _add_episode_options(p, episodes=1, default_seed=None)
    _add_actions_option(p)
    _add_render_options(p, window_flag=False)
    p.set_defaults(func=cmd_watch)

    p = command("inspect", "each policy's network: layers, shapes, parameter counts")
    _add_run_argument(p)
    p.add_argument("--json", action="store_true", help="print JSON for programs")
    p.set_defaults(func=cmd_inspect)

    p = command(
        "export",
        "write a policy's weights without pickle (safetensors + JSON), optionally ONNX",
        description="Write each policy's weights as safetensors with a JSON description, a "
        "folder that evaluate, watch and inspect take and that loads without unpickling "
        "anything: the safe way to share a policy.",
    )
    _add_run_argument(p)
    p.add_argument("--out", type=Path, required=True, help="the folder to write (must be new)")
    p.add_argument(
        "--format",
        action="append",
        metavar="FORMAT",
        help="onnx: also a graph of each policy's greedy action (safetensors is always "
        "written); repeat or comma-separate",
    )
    p.set_defaults(func=cmd_export)

    p = command("plot", "learning curves of a run to a PNG")
    p.add_argument("run_dir", type=Path, help="run folder (or a Tune trial folder in it)")
    p.add_argument(
        "--out", type=Path, metavar="FILE.png", help="default: RUN_DIR/learning_curves.png"
    )
    p.set_defaults(func=cmd_plot)
    return parser


def _add_task_option(parser: argparse.ArgumentParser) -> None:
    from hmarl.registry import DEFAULT_TASK

    parser.add_argument(
        "--task",
        help="a task name (see `hmarl tasks`) or module:attribute "
        f"(default {DEFAULT_TASK}); its settings are flags too, see below",
    )


def _add_run_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "checkpoint", type=Path, help="run, Tune trial, checkpoint or export folder"
    )
    parser.add_argument(
        "--task",
        help="the task, for a checkpoint outside any run folder, or for an export whose "
        "task is a module:attribute",
    )


def _add_episode_options(
    parser: argparse.ArgumentParser, episodes: int, default_seed: int | None
) -> None:
    parser.add_argument(
        "--episodes", type=positive_int, default=episodes, help=f"episodes ({episodes})"
    )
    seed_help = "seed of the first episode (" + (
        f"{default_seed})"
        if default_seed is not None
        else "default: 1000000000, beyond training's)"
    )
    parser.add_argument("--seed", type=non_negative_int, default=default_seed, help=seed_help)


def _add_actions_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--actions",
        choices=("greedy", "sampled"),
        help="greedy: the trained policy's most likely action; sampled: drawn from its "
        "action distribution as in training (seeded by --seed); default: the task's "
        "(greedy unless it says otherwise)",
    )


def _add_render_options(parser: argparse.ArgumentParser, window_flag: bool) -> None:
    parser.add_argument(
        "--out", type=Path, metavar="FILE", help="write a .gif or .mp4 instead of a live window"
    )
    parser.add_argument("--fps", type=positive_int, default=10, help="frames per second (10)")
    if window_flag:
        parser.add_argument("--window", action="store_true", help="show the episodes live")


def quiet() -> None:
    """Keep Ray's, Tune's and RLlib's own chatter off the screen; our lines say it all.

    Ray and RLlib set up their "ray" and "ray.rllib" loggers, each with a handler to
    the terminal, when first imported; those handlers are turned down to critical
    messages (RLlib logs a restarted env runner's error as a whole traceback; hmarl
    prints one line for it). The loggers themselves stay open, so what they log
    during training reaches the run's log file (see hmarl.training).
    """
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    import ray.rllib  # noqa: F401 (configures the loggers and their terminal handlers)

    from hmarl.training import RAY_LOGGERS

    for name in RAY_LOGGERS:
        for handler in logging.getLogger(name).handlers:
            if not isinstance(handler, logging.FileHandler):
                handler.setLevel(logging.CRITICAL)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args, flags = parser.parse_known_args(argv)
    if flags and args.command not in (*TASK_COMMANDS, "inspect"):
        parser.error(f"unrecognized arguments: {' '.join(flags)}")
    if args.command not in ("tasks", "new-task", "plot"):
        quiet()
    try:
        args.func(args, flags)
    except CliError as err:
        print(f"hmarl {args.command}: error: {err}", file=sys.stderr)
        return 2
    except CommandFailed as err:
        print(f"hmarl {args.command}: stopped: {err}", file=sys.stderr)
        return 1
    except Interrupted as err:
        print(f"hmarl {args.command}: interrupted: {err}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(f"hmarl {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

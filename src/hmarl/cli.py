"""The `hmarl` command line: one sub-command per tool, each a thin shell over a library module.

Every command works on every task. ``--task`` names it (default ``chicken_yard``);
commands that read a run folder take the task and its env settings from the run.
A task's own settings (the fields of its config dataclass) are flags too, built
from the dataclass by tyro, with the fields' docstrings as help.
"""

from __future__ import annotations

import argparse
import contextlib
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

TASK_COMMANDS = ("random", "train", "evaluate", "watch")
"""Commands that take a task's settings as flags."""
DEFAULT_EVALUATE_EPISODES = 500
DEFAULT_STOP_ITERS = 30


class CliError(Exception):
    """A problem with the user's input: printed as one line, exit code 2."""


class CommandFailed(Exception):
    """The command could not finish (an env failed, say): one line, exit code 1."""


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
    import dataclasses

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
    return f"settings of task {task.name} (also an [env] table in --config):\n{body}"


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
    from hmarl.evaluation import baseline_policies, episode_seeds, play_episode
    from hmarl.registry import DEFAULT_TASK
    from hmarl.report import print_episode, print_results_table
    from hmarl.task_env import make_task_env

    task = load_task(args.task or DEFAULT_TASK)
    env_config = task_settings(task, flags, task.env_config_dict(), "random")
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
    from hmarl.evaluation import evaluate

    result = evaluate(task, env_config, policy, seeds, batched=False)
    print_results_table(task, {args.policy: result}, title=f"{args.episodes} episodes")


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


def cmd_watch(args: argparse.Namespace, flags: list[str]) -> None:
    from hmarl.evaluation import episode_seeds

    trained = load_trained(args, flags, "watch")
    print(f"checkpoint: {trained.source}")
    seeds = episode_seeds(args.seed, args.episodes)
    _render(trained.task, trained.env_config, trained.policy, seeds, args.out, args.fps)


def cmd_inspect(args: argparse.Namespace, flags: list[str]) -> None:
    from hmarl.inspection import describe_policies, print_policies

    trained = load_trained(args, flags, "inspect")
    summaries = describe_policies(trained.policy.modules)
    if args.json:
        print(json.dumps({name: s.to_dict() for name, s in summaries.items()}))
        return
    print(f"checkpoint: {trained.source}")
    print_policies(summaries)


def cmd_export(args: argparse.Namespace, flags: list[str]) -> None:
    from hmarl.checkpoints import CheckpointError
    from hmarl.export import export
    from hmarl.task import TaskError

    try:
        done = export(args.checkpoint, args.out, args.format or (), task_ref=args.task)
    except (CheckpointError, TaskError) as err:
        raise CliError(str(err)) from None
    print(f"checkpoint: {done.source}")
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
    from hmarl.training import TrainConfig, plan, train

    settings = {
        "task": args.task,
        "stop_iters": args.stop_iters,
        "stop_timesteps": args.stop_timesteps,
        "time_budget": args.time_budget,
        "num_env_runners": args.num_env_runners,
        "num_envs_per_env_runner": args.num_envs_per_env_runner,
        "address": args.address,
        "out": args.out,
        "seed": args.seed,
        "resume": args.resume or None,
        "use_tune": False if args.no_tune else None,
        "checkpoint_every": args.checkpoint_every,
        "keep_checkpoints": args.keep_checkpoints,
        "modules": args.modules,
        "critic": args.critic,
        "schedule_timeout": args.schedule_timeout,
        "discounting": args.discounting,
        "sampler": args.sampler,
    }
    given = {k: v for k, v in settings.items() if v is not None}
    try:
        cfg = TrainConfig.from_toml(args.config, **given) if args.config else TrainConfig(**given)
        if flags:
            task = load_task(cfg.task or _resumed_task(cfg) or DEFAULT_TASK)
            cfg.env = {
                **cfg.env,
                **task_settings(task, flags, task.env_config_dict(cfg.env), "train"),
            }
        if cfg.stop_iters is None and cfg.stop_timesteps is None and cfg.time_budget is None:
            cfg.stop_iters = DEFAULT_STOP_ITERS
        p = plan(cfg, check_env=False)
    except ValueError as err:
        raise CliError(str(err)) from None
    if p.start_from is not None:
        console.print(f"resuming {p.out} from {p.start_from} (iteration {p.start_iteration})")
    elif cfg.resume:
        console.print(f"resuming {p.out} from the start: it holds no complete checkpoint yet")
    console.print(
        f"training {p.task.name} into {p.out} ({'Ray Tune' if cfg.use_tune else 'no Tune'})"
    )
    progress = TrainingProgress(p, STARTED)
    try:
        checkpoint = train(p, on_result=progress.update, started=STARTED)
    except ValueError as err:
        raise CliError(str(err)) from None
    except TrainingStopped as err:
        raise CommandFailed(str(err)) from None
    finally:
        progress.close()
    if not args.no_evaluate:
        _closing_evaluation(p, checkpoint)
    print(f"checkpoint: {checkpoint}")


def _resumed_task(cfg: Any) -> str | None:
    from hmarl.runs import find_run

    run = find_run(cfg.out) if cfg.resume and cfg.out is not None else None
    return run[1].task_ref if run else None


def _compare(trained: Any, episodes: int, seed: int | None) -> tuple[list[int], Any]:
    """The trained policy against random and the task's baselines on seeded episodes."""
    from hmarl.evaluation import compare, episode_seeds

    seeds = episode_seeds(seed, episodes)
    return seeds, compare(trained.task, trained.env_config, trained.policy, seeds)


def _print_comparison(trained: Any, episodes: int, seed: int | None) -> None:
    from hmarl.report import print_comparison

    seeds, comparison = _compare(trained, episodes, seed)
    print(f"checkpoint: {trained.source}")
    print_comparison(trained.task, comparison, title=f"{episodes} episodes from seed {seeds[0]}")


def _closing_evaluation(p: Any, checkpoint: Path) -> None:
    from hmarl.checkpoints import CheckpointError
    from hmarl.runs import load_trained as load

    try:
        trained = load(checkpoint, task=p.task)
    except CheckpointError as err:
        raise CliError(str(err)) from None
    _print_comparison(trained, DEFAULT_EVALUATE_EPISODES, None)


def cmd_evaluate(args: argparse.Namespace, flags: list[str]) -> None:
    trained = load_trained(args, flags, "evaluate")
    if not args.json:
        _print_comparison(trained, args.episodes, args.seed)
        return
    seeds, comparison = _compare(trained, args.episodes, args.seed)
    result = {
        "task": trained.task.name,
        "episodes": args.episodes,
        "seed": seeds[0],
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
    epilog = task_help(_task_in(argv), "COMMAND") if wants_help else None

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
    stop = p.add_argument_group(f"when to stop (default: --stop-iters {DEFAULT_STOP_ITERS})")
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
    p.add_argument("--address", help="join this Ray cluster instead of starting a local Ray")
    p.add_argument("--out", type=Path, help="run folder (default runs/TASK)")
    p.add_argument("--seed", type=non_negative_int, help="RLlib seed (0)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
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
    p.set_defaults(func=cmd_train)

    p = command("evaluate", "trained policy vs random vs baselines on the same seeded episodes")
    _add_run_argument(p)
    _add_episode_options(p, episodes=1000, default_seed=None)
    p.add_argument("--json", action="store_true", help="print JSON for programs")
    p.set_defaults(func=cmd_evaluate)

    p = command("watch", "watch a trained policy: a live pygame window, or a GIF/MP4 file")
    _add_run_argument(p)
    _add_episode_options(p, episodes=1, default_seed=None)
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
    except KeyboardInterrupt:
        hint = " (continue with --resume)" if args.command == "train" else ""
        print(f"hmarl {args.command}: interrupted{hint}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The `hmarl` command line: one sub-command per tool, each a thin shell over a library module."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from hmarl.simulation import YardConfig

STARTED = time.monotonic()
"""When this command began: the time budget counts from here, before Ray is imported."""


class CliError(Exception):
    """A problem with the user's input: printed as one line, exit code 2."""


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


def _parse(text: str, kind: type, what: str):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None


YARD_OPTIONS = ("num_robots", "num_chickens", "timeout")
DEFAULT_STOP_ITERS = 30


def add_yard_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("yard")
    group.add_argument("--num-robots", type=positive_int, help="robots in the yard (default 2)")
    group.add_argument("--num-chickens", type=positive_int, help="chickens (default 10)")
    group.add_argument("--timeout", type=positive_int, help="steps before the time limit (1000)")


def yard_options(args: argparse.Namespace) -> dict[str, int]:
    """The yard options given on the command line (and only those)."""
    return {k: getattr(args, k) for k in YARD_OPTIONS if getattr(args, k, None) is not None}


def yard_config(args: argparse.Namespace) -> YardConfig:
    """The default yard with the command line's yard options."""
    try:
        return YardConfig(**yard_options(args))
    except ValueError as err:
        raise CliError(str(err)) from None


def cmd_random(args: argparse.Namespace) -> None:
    import numpy as np

    from hmarl.baselines import make_baseline
    from hmarl.evaluation import episode_seeds, metrics_from, play_episode
    from hmarl.report import print_episode, print_metrics_table
    from hmarl.yard import ChickenYardEnv

    config = yard_config(args)
    env = ChickenYardEnv(config)
    policy = make_baseline(args.policy, config, seed=args.seed)
    seeds = episode_seeds(args.seed, args.episodes)
    if args.out or args.window:
        _render(policy, config, seeds, args.out, args.fps)
    episodes = [play_episode(env, policy, s) for s in seeds]
    for episode in episodes:
        print_episode(episode)
    metrics = metrics_from(
        np.array([e.compatibility for e in episodes]),
        np.array([e.arrived for e in episodes]),
        np.array([e.moves for e in episodes]),
    )
    print_metrics_table({args.policy: metrics}, title=f"{args.episodes} episodes, seed {args.seed}")


def _render(policy, config: YardConfig, seeds: list[int], out: Path | None, fps: int) -> None:
    """Episodes to a GIF/MP4 file, or to a live window when no file is given."""
    from hmarl.render import record, watch_live

    try:
        if out is None:
            watch_live(policy, config, seeds, fps=fps)
        else:
            frames = record(policy, config, seeds, out, fps=fps)
            print(f"wrote {out} ({frames} frames)")
    except (ValueError, RuntimeError, OSError) as err:
        raise CliError(str(err)) from None


def cmd_watch(args: argparse.Namespace) -> None:
    from hmarl.checkpoints import CheckpointError, load_policy
    from hmarl.evaluation import episode_seeds

    try:
        policy = load_policy(args.checkpoint)
    except CheckpointError as err:
        raise CliError(str(err)) from None
    print(f"checkpoint: {policy.checkpoint}")
    _render(policy, yard_config(args), episode_seeds(args.seed, args.episodes), args.out, args.fps)


def add_checkpoint_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="checkpoint, Tune trial or run folder")


def add_episode_options(parser: argparse.ArgumentParser, episodes: int) -> None:
    parser.add_argument(
        "--episodes", type=positive_int, default=episodes, help=f"episodes ({episodes})"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the first episode (0)")


def add_render_options(parser: argparse.ArgumentParser, window_flag: bool) -> None:
    parser.add_argument(
        "--out", type=Path, metavar="FILE", help="write a .gif or .mp4 instead of a live window"
    )
    parser.add_argument("--fps", type=positive_int, default=10, help="frames per second (10)")
    if window_flag:
        parser.add_argument("--window", action="store_true", help="show the episodes live")


def cmd_inspect(args: argparse.Namespace) -> None:
    from hmarl.checkpoints import CheckpointError, load_policy
    from hmarl.inspection import describe_policies, print_policies

    try:
        policy = load_policy(args.checkpoint)
    except CheckpointError as err:
        raise CliError(str(err)) from None
    summaries = describe_policies(policy.modules)
    if args.json:
        print(json.dumps({name: s.to_dict() for name, s in summaries.items()}))
        return
    print(f"checkpoint: {policy.checkpoint}")
    print_policies(summaries)


def cmd_plot(args: argparse.Namespace) -> None:
    from hmarl.plotting import plot_run

    out = args.out or args.run_dir / "learning_curves.png"
    try:
        plot_run(args.run_dir, out)
    except ValueError as err:
        raise CliError(str(err)) from None
    print(f"wrote {out}")


def cmd_train(args: argparse.Namespace) -> None:
    from hmarl.report import TrainingProgress, console
    from hmarl.training import TrainConfig, train

    settings = {
        "stop_iters": args.stop_iters,
        "time_budget": args.time_budget,
        "num_env_runners": args.num_env_runners,
        "num_envs_per_env_runner": args.num_envs_per_env_runner,
        "address": args.address,
        "out": args.out,
        "seed": args.seed,
        "resume": args.resume,
        "use_tune": False if args.no_tune else None,
        "checkpoint_every": args.checkpoint_every,
        "modules": args.modules,
    }
    given = {k: v for k, v in settings.items() if v is not None}
    try:
        if args.config:
            cfg = TrainConfig.from_toml(args.config, yard=yard_options(args), **given)
        else:
            cfg = TrainConfig(yard=yard_config(args), **given)
    except (ValueError, TypeError) as err:
        raise CliError(str(err)) from None
    if cfg.stop_iters is None and cfg.time_budget is None:
        cfg.stop_iters = DEFAULT_STOP_ITERS
    console.print(f"training into {cfg.out} ({'Ray Tune' if cfg.use_tune else 'no Tune'})")
    progress = TrainingProgress(cfg.stop_iters, cfg.time_budget, STARTED)
    try:
        checkpoint = train(cfg, on_result=progress.update, started=STARTED)
    except ValueError as err:
        raise CliError(str(err)) from None
    finally:
        progress.close()
    if not args.no_evaluate:
        _print_evaluation(checkpoint, cfg.yard, episodes=500, seed=0)
    print(f"checkpoint: {checkpoint}")


def _compare(checkpoint: Path, config: YardConfig, episodes: int, seed: int):
    """The checkpoint's policy against the baselines on the same seeded episodes."""
    from hmarl.checkpoints import CheckpointError, load_policy
    from hmarl.evaluation import compare, episode_seeds

    try:
        trained = load_policy(checkpoint)
    except CheckpointError as err:
        raise CliError(str(err)) from None
    return trained.checkpoint, compare(trained, config, episode_seeds(seed, episodes))


def _print_evaluation(checkpoint: Path, config: YardConfig, episodes: int, seed: int) -> None:
    from hmarl.report import print_metrics_table

    used, comparison = _compare(checkpoint, config, episodes, seed)
    print_metrics_table(
        comparison.policies,
        title=f"{episodes} episodes from seed {seed}: {used}",
        normalized=comparison.normalized_score,
    )


def cmd_evaluate(args: argparse.Namespace) -> None:
    config = yard_config(args)
    if not args.json:
        _print_evaluation(args.checkpoint, config, args.episodes, args.seed)
        return
    used, comparison = _compare(args.checkpoint, config, args.episodes, args.seed)
    result = {
        "episodes": args.episodes,
        "seed": args.seed,
        "checkpoint": str(used),
        "policies": {name: m.to_dict() for name, m in comparison.policies.items()},
        "normalized_score": comparison.normalized_score,
    }
    print(json.dumps(result))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hmarl", description="Hierarchical multi-agent RL on Ray RLlib: the chicken yard."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("random", help="run the yard with random (or oracle) actions")
    add_episode_options(p, episodes=5)
    p.add_argument("--policy", choices=("random", "oracle"), default="random")
    add_render_options(p, window_flag=True)
    add_yard_options(p)
    p.set_defaults(func=cmd_random)

    p = sub.add_parser(
        "train",
        help="train both levels with PPO (through Ray Tune unless --no-tune)",
        description="Train the high- and low-level policies. Prints progress per iteration, "
        "evaluates the result against the baselines, and ends with 'checkpoint: PATH'.",
    )
    stop = p.add_argument_group(f"when to stop (default: --stop-iters {DEFAULT_STOP_ITERS})")
    stop.add_argument("--stop-iters", type=positive_int, help="training iterations")
    stop.add_argument(
        "--time-budget",
        type=positive_float,
        metavar="SECONDS",
        help="wall-clock seconds for the whole command; stops in time to checkpoint",
    )
    p.add_argument("--num-env-runners", type=non_negative_int, help="sampling processes (0)")
    p.add_argument("--num-envs-per-env-runner", type=positive_int, help="yards per env runner (16)")
    p.add_argument("--address", help="join this Ray cluster instead of starting a local Ray")
    p.add_argument("--out", type=Path, help="run folder (default runs/chicken_yard)")
    p.add_argument("--seed", type=int, help="RLlib seed (0)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--no-tune", action="store_true", help="run the algorithm directly")
    p.add_argument(
        "--checkpoint-every", type=positive_int, help="iterations between checkpoints (5)"
    )
    p.add_argument("--config", type=Path, help="TOML file of training settings ([yard] table too)")
    p.add_argument("--no-evaluate", action="store_true", help="skip the closing evaluation")
    p.add_argument(
        "--modules",
        choices=("custom", "default"),
        help="custom: hmarl's RL modules (default); default: RLlib's MLPs, for comparison",
    )
    add_yard_options(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "evaluate", help="trained policy vs random vs oracle on the same seeded episodes"
    )
    add_checkpoint_argument(p)
    add_episode_options(p, episodes=1000)
    p.add_argument("--json", action="store_true", help="print JSON for programs")
    add_yard_options(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "watch", help="watch a trained policy: a live pygame window, or a GIF/MP4 file"
    )
    add_checkpoint_argument(p)
    add_episode_options(p, episodes=1)
    add_render_options(p, window_flag=False)
    add_yard_options(p)
    p.set_defaults(func=cmd_watch)

    p = sub.add_parser("inspect", help="each policy's network: layers, shapes, parameter counts")
    add_checkpoint_argument(p)
    p.add_argument("--json", action="store_true", help="print JSON for programs")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("plot", help="learning curves of a run to a PNG")
    p.add_argument("run_dir", type=Path, help="run folder (or a Tune trial folder in it)")
    p.add_argument(
        "--out", type=Path, metavar="FILE.png", help="default: RUN_DIR/learning_curves.png"
    )
    p.set_defaults(func=cmd_plot)
    return parser


def quiet_ray() -> None:
    """Keep Ray's and Tune's own chatter off the screen; our progress lines say it all."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    import ray  # noqa: F401 (configures the "ray" logger, which we then turn down)

    for name in ("ray", "ray.rllib", "ray.tune", "ray.train"):
        logging.getLogger(name).setLevel(logging.ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in ("train", "evaluate", "watch", "inspect"):
        quiet_ray()
    try:
        args.func(args)
    except CliError as err:
        print(f"hmarl {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = " (continue with --resume)" if args.command == "train" else ""
        print(f"hmarl {args.command}: interrupted{hint}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The `hmarl` command line: one sub-command per tool, each a thin shell over a library module."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from hmarl.simulation import YardConfig


class CliError(Exception):
    """A problem with the user's input: printed as one line, exit code 2."""


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_yard_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("yard")
    group.add_argument("--num-robots", type=positive_int, help="robots in the yard (default 2)")
    group.add_argument("--num-chickens", type=positive_int, help="chickens (default 10)")
    group.add_argument("--timeout", type=positive_int, help="steps before the time limit (1000)")


def yard_config(args: argparse.Namespace, base: YardConfig | None = None) -> YardConfig:
    """The yard options given on the command line, over ``base``."""
    values = (base or YardConfig()).to_dict()
    for name in ("num_robots", "num_chickens", "timeout"):
        if getattr(args, name, None) is not None:
            values[name] = getattr(args, name)
    try:
        return YardConfig(**values)
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
    episodes = [play_episode(env, policy, s) for s in episode_seeds(args.seed, args.episodes)]
    for episode in episodes:
        print_episode(episode)
    metrics = metrics_from(
        np.array([e.compatibility for e in episodes]),
        np.array([e.arrived for e in episodes]),
        np.array([e.moves for e in episodes]),
    )
    print_metrics_table({args.policy: metrics}, title=f"{args.episodes} episodes, seed {args.seed}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hmarl", description="Hierarchical multi-agent RL on Ray RLlib: the chicken yard."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("random", help="run the yard with random (or oracle) actions")
    p.add_argument("--episodes", type=positive_int, default=5, help="episodes to run (5)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first episode (0)")
    p.add_argument("--policy", choices=("random", "oracle"), default="random")
    add_yard_options(p)
    p.set_defaults(func=cmd_random)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except CliError as err:
        print(f"hmarl {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

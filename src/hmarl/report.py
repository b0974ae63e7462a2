"""Tables and lines for people: what the command line prints."""

from __future__ import annotations

import math

from rich.console import Console
from rich.table import Table

from hmarl.evaluation import Episode, Metrics

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

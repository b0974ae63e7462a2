"""Per-policy training metrics: returns per agent-episode and the task's metrics from infos.

RLlib reports each policy's return summed over all of its agents in an episode,
which grows with the number of agents. hmarl logs, for every agent that finished
an episode, its own return under ``env_runners/hmarl/return/<policy>``, and the
task's :class:`~hmarl.task.Metric` values from its last info under
``env_runners/hmarl/metric/<metric>`` (a namespace of their own: a task's metric may be
called ``return``), each averaged over the last ``WINDOW`` values; the
schedule's metric over the last ``Schedule.window`` values, which its decision reads
(:func:`metric_windows`). The schedule also reads ``env_runners/hmarl/count/<metric>``,
how many values a metric has had since training began.

:class:`EpisodeMetrics` is RLlib's ``on_episode_end`` callback for the stock env
runners; hmarl's batched sampler logs the same keys through :func:`log_agent_episode`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hmarl.task import Metric, Schedule

WINDOW = 200
"""Values averaged over: recent enough to follow learning, large enough to be steady."""


def return_key(policy: str) -> tuple[str, ...]:
    return ("hmarl", "return", policy)


def metric_key(name: str) -> tuple[str, ...]:
    return ("hmarl", "metric", name)


def count_key(name: str) -> tuple[str, ...]:
    return ("hmarl", "count", name)


def metric_windows(schedule: Schedule | None) -> dict[str, int]:
    """Metric name -> how many values it is averaged over, where not ``WINDOW``: the
    schedule's metric over the schedule's window, the values its decision is taken on."""
    return {} if schedule is None else {schedule.metric: schedule.window}


def log_agent_episode(
    logger: Any,
    metrics: Sequence[Metric],
    policy: str,
    episode_return: float,
    info: Mapping[str, Any],
    windows: Mapping[str, int] | None = None,
) -> None:
    """Log one finished agent-episode: its return and the metrics its last info gives
    (each over its window from :func:`metric_windows`, ``WINDOW`` by default)."""
    logger.log_value(return_key(policy), float(episode_return), window=WINDOW)
    for metric in metrics:
        if policy not in metric.policies:
            continue
        value = info.get(metric.key)
        if value is None or (metric.where is not None and not info.get(metric.where)):
            continue
        value = float(value)
        if math.isfinite(value):
            window = (windows or {}).get(metric.name, WINDOW)
            logger.log_value(metric_key(metric.name), value, window=window)
            logger.log_value(count_key(metric.name), 1, reduce="lifetime_sum")


class EpisodeMetrics:
    """``on_episode_end`` callback: log every agent-episode of the finished episode.

    With ``batch_mode="truncate_episodes"`` an episode arrives in chunks; an agent's
    return is summed over them and its last info is the one of the chunk it ended in.
    """

    def __init__(
        self,
        metrics: Sequence[Metric],
        policy_of: Callable[[str], str],
        windows: Mapping[str, int] | None = None,
    ) -> None:
        self.metrics = tuple(metrics)
        self.policy_of = policy_of
        self.windows = dict(windows or {})

    def __call__(
        self,
        *,
        episode: Any,
        metrics_logger: Any,
        prev_episode_chunks: list | None = None,
        **kwargs: Any,
    ) -> None:
        returns: dict[str, float] = {}
        infos: dict[str, Mapping[str, Any]] = {}
        for chunk in [*(prev_episode_chunks or []), episode]:
            for agent, agent_episode in chunk.agent_episodes.items():
                returns[agent] = returns.get(agent, 0.0) + agent_episode.get_return()
                info = agent_episode.get_infos(-1)
                infos[agent] = info if isinstance(info, Mapping) else {}
        for agent, episode_return in returns.items():
            policy = self.policy_of(agent)
            log_agent_episode(
                metrics_logger, self.metrics, policy, episode_return, infos[agent], self.windows
            )

"""Per-level training metrics, logged by RLlib's env runners from the yard's infos.

RLlib reports returns per policy; what we want to watch is what each level is
for: the high level's compatibility with its chosen chicken and the low level's
success rate and steps to arrive. The yard puts them in the infos of finishing
agents; this callback averages them into the training results under
``env_runners/<name>``.
"""

from __future__ import annotations

from typing import Any

from ray.rllib.callbacks.callbacks import RLlibCallback

#: Result keys (under ``env_runners``) this callback fills.
COMPATIBILITY = "high_level_compatibility"
SUCCESS = "low_level_success"
STEPS_TO_ARRIVE = "low_level_steps_to_arrive"
FINISHED = "low_level_finished"
"""Robots finished (arrived or timed out) since training began."""
WINDOW = 200
"""Finished robots averaged over: recent enough to follow learning, large enough to be steady."""


class YardMetrics(RLlibCallback):
    """Log each finished robot's compatibility, arrival and steps."""

    def on_episode_end(
        self,
        *,
        episode: Any,
        prev_episode_chunks: list | None = None,
        metrics_logger: Any,
        **kwargs: Any,
    ) -> None:
        # With truncate_episodes a robot may have finished in an earlier chunk.
        for chunk in [*(prev_episode_chunks or []), episode]:
            for agent, agent_episode in chunk.agent_episodes.items():
                # Chunks cut by RLlib end "truncated" too, without the yard's infos.
                info = agent_episode.get_infos(-1) if agent_episode.is_done else {}
                if "arrived" not in info:
                    continue
                if agent.endswith("_high") and info.get("compatibility") is not None:
                    metrics_logger.log_value(COMPATIBILITY, info["compatibility"], window=WINDOW)
                elif agent.endswith("_low"):
                    metrics_logger.log_value(SUCCESS, float(info["arrived"]), window=WINDOW)
                    metrics_logger.log_value(FINISHED, 1, reduce="lifetime_sum")
                    if info["arrived"]:
                        metrics_logger.log_value(STEPS_TO_ARRIVE, info["steps"], window=WINDOW)

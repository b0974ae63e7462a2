"""The custom algorithm: PPO that trains the low level first, then both levels.

This is the place to customise training (the tutorial's "custom trainer").

Why a schedule: until the low level can walk, almost every high-level episode ends
in a time-out, and what a high level can learn from that is "pick a chicken close
by", which is the wrong lesson once the low level walks well. So ``HierarchicalPPO``
leaves the high level untouched until the low level's success rate over a window of
recently finished robots (``metrics.WINDOW``) reaches ``high_level_start_success``;
from then on both levels train. The switch is a latch (it never closes again), it
is saved in checkpoints, and each iteration reports it as ``high_level_training``
(0 or 1) in the results.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from ray.rllib.algorithms.ppo import PPO, PPOConfig
from ray.rllib.utils.annotations import override

from hmarl.metrics import FINISHED, SUCCESS, WINDOW

HIGH_LEVEL_POLICY = "high_level_policy"
LOW_LEVEL_POLICY = "low_level_policy"


class HierarchicalPPOConfig(PPOConfig):
    """PPOConfig plus the level schedule; ``.hierarchy(...)`` sets it."""

    def __init__(self, algo_class: type | None = None) -> None:
        super().__init__(algo_class=algo_class or HierarchicalPPO)
        self.high_level_start_success = 0.9
        """Low-level success rate at which the high level starts training (0 = at once)."""

    def hierarchy(self, *, high_level_start_success: float | None = None) -> HierarchicalPPOConfig:
        if high_level_start_success is not None:
            if not 0.0 <= high_level_start_success <= 1.0:
                raise ValueError(
                    f"high_level_start_success must be in [0, 1], got {high_level_start_success}"
                )
            self.high_level_start_success = high_level_start_success
        return self


class HierarchicalPPO(PPO):
    """PPO with a per-level training schedule (see the module docstring)."""

    @classmethod
    @override(PPO)
    def get_default_config(cls) -> HierarchicalPPOConfig:
        return HierarchicalPPOConfig()

    @override(PPO)
    def setup(self, config: Any) -> None:
        super().setup(config)
        self.high_level_training = self.config.high_level_start_success <= 0.0
        self._apply_schedule()

    @override(PPO)
    def training_step(self) -> None:
        self.metrics.log_value(
            "high_level_training", float(self.high_level_training), reduce="item"
        )
        return super().training_step()

    @override(PPO)
    def step(self) -> dict[str, Any]:
        results = super().step()
        # Decided on the finished iteration's results: the metrics logger's own
        # windows are already reduced (and emptied) by the time we could peek.
        runners = results.get("env_runners", {})
        success = runners.get(SUCCESS, 0.0)
        # Early on, only robots that arrived quickly have finished (time-outs take
        # `timeout` steps), so a success rate over a few robots flatters the low
        # level. A full window of finished robots is required first.
        enough = runners.get(FINISHED, 0) >= WINDOW
        threshold = self.config.high_level_start_success
        if not self.high_level_training and enough and success >= threshold:
            self.high_level_training = True
            self._apply_schedule()
        return results

    @override(PPO)
    def stop(self) -> None:
        super().stop()
        # Built outside Tune, an algorithm makes an empty log folder in
        # ~/ray_results that nothing writes to; hmarl's runs keep to their --out.
        with contextlib.suppress(OSError):
            os.rmdir(self.logdir)

    def _apply_schedule(self) -> None:
        """Tell every learner which modules to update (None: all of them)."""
        modules = None if self.high_level_training else [LOW_LEVEL_POLICY]
        # Learners hold an unfrozen copy of the config; `should_module_be_updated`
        # reads `policies_to_train` from it and skips the other modules' batches.
        self.learner_group.foreach_learner(
            lambda learner, _m=modules: learner.config.multi_agent(policies_to_train=_m)
        )

    @override(PPO)
    def get_state(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        state = super().get_state(*args, **kwargs)
        state["high_level_training"] = self.high_level_training
        return state

    @override(PPO)
    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        if "high_level_training" in state:
            self.high_level_training = state["high_level_training"]
            self._apply_schedule()

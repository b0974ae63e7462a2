"""The custom algorithm: PPO with a level schedule. The place to customise training.

Why a schedule: in a hierarchy the upper level's rewards depend on the lower
level's skill. Until the robots of the chicken yard can walk, almost every
high-level episode ends in a time-out, and what a high level learns from that
("pick a chicken close by") is the wrong lesson once they walk well. A task
declares a :class:`~hmarl.task.Schedule`: the policy to hold back, a metric, a
threshold. ``HierarchicalPPO`` holds that policy's training (its value function
still learns, see :mod:`hmarl.learner`) until the metric, over a full window of
values, reaches the threshold; from then on every policy trains. The switch is a
latch: it never closes again, it is saved in checkpoints, and it is pushed to the
learners at every iteration, so a recreated learner gets it too.

Each iteration reports, under ``hmarl`` in the results: ``schedule_open`` (0 or
1), and ``schedule_stalled`` (1 once the schedule has held for
``schedule_timeout`` env steps, or its metric has not appeared at all by then:
the CLI then warns).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from ray.rllib.algorithms.ppo import PPO, PPOConfig
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.annotations import override
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    ENV_RUNNER_SAMPLING_TIMER,
    LEARNER_RESULTS,
    LEARNER_UPDATE_TIMER,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    SYNCH_WORKER_WEIGHTS_TIMER,
    TIMERS,
)

from hmarl.checkpoints import save_atomically, write_marker
from hmarl.faults import FaultLog, TrainingStopped, find_error
from hmarl.learner import HierarchicalPPOLearner
from hmarl.metrics import count_key, metric_key
from hmarl.task import DISCOUNTING, Schedule, Task
from hmarl.task_env import EnvFault


@dataclass(frozen=True)
class LrAnnealing:
    """Every learning rate falls linearly towards zero as the run nears its stop.

    CleanRL's ``--anneal-lr``, for the stops hmarl knows: whichever of the time
    budget, the env steps and the iterations is nearest sets the progress. The scale
    is recomputed at every iteration from the clock and RLlib's counters, so a
    resumed run (whose budget clock counts the time used before) continues the same
    line, and nothing needs saving.
    """

    start: float | None = None
    """When the time budget began (``time.time()``, as if used without a break)."""
    end: float | None = None
    """When training must stop to leave time for the wrap-up (``time.time()``)."""
    env_steps: int | None = None
    iterations: int | None = None

    def scale(self, now: float, env_steps: int, iteration: int) -> float:
        """1 at the start, falling linearly to 0 at the nearest stop."""
        progress = 0.0
        if self.start is not None and self.end is not None and self.end > self.start:
            progress = (now - self.start) / (self.end - self.start)
        if self.env_steps:
            progress = max(progress, env_steps / self.env_steps)
        if self.iterations:
            progress = max(progress, iteration / self.iterations)
        return min(1.0, max(0.0, 1.0 - progress))


class HierarchicalPPOConfig(PPOConfig):
    """PPOConfig plus the level schedule; ``.hierarchy(...)`` sets it."""

    def __init__(self, algo_class: type | None = None) -> None:
        super().__init__(algo_class=algo_class or HierarchicalPPO)
        self.schedule: Schedule | None = None
        """The policy to hold back, and until when (None: all train from the start)."""
        self.schedule_timeout: int | None = None
        """Env steps after which a schedule still holding is reported as stalled."""
        self.discounting = "smdp"
        """"smdp": gamma per env step, inside decisions too; "per-decision": RLlib's."""
        self.task: Task | None = None
        """The task, for hmarl's batched sampler (which builds the task's batched env)."""
        self.sampler = "rllib"
        """"batched": hmarl's BatchedEnvRunner; "rllib": RLlib's MultiAgentEnvRunner."""
        self.flatten_policies: tuple[str, ...] = ()
        """Policies whose modules see their observations flattened (RLlib's default MLPs)."""
        self.central_policies: tuple[str, ...] = ()
        """Policies with a centralised critic: their batches carry the global state."""
        self.run_folder: str | None = None
        """Where a run stopped by an env fault saves its last good state."""
        self.budget_clock: float | None = None
        """When the run's time budget began (``time.time()``, as if used without a
        break): each checkpoint's marker records the seconds used since, so that a
        resumed run gets the rest of its budget."""
        self.lr_annealing: LrAnnealing | None = None
        """When set, every learning rate falls linearly to zero by the run's stop."""
        self.torch_threads = 1
        """Threads torch uses in the training process; a remote env runner uses one
        (``hmarl.training.torch_threads_of`` says when a run gets more)."""

    def hierarchy(
        self,
        *,
        schedule: Schedule | None = None,
        schedule_timeout: int | None = None,
        discounting: str | None = None,
        task: Task | None = None,
        sampler: str | None = None,
        flatten_policies: tuple[str, ...] = (),
        central_policies: tuple[str, ...] = (),
        run_folder: str | None = None,
        budget_clock: float | None = None,
        torch_threads: int = 1,
        lr_annealing: LrAnnealing | None = None,
    ) -> HierarchicalPPOConfig:
        self.schedule = schedule
        self.schedule_timeout = schedule_timeout
        if discounting is not None:
            if discounting not in DISCOUNTING:
                raise ValueError(f"discounting must be one of {DISCOUNTING}, got {discounting!r}")
            self.discounting = discounting
        self.task = task
        self.flatten_policies = tuple(flatten_policies)
        self.central_policies = tuple(central_policies)
        self.run_folder = run_folder
        self.budget_clock = budget_clock
        self.torch_threads = torch_threads
        self.lr_annealing = lr_annealing
        if sampler is not None:
            if sampler not in ("batched", "rllib"):
                raise ValueError(f"sampler must be 'batched' or 'rllib', got {sampler!r}")
            from hmarl.sampler import BatchedEnvRunner
            from hmarl.stock_runner import StockEnvRunner

            runner = BatchedEnvRunner if sampler == "batched" else StockEnvRunner
            self.env_runners(env_runner_cls=runner)
            self.sampler = sampler
        # RLlib waits 60 s before restarting a crashed runner, against restart loops;
        # env faults do not restart runners here (see hmarl.faults), so a short wait.
        self.fault_tolerance(delay_between_env_runner_restarts_s=2.0)
        return self

    @override(PPOConfig)
    def get_default_learner_class(self) -> type:
        return HierarchicalPPOLearner


class HierarchicalPPO(PPO):
    """PPO with a level schedule (see the module docstring)."""

    @classmethod
    @override(PPO)
    def get_default_config(cls) -> HierarchicalPPOConfig:
        return HierarchicalPPOConfig()

    @override(PPO)
    def setup(self, config: Any) -> None:
        torch.set_num_threads(config.torch_threads)
        self._faults = FaultLog().install()
        super().setup(config)
        schedule = self.config.schedule
        self.schedule_open = schedule is None or schedule.threshold <= 0

    @property
    def held(self) -> frozenset[str]:
        """The policies held back right now."""
        schedule = self.config.schedule
        return frozenset() if self.schedule_open else frozenset({schedule.hold})

    @override(PPO)
    def training_step(self) -> None:
        # Every iteration, so a learner that was recreated (or restored) holds the same.
        held = self.held
        self.learner_group.foreach_learner(lambda learner, _held=held: learner.set_held(_held))
        annealing = self.config.lr_annealing
        if annealing is not None:
            scale = annealing.scale(time.time(), self._env_steps_sampled(), self.iteration)
            self.learner_group.foreach_learner(lambda learner, _s=scale: learner.set_lr_scale(_s))
        if self.config.sampler != "batched":
            return super().training_step()
        return self._batched_training_step()

    def _batched_training_step(self) -> None:
        """PPO's training step, with batches from hmarl's BatchedEnvRunners.

        The same three steps as ``PPO.training_step`` (sample, update, sync weights)
        with the same timers and metrics; the batches arrive without advantages,
        which the learner adds (see hmarl.learner).
        """
        runners = self.env_runner_group
        remote = runners.num_remote_env_runners() > 0
        steps = math.ceil(
            self.config.total_train_batch_size / max(1, runners.num_healthy_remote_env_runners())
        )
        with self.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER)):
            sampled = runners.foreach_env_runner(
                lambda runner, n=steps: (
                    runner.sample(num_timesteps=n),
                    runner.sampled_env_steps,
                    runner.get_metrics(),
                ),
                local_env_runner=not remote,
            )
            if not sampled:  # every remote runner failed this time; they get restarted
                return
            self.metrics.aggregate([metrics for *_, metrics in sampled], key=ENV_RUNNER_RESULTS)
        batch = merge_batches(
            [batch for batch, *_ in sampled], env_steps=sum(n for _, n, _ in sampled)
        )
        with self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
            learner_results = self.learner_group.update(
                batch=batch,
                timesteps={
                    NUM_ENV_STEPS_SAMPLED_LIFETIME: self.metrics.peek(
                        (ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME)
                    ),
                },
                num_epochs=self.config.num_epochs,
                minibatch_size=self.config.minibatch_size,
            )
            self.metrics.aggregate(learner_results, key=LEARNER_RESULTS)
        with self.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)):
            runners.sync_weights(
                from_worker_or_learner_group=self.learner_group,
                policies=list(batch.policy_batches),
                inference_only=True,
            )

    @override(PPO)
    def step(self) -> dict[str, Any]:
        try:
            results = super().step()
        except Exception as err:
            fault = find_error(err, EnvFault)
            if fault is None:
                raise
            raise TrainingStopped(f"{fault}; {self._save_last_good_state()}") from None
        self._decide_schedule(results)
        results["hmarl"] = {
            "schedule_open": float(self.schedule_open),
            "schedule_stalled": float(self._stalled(results)),
            "env_runner_failures": self._faults.count,
            "env_runner_errors": self._faults.take(),
        }
        return results

    def _save_last_good_state(self) -> str:
        """Save the state after the last finished iteration (an env failed in this one).

        Sampling comes before the update, so no weights have changed since then.
        """
        if self.config.run_folder is None:
            return "nothing saved (no run folder)"
        final = Path(self.config.run_folder) / f"checkpoint_{self.iteration:06d}_stopped"
        save_atomically(lambda tmp: self.save_checkpoint(str(tmp.resolve())), final)
        return f"the last good state (iteration {self.iteration}) is in {final}; --resume continues"

    def _decide_schedule(self, results: dict[str, Any]) -> None:
        schedule = self.config.schedule
        if self.schedule_open or schedule is None:
            return
        # Decided on the finished iteration's results: the metrics logger's own
        # windows are already reduced (and emptied) by the time we could peek.
        runners = results.get("env_runners", {})
        value = _lookup(runners, metric_key(schedule.metric))
        count = _lookup(runners, count_key(schedule.metric)) or 0
        # Early on, only quick agent-episodes have finished (in the yard, time-outs
        # take `timeout` steps), so a rate over a few values flatters; a full
        # window of values is required first.
        if count >= schedule.window and value is not None and value >= schedule.threshold:
            self.schedule_open = True

    def _stalled(self, results: dict[str, Any]) -> bool:
        timeout = self.config.schedule_timeout
        steps = results.get("num_env_steps_sampled_lifetime", 0)
        return not self.schedule_open and timeout is not None and steps >= timeout

    @override(PPO)
    def save_checkpoint(self, checkpoint_dir: str) -> None:
        super().save_checkpoint(checkpoint_dir)
        # Last: the marker says the checkpoint is whole (see hmarl.checkpoints).
        write_marker(
            checkpoint_dir,
            self.iteration,
            env_steps=self._env_steps_sampled(),
            schedule_open=self.schedule_open,
            **self._budget_used(),
        )

    def _budget_used(self) -> dict[str, float]:
        clock = self.config.budget_clock
        return {} if clock is None else {"budget_used": round(time.time() - clock, 3)}

    @override(PPO)
    def stop(self) -> None:
        self._faults.remove()
        super().stop()
        # Built outside Tune, an algorithm makes an empty log folder in
        # ~/ray_results that nothing writes to; hmarl's runs keep to their --out.
        with contextlib.suppress(OSError):
            os.rmdir(self.logdir)

    @override(PPO)
    def restore_from_path(self, path: Any, *args: Any, **kwargs: Any) -> None:
        super().restore_from_path(path, *args, **kwargs)
        # Restored weights, optimizer and counters, but RLlib keeps no runner's
        # episode stream (and none of a remote runner): new episodes, not the first ones.
        self._reseed_env_runners(remote_worker_ids=None)

    @override(PPO)
    def restore_env_runners(self, env_runner_group: Any) -> list[int]:
        restored = super().restore_env_runners(env_runner_group)
        if restored and env_runner_group is self.env_runner_group:
            self._reseed_env_runners(remote_worker_ids=restored)
        return restored

    def _reseed_env_runners(self, remote_worker_ids: list[int] | None) -> None:
        """Give env runners a new episode stream (see :mod:`hmarl.seeding`).

        The salt is the env steps sampled so far and the count of runners restored:
        it differs each time, yet a run resumed twice from one checkpoint gets the same.
        """
        salt = (self._env_steps_sampled(), int(self._counters["total_num_restored_workers"]))
        self.env_runner_group.foreach_env_runner(
            lambda runner, _salt=salt: runner.reseed(*_salt),
            remote_worker_ids=remote_worker_ids,
            local_env_runner=remote_worker_ids is None,
        )

    def _env_steps_sampled(self) -> int:
        return int(
            self.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0)
        )

    @override(PPO)
    def get_state(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        state = super().get_state(*args, **kwargs)
        state["schedule_open"] = self.schedule_open
        return state

    @override(PPO)
    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        if "schedule_open" in state:
            self.schedule_open = bool(state["schedule_open"])


def merge_batches(parts: list[dict[str, dict[str, Any]]], env_steps: int) -> MultiAgentBatch:
    """The batches of several runners as one: each policy's rows side by side.

    Each runner's rows already end every sequence with its bootstrap row, so they
    can be concatenated as they are. ``env_steps`` is how many env steps the runners
    sampled for them together (RLlib's ``MultiAgentBatch.env_steps()``, not a row count).
    """
    from hmarl.sampler import concatenate_columns

    policies = dict.fromkeys(p for part in parts for p, rows in part.items() if rows)
    batches = {
        policy: SampleBatch(
            concatenate_columns([part[policy] for part in parts if part.get(policy)])
        )
        for policy in policies
    }
    return MultiAgentBatch(batches, env_steps=env_steps)


def _lookup(tree: dict[str, Any], key: tuple[str, ...]) -> Any:
    for part in key:
        if not isinstance(tree, dict):
            return None
        tree = tree.get(part)
    return tree

"""Training as a Ray Tune trial: Tune checkpoints it, logs it, and hands results back.

A resumed run is a new trial in the same folder that starts from the last
checkpoint (``Plan.start_from``). Unlike ``Tuner.restore`` this also extends a run
that finished, and it obeys the new command's limits.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ray import tune

from hmarl.algorithm import HierarchicalPPO
from hmarl.faults import TrainingStopped, find_error, one_line
from hmarl.training import Deadline, Plan


def train_with_tune(config: Any, p: Plan, deadline: Deadline, on_result: Callable) -> Path:
    """Train ``config`` as one Tune trial in ``p.out``; return the final checkpoint's path."""
    global _on_result
    _on_result = on_result
    forget_resolved_task_futures()
    out = p.out.resolve()
    run_config = tune.RunConfig(
        name=out.name,
        storage_path=str(out.parent),
        stop=lambda trial_id, result: deadline.done(result),
        callbacks=[ReportProgress()],
        verbose=0,
        checkpoint_config=tune.CheckpointConfig(
            checkpoint_frequency=p.cfg.checkpoint_every,
            checkpoint_at_end=True,
            # Ray 2.60's _CheckpointManager (train/_internal/checkpoint_manager.py)
            # keeps every kept checkpoint's whole result in the driver's memory.
            num_to_keep=p.cfg.keep_checkpoints or None,
        ),
    )
    tuner = tune.Tuner(HierarchicalPPO, param_space=config, run_config=run_config)
    result = tuner.fit()[0]
    if not result.error and not deadline.reached:
        # Tune answers Ctrl-C by stopping the trial and returning as if it had
        # finished; the command must say it was interrupted (and exit 130).
        raise KeyboardInterrupt
    if result.error:
        stopped = find_error(result.error, TrainingStopped)
        if stopped is not None:
            raise TrainingStopped(str(stopped)) from None
        raise RuntimeError(f"training failed: {one_line(result.error)}")
    return Path(result.checkpoint.path)


def forget_resolved_task_futures() -> None:
    """Make Tune's actor manager let go of each trial result once it is handled.

    Ray 2.60's ``RayActorManager._schedule_tracked_actor_task``
    (``ray/air/execution/_internal/actor_manager.py``) adds the future of every
    task it sends a trial (``train``, ``save``) to ``_tracked_actors_to_task_futures``
    and removes them only when the trial's actor goes. Each future it holds keeps
    that iteration's result in the driver's object store and its task spec for
    lineage: about 8 KB an iteration, 5 MiB a minute for the yard (found with
    memray: ``CoreWorkerMemoryStore::Put`` from ``TaskManager::HandleTaskReturn``).
    After a task resolves or fails, keep only the futures its event manager still
    waits for.
    """
    from ray.air.execution._internal.actor_manager import RayActorManager

    if getattr(RayActorManager, "_hmarl_forgets_resolved", False):
        return
    resolved = RayActorManager._actor_task_resolved
    failed = RayActorManager._actor_task_failed

    def forget(manager: Any, task: Any) -> None:
        futures = manager._tracked_actors_to_task_futures.get(task._tracked_actor)
        if futures:
            futures.intersection_update(manager._actor_task_events._tracked_futures)

    def on_resolved(manager: Any, tracked_actor_task: Any, result: Any) -> None:
        forget(manager, tracked_actor_task)
        resolved(manager, tracked_actor_task, result)

    def on_failed(manager: Any, tracked_actor_task: Any, exception: Exception) -> None:
        forget(manager, tracked_actor_task)
        failed(manager, tracked_actor_task, exception)

    RayActorManager._actor_task_resolved = on_resolved
    RayActorManager._actor_task_failed = on_failed
    RayActorManager._hmarl_forgets_resolved = True


class ReportProgress(tune.Callback):
    """Hands each result from the trial to the command's progress display.

    Tune pickles its callbacks with the experiment, and a display (locks, a
    terminal) does not pickle, so this holds none: it calls the module's
    ``_on_result``, which the running command sets.
    """

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **_: Any):
        _on_result(result)


def _on_result(result: dict) -> None:
    """Replaced by the running command's progress display."""

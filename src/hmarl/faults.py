"""Env faults during training: counted and named in one line, never a wall of tracebacks.

With remote env runners (``--num-env-runners N``) RLlib's fault tolerance restarts a
runner whose env raised, and the sample of that iteration goes on without it; RLlib
logs the failure with its whole traceback. :class:`FaultLog` catches those records
(in the process the algorithm runs in, a Tune trial's included) and keeps one line
per failure: the :class:`~hmarl.task_env.EnvFault` message, which names the task,
the env step, the agents that acted and the error. ``HierarchicalPPO`` puts the
count and the new lines in each iteration's results, and the command prints each
line once.

Without remote runners the env runs in the training process, so there is nothing
to restart: the iteration stops, the algorithm saves its last good state, and
:class:`TrainingStopped` carries one line to the user.
"""

from __future__ import annotations

import logging
from typing import Any, TypeVar

from ray.rllib.env.multi_agent_env_runner import MultiAgentEnvRunner

from hmarl.task_env import EnvFault

E = TypeVar("E", bound=BaseException)

ACTOR_MANAGER_LOGGER = "ray.rllib.utils.actor_manager"
"""Where RLlib's FaultTolerantActorManager logs a remote runner's error (2.60)."""


class TrainingStopped(RuntimeError):
    """Training stopped on an env fault; the message says where, and what was saved."""


def find_error(error: BaseException | None, kind: type[E]) -> E | None:
    """The error of ``kind`` inside an error from Ray or RLlib (a RayTaskError's cause,
    an exception chain)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        # A RayTaskError is also an instance of the error it carries (Ray makes a
        # class of both), but its text is the remote traceback: prefer its cause.
        cause = getattr(error, "cause", None)
        if isinstance(error, kind) and cause is None:
            return error
        error = cause or error.__cause__ or error.__context__
    return None


def one_line(error: BaseException) -> str:
    """An error as one line: an env fault's own message, else the error's last line."""
    fault = find_error(error, EnvFault)
    if fault is not None:
        return str(fault)
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[-1] if lines else ''}"


class FaultLog(logging.Handler):
    """Collects remote env runners' failures from RLlib's log records."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.count = 0
        self.new: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        error = record.exc_info[1] if record.exc_info else None
        if error is None and isinstance(record.msg, BaseException):
            error = record.msg
        if error is None:
            return
        self.count += 1
        self.new.append(one_line(error))

    def take(self) -> list[str]:
        """The failures seen since the last call."""
        new, self.new = self.new, []
        return new

    def install(self) -> FaultLog:
        logging.getLogger(ACTOR_MANAGER_LOGGER).addHandler(self)
        return self

    def remove(self) -> None:
        logging.getLogger(ACTOR_MANAGER_LOGGER).removeHandler(self)


def _raise(error: BaseException) -> Any:
    def raising(runner: Any) -> Any:
        raise error

    return raising


class RecoversFromEnvFaults:
    """For EnvRunners: a fault of the task's env rebuilds the env instead of ending the process.

    RLlib 2.60's ``FaultAwareApply.apply`` answers any error in a remote runner by
    logging it where the runner runs, sleeping ``delay_between_env_runner_restarts_s``
    and exiting the process, which Ray then restarts: the driver only learns that an
    actor became unavailable, and the iteration waits for the restart. An env fault
    leaves the runner's process sound, so here the runner makes new envs (the episodes
    in progress are dropped) and raises the fault itself, which reaches the driver
    whole: RLlib's actor manager takes the runner out of service for the rest of the
    iteration, probes it back in, and logs the error, where :class:`FaultLog` finds
    it. Other errors go RLlib's way.
    """

    def apply(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return func(self, *args, **kwargs)
        except Exception as err:
            fault = find_error(err, EnvFault)
            if fault is None:
                return super().apply(_raise(err))
            self.make_env()
            raise EnvFault(str(fault)) from None


class StockEnvRunner(RecoversFromEnvFaults, MultiAgentEnvRunner):
    """RLlib's own multi-agent env runner, recovering from env faults (see above)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from hmarl.seeding import visit_agents_in_order

        visit_agents_in_order()  # the same seed, the same samples, in every process
        super().__init__(*args, **kwargs)

    def reseed(self, *salt: int) -> None:
        """New episodes from the next sample on (see :mod:`hmarl.seeding`).

        RLlib 2.60's runner seeds its envs with ``self._seed`` at the reset that
        ``_needs_initial_reset`` asks for (``MultiAgentEnvRunner._reset_envs``).
        """
        from hmarl.seeding import draw_seeds, reseeded

        (self._seed,) = draw_seeds(reseeded(self.config.seed, self.worker_index, *salt), 1)
        self._needs_initial_reset = True

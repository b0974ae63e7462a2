"""hmarl: deep hierarchical multi-agent reinforcement learning on Ray RLlib.

A toolkit core and tasks. A task is what a user writes (see :mod:`hmarl.task`)::

    from hmarl import Task

    TASK = Task(name="couriers", make_env=make_env, policy_of=policy_of)

and every tool (train, evaluate, watch, inspect, plot) works on it. The built-in
tasks live in :mod:`hmarl.tasks`, one package each. A trained policy, exported
(``hmarl export RUN --out FOLDER``), acts in your own code::

    policy = hmarl.load_policy("FOLDER")
    actions = policy.actions(obs)  # agent id -> action, for the agents due to act
"""

from typing import Any

from hmarl.task import Metric, PolicyContext, Schedule, Score, Task, TaskError

__version__ = "0.2.0"

__all__ = [
    "Metric",
    "PolicyContext",
    "Schedule",
    "Score",
    "Task",
    "TaskError",
    "__version__",
    "load_policy",
]


def __getattr__(name: str) -> Any:
    # Imported on first use: hmarl itself stays free of torch and Ray until then.
    if name == "load_policy":
        from hmarl.export import load_policy

        return load_policy
    raise AttributeError(f"module 'hmarl' has no attribute {name!r}")

"""hmarl: deep hierarchical multi-agent reinforcement learning on Ray RLlib.

A toolkit core and tasks. A task is what a user writes (see :mod:`hmarl.task`)::

    from hmarl import Task

    TASK = Task(name="couriers", make_env=make_env, policy_of=policy_of)

and every tool (train, evaluate, watch, inspect, plot) works on it. The built-in
tasks live in :mod:`hmarl.tasks`, one package each.
"""

from hmarl.task import Metric, PolicyContext, Schedule, Score, Task, TaskError

__version__ = "0.2.0"

__all__ = ["Metric", "PolicyContext", "Schedule", "Score", "Task", "TaskError", "__version__"]

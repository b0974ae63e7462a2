"""The memory task: a cue the high level sees once and must act on later.

:mod:`.config` (the settings), :mod:`.env` (the RLlib env, its docstring the spec
sheet), :mod:`.batched` (many episodes as arrays), :mod:`.baselines` (a policy with
perfect recall), and :mod:`.task`, the declaration hmarl trains from.
"""

from hmarl.tasks.memory.task import TASK

__all__ = ["TASK"]

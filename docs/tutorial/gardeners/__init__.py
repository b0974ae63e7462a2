"""The tutorial's task: gardeners who choose a plant (high level) and walk to it (low level).

- :mod:`.simulation`: the garden in plain Python; knows nothing of RLlib.
- :mod:`.env`: its RLlib ``MultiAgentEnv`` adapter: observations only for the agents due
  to act next.
- :mod:`.task`: the :class:`hmarl.Task` declaration (``--task gardeners:TASK``).
- :mod:`.scheduled`: the same task with a level schedule (``--task gardeners.scheduled:TASK``).
- :mod:`.batched`: many gardens as arrays; :mod:`.batched_task` declares the task with
  it (``--task gardeners.batched_task:TASK``).
- :mod:`.better`: that, and a chooser that discounts faster (``--task gardeners.better:TASK``).
"""

from .task import TASK

__all__ = ["TASK"]

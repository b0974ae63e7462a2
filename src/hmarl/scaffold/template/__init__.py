"""A task package for hmarl, written by ``hmarl new-task``: a worked example to make your own.

- :mod:`.simulation`: the system in plain Python (lifts in a building). Replace it.
- :mod:`.env`: its RLlib ``MultiAgentEnv`` adapter: observations only for the agents
  due to act next.
- :mod:`.task`: the :class:`hmarl.Task` declaration, found by ``hmarl`` through the
  ``hmarl.tasks`` entry point in ``pyproject.toml``.
"""

from .task import TASK

__all__ = ["TASK"]

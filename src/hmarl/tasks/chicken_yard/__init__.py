"""The chicken yard: robots pick a chicken (high level), then walk to it (low level).

One module a concept: :mod:`.simulation` (the rules, plain NumPy), :mod:`.agents`
(agent ids and spaces), :mod:`.env` (the RLlib env, its docstring the spec sheet),
:mod:`.batched` (many yards as arrays), :mod:`.baselines` (the oracle),
:mod:`.modules` (the RL modules), :mod:`.render` (frames), and :mod:`.task`, the
declaration hmarl trains from.
"""

from hmarl.tasks.chicken_yard.task import TASK

__all__ = ["TASK"]

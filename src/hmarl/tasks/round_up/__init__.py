"""The round-up: the chicken yard over a fixed horizon; robots catch chicken after chicken.

Caught chickens are replaced at once, and each robot's high level decides again
after every catch and when another robot takes its chicken. One module a concept:
:mod:`.simulation` (the rules, plain NumPy, built on the yard's), :mod:`.agents`
(agent ids and spaces), :mod:`.env` (the RLlib env, its docstring the spec sheet),
:mod:`.batched` (many yards as arrays), :mod:`.baselines` (the dispatch rules),
:mod:`.modules` (the RL modules), :mod:`.render` (frames), and :mod:`.task`, the
declaration hmarl trains from.
"""

from hmarl.tasks.round_up.task import TASK

__all__ = ["TASK"]

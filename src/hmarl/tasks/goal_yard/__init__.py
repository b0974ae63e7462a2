"""The goal yard: the chicken yard rebuilt as a flat yard plus a declared hierarchy.

One module a concept, as in the chicken yard: :mod:`.simulation` (the flat yard's rules,
on the chicken yard's helpers), :mod:`.agents` (agent ids and spaces), :mod:`.env` (the
RLlib env, its docstring the spec sheet), :mod:`.batched` (many yards as arrays),
:mod:`.baselines` (the oracle), :mod:`.modules` (the RL modules), and :mod:`.task`, the
flat task and the declaration of its hierarchy (:mod:`hmarl.goals`).
"""

from hmarl.tasks.goal_yard.task import FLAT, TASK

__all__ = ["FLAT", "TASK"]

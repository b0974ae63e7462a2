"""Level-Based Foraging (lbforaging 2.0.0) as an hmarl task: the package is the simulation.

:mod:`.config` (which registered env), :mod:`.env` (the RLlib adapter over the
package's env, its docstring the spec sheet), :mod:`.batched` (the package's step
re-implemented over many envs as arrays), :mod:`.baselines`, :mod:`.render` (frames
without a display), and :mod:`.task`, the declaration.
"""

from hmarl.tasks.lbf.task import TASK

__all__ = ["TASK"]

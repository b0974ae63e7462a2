"""PettingZoo's MPE ``simple_spread_v3`` (the ``mpe2`` package) as an hmarl task: all of it.

Three agents cover three landmarks, each paid the team's coverage and a penalty for
collisions, for 25 steps. One shared policy (independent PPO); the env's ``state()``
(every agent's observation side by side) is there for ``--critic central`` (MAPPO).
From this folder::

    hmarl train --task simple_spread:TASK --time-budget 300
    hmarl evaluate runs/simple_spread
    hmarl watch runs/simple_spread --out spread.gif
"""

from mpe2 import simple_spread_v3

from hmarl import Task

TASK = Task(
    name="simple_spread",
    make_env=lambda env_config: simple_spread_v3.parallel_env(**env_config),
    policy_of=lambda agent: "spreader",
)

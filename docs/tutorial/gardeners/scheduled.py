"""The garden with a level schedule: the chooser learns once its walkers walk straight.

Until the walker walks fairly straight, what a choice earns says more about the
walk than about the plant chosen; so the chooser's policy is held (it acts, its
value function learns) until the walkers' directness over the last 200 finished
walkers reaches 0.8.
"""

from __future__ import annotations

import dataclasses

from hmarl import Schedule

from .task import TASK as PLAIN

TASK = dataclasses.replace(
    PLAIN, schedule=Schedule(hold="chooser", metric="directness", threshold=0.8)
)

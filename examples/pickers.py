"""Berries with a hierarchy, declared: a high level picks a bush, a low level walks to it.

The flat env (berries.py) moves every picker every step; this file is all it takes to
give each picker two levels (hmarl.goals). From this folder::

    hmarl check --task pickers:TASK
    hmarl train --task pickers:TASK --time-budget 180
    hmarl evaluate runs/pickers --actions sampled

Written as a user would, outside hmarl, and trained that way (180 s, 2 cores, the
unbatched env at about 900 env steps a second): on 300 held-out episodes the high levels'
return (berries picked per picker) was 3.93 with sampled actions against random's
1.75; with greedy actions 1.11, worse than random (not investigated further: sample
when evaluating this one).
"""

import numpy as np
from berries import BUSHES, SIZE, Berries

from hmarl import Task
from hmarl.goals import Goals, hierarchical

FLAT = Task(name="berries", make_env=Berries, policy_of=lambda agent: "picker")


def bushes(obs):  # (n, BUSHES, 3): each bush's x, y and ripe flag
    return obs[:, 2:].reshape(len(obs), BUSHES, 3)


def candidates(obs):  # the ripe bushes, and staying put (so one goal is always there)
    here = np.concatenate([obs[:, None, :2], np.zeros((len(obs), 1, 1))], axis=2)
    features = np.concatenate([bushes(obs), here], axis=1)
    return features, np.concatenate([bushes(obs)[:, :, 2] > 0, here[:, :, 2] == 0], axis=1)


def distance(obs, goal):  # in cells
    return np.abs(obs[:, :2] - goal[:, :2]).sum(axis=1) * (SIZE - 1)


GOALS = Goals(
    count=BUSHES + 1,
    size=3,
    candidates=candidates,
    reached=lambda obs, goal, reward: (
        (distance(obs, goal) < 0.5) & ((reward > 0) | (goal[:, 2] == 0))
    ),
    invalid=lambda obs, goal, reward: (
        (goal[:, 2] > 0) & ~(bushes(obs)[:, :, :2] == goal[:, None, :2]).all(2).any(1)
    ),
    max_steps=15,
    bonus=0.5,
    shaping=lambda obs, goal: -0.05 * distance(obs, goal),
)
TASK = hierarchical(FLAT, GOALS, name="pickers")

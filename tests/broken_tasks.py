"""Tasks whose envs break the protocol as users' envs do: the core must name the mistake.

- ``TAXIS``: the task ``hmarl new-task`` writes, with the one-line mistake a user made
  when bringing taxis: every agent that acts is rewarded on its step, though
  ``env.agents`` lists only the agents due next (RLlib's env checker refuses it).
- ``WRONG_SHAPE``: the corridor, but the walker's observation has a value too many.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from tiny_task import TASK as CORRIDOR
from tiny_task import CorridorEnv

from hmarl.scaffold.template.env import LiftsEnv
from hmarl.scaffold.template.task import TASK as LIFTS


class TaxisEnv(LiftsEnv):
    def step(self, action_dict: dict[str, Any]) -> tuple:
        obs, rewards, *rest = super().step(action_dict)
        return (obs, dict.fromkeys(action_dict, 0.0) | rewards, *rest)


class WrongShapeEnv(CorridorEnv):
    def _walker_obs(self) -> np.ndarray:
        return np.append(super()._walker_obs(), np.float32(0.0))


TAXIS = dataclasses.replace(LIFTS, name="taxis", make_env=lambda config: TaxisEnv(config))
WRONG_SHAPE = dataclasses.replace(CORRIDOR, make_env=lambda config: WrongShapeEnv(config))

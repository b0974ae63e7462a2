"""The goal yard's networks: the chicken yard's two modules, reading the goal yard's views.

The goal yard's observations are built by :mod:`hmarl.goals`: the high level sees
``{"observation": <flat>, "goals": (C, 2 + O)}`` (its action mask rides beside, and
:class:`hmarl.masked_module.MaskedModule`, which training wraps around this module, takes
it off), the low level ``{"observation": <flat>, "goal": (2 + O,)}``. Goal i is chicken i:
its x, y and personality (:data:`~hmarl.tasks.goal_yard.agents.POSITION`,
:data:`~hmarl.tasks.goal_yard.agents.PERSONALITY`). Each module here hands the chicken
yard's module the fields it reads, so the networks are the same:

- :class:`GoalSetModule`: :class:`~hmarl.tasks.chicken_yard.modules.ChickenSetModule`,
  one shared network scoring each goal from its features and the robot's;
- :class:`GoalWalkingModule`: :class:`~hmarl.tasks.chicken_yard.modules.GoalReachingModule`,
  conditioned on the goal's position.

Example:

>>> import torch
>>> from hmarl.task_env import make_task_env
>>> from hmarl.tasks.goal_yard import TASK
>>> env = make_task_env(TASK, {"num_chickens": 4})
>>> module = GoalSetModule(
...     observation_space=env.observation_spaces["robot_1_high"]["observation"],
...     action_space=env.action_spaces["robot_1_high"],
...     model_config={"hidden_sizes": [32]},
... )
>>> obs, _ = env.reset(seed=0)
>>> view = obs["robot_1_high"]["observation"]
>>> batch = {"observation": {k: torch.from_numpy(v)[None] for k, v in view["observation"].items()},
...          "goals": torch.from_numpy(view["goals"])[None]}
>>> module.forward_inference({"obs": batch})["action_dist_inputs"].shape
torch.Size([1, 4])
"""

from __future__ import annotations

from typing import Any

import torch

from hmarl.tasks.chicken_yard.modules import ChickenSetModule, GoalReachingModule
from hmarl.tasks.goal_yard.agents import PERSONALITY, POSITION

Tensors = dict[str, Any]


class GoalSetModule(ChickenSetModule):
    """High level: a score per goal (chicken) from one network shared across goals."""

    def _num_features(self) -> int:
        return 3 * self.observation_space["observation"]["robot_ocean"].shape[0] + 3

    def _heads(self, obs: Tensors) -> tuple[torch.Tensor, torch.Tensor]:
        flat, goals = obs["observation"], obs["goals"]
        return super()._heads(
            {
                "chicken_oceans": goals[..., PERSONALITY],
                "chicken_positions": goals[..., POSITION],
                "robot_ocean": flat["robot_ocean"],
                "robot_position": flat["robot_position"],
            }
        )


class GoalWalkingModule(GoalReachingModule):
    """Low level: conditioned on the goal, through its offset from the robot."""

    def _heads(self, obs: Tensors) -> tuple[torch.Tensor, torch.Tensor]:
        flat = obs["observation"]
        return super()._heads(
            {
                "robot_position": flat["robot_position"],
                "target_position": obs["goal"][..., POSITION],
                "time_left": flat["time_left"],
            }
        )

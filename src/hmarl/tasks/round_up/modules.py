"""The round-up's high-level network: the yard's set scorer, reading the round-up's new fields.

:class:`RoundUpSetModule` is :class:`~hmarl.tasks.chicken_yard.modules.ChickenSetModule`
with three more features per chicken: whether another robot is heading for it, how
far it is from the nearest other robot, and the time left. Read per chicken, the new
fields keep the network one shared scorer, so it handles any number of chickens and
of robots. The low level's view is the yard's, so its network is the yard's
:class:`~hmarl.tasks.chicken_yard.modules.GoalReachingModule` as it is: it sees the
time left too, which its value needs here as well (fewer catches are still to come
near the end of an episode).
"""

from __future__ import annotations

import math

import torch

from hmarl.tasks.chicken_yard.modules import ChickenSetModule

#: The distance to the nearest other robot when there is none: farther than any two
#: points of the unit square.
NO_OTHER_ROBOT = math.sqrt(2)


class RoundUpSetModule(ChickenSetModule):
    """High level: a score per chicken from one network shared across chickens.

    Each chicken's features are the yard's (its OCEAN vector, the robot's, their
    elementwise product, the offset from robot to chicken and its length), then its
    claimed flag, its distance to the nearest other robot, and the time left.

    Example:

    >>> from hmarl.tasks.round_up.env import RoundUpEnv
    >>> env = RoundUpEnv({"num_chickens": 4, "num_robots": 2})
    >>> module = RoundUpSetModule(
    ...     observation_space=env.observation_spaces["robot_1_high"],
    ...     action_space=env.action_spaces["robot_1_high"],
    ...     model_config={"hidden_sizes": [32, 32]},
    ... )
    >>> obs, _ = env.reset(seed=0)
    >>> batch = {k: torch.from_numpy(v)[None] for k, v in obs["robot_1_high"].items()}
    >>> module.forward_inference({"obs": batch})["action_dist_inputs"].shape
    torch.Size([1, 4])
    """

    def _num_features(self) -> int:
        return super()._num_features() + 3

    def _chicken_features(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        chickens = obs["chicken_positions"]  # (B, C, 2)
        others = obs["other_positions"]  # (B, R - 1, 2)
        if others.shape[1]:
            gaps = (chickens[:, :, None, :] - others[:, None, :, :]).norm(dim=-1)
            nearest_other = gaps.amin(dim=-1)  # (B, C)
        else:
            nearest_other = torch.full(chickens.shape[:2], NO_OTHER_ROBOT, dtype=chickens.dtype)
        time_left = obs["time_left"].expand(-1, chickens.shape[1])  # (B, C)
        extra = torch.stack([obs["chicken_claimed"], nearest_other, time_left], dim=-1)
        return torch.cat([super()._chicken_features(obs), extra], dim=-1)

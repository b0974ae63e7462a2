"""The round-up's high-level network: the yard's set scorer, reading the round-up's new fields.

:class:`RoundUpSetModule` is :class:`~hmarl.tasks.chicken_yard.modules.ChickenSetModule`
with five more features per chicken: whether another robot is heading for it, how far
it is from the nearest other robot, the time left, and how well it suits the other
robots. Read per chicken, the new fields keep the network one shared scorer, so it
handles any number of chickens and of robots. Its value is a centralised critic: it
reads the env's global state (every robot and where it is heading; see
:mod:`hmarl.global_state`), which the task trains with ``critic="central"``. The
low level's view is the yard's, so its network is the
yard's :class:`~hmarl.tasks.chicken_yard.modules.GoalReachingModule` as it is: it
sees the time left too, which its value needs here as well (fewer catches are still
to come near the end of an episode).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis import InferenceOnlyAPI
from ray.rllib.core.rl_module.apis.value_function_api import ValueFunctionAPI
from ray.rllib.core.rl_module.rl_module import RLModule
from ray.rllib.utils.annotations import override
from torch import nn

from hmarl.global_state import GLOBAL_STATE
from hmarl.tasks.chicken_yard.modules import ChickenSetModule, mlp

#: The distance to the nearest other robot when there is none: farther than any two
#: points of the unit square.
NO_OTHER_ROBOT = math.sqrt(2)


class RoundUpSetModule(ChickenSetModule, InferenceOnlyAPI):
    """High level: a score per chicken from one network shared across chickens, and a
    value that reads the whole yard.

    **Policy.** Each chicken's features are the yard's (its OCEAN vector, the
    robot's, their elementwise product, the offset from robot to chicken and its
    length), then its claimed flag, its distance to the nearest other robot, the
    time left, the best compatibility any other robot has with it, and the
    compatibility of the other robot nearest to it. The last two let robots share
    out the chickens: a chicken that suits another robot better, and that it is
    about as close to, is better left to it. (The observation's ``other_oceans`` and
    ``other_positions`` feed them; ``other_targets`` is read by no part of this
    network, only by the ``priced_sharing`` rule.)

    **Value** (a centralised critic, as in MAPPO, reading ``batch["global_state"]``).
    With the team reward and three robots, two thirds of a robot's return is the
    other robots' catches, and what those are worth depends on the chickens they are
    heading for. A value blind to them leaves those catches as noise in every
    advantage, larger than the difference one pick makes. So the value pools two
    sets: each chicken's features (the policy's, and the mean compatibility the other
    robots have with it), and each robot of the state, itself included (at offset 0):
    its personality, offset and distance from this robot, whether it is heading for a
    chicken, its compatibility with that chicken, its distance to it, and that
    chicken's offset and distance from this robot. Built inference-only (in env
    runners and exports) it holds the policy alone.

    Example:

    >>> from hmarl.tasks.round_up.env import RoundUpEnv
    >>> env = RoundUpEnv({"num_chickens": 4, "num_robots": 2})
    >>> module = RoundUpSetModule(
    ...     observation_space=env.observation_spaces["robot_1_high"],
    ...     action_space=env.action_spaces["robot_1_high"],
    ...     model_config={"hidden_sizes": [32, 32], "global_state_space": env.state_space},
    ... )
    >>> obs, _ = env.reset(seed=0)
    >>> batch = {k: torch.from_numpy(v)[None] for k, v in obs["robot_1_high"].items()}
    >>> module.forward_inference({"obs": batch})["action_dist_inputs"].shape
    torch.Size([1, 4])
    >>> state = {k: torch.from_numpy(v)[None] for k, v in env.state().items()}
    >>> module.compute_values({"obs": batch, "global_state": state}).shape
    torch.Size([1])
    """

    @override(RLModule)
    def setup(self) -> None:
        hidden = self._hidden_sizes()
        self.scorer = mlp([self._num_features(), *hidden, 1])
        if self.inference_only:
            return
        ocean = self.observation_space["robot_ocean"].shape[0]
        self.value_encoder = mlp([self._num_features() + 1, *hidden], activate_last=True)
        self.robot_encoder = mlp([ocean + 9, *hidden], activate_last=True)
        self.value_head = nn.Linear(4 * hidden[-1], 1)

    @override(InferenceOnlyAPI)
    def get_non_inference_attributes(self) -> list[str]:
        return ["value_encoder", "robot_encoder", "value_head"]

    def _num_features(self) -> int:
        """Features per chicken: the length of :meth:`_round_up_features`' last axis."""
        return super()._num_features() + 5

    def _round_up_features(
        self, obs: dict[str, torch.Tensor], compatibility: torch.Tensor
    ) -> torch.Tensor:
        """(B, C, F) each chicken's features (the yard's, then the round-up's), given the
        (B, R - 1, C) compatibility of every other robot with every chicken."""
        chickens = obs["chicken_positions"]  # (B, C, 2)
        others = obs["other_positions"]  # (B, R - 1, 2)
        if others.shape[1]:
            gaps = (chickens[:, :, None, :] - others[:, None, :, :]).norm(dim=-1)  # (B, C, R - 1)
            nearest_other, nearest = gaps.min(dim=-1)
            nearest_compatibility = compatibility.gather(1, nearest[:, None, :])[:, 0]
            best_compatibility = compatibility.amax(dim=1)
        else:  # a lone robot: no one to share the chickens with
            nearest_other = torch.full(chickens.shape[:2], NO_OTHER_ROBOT, dtype=chickens.dtype)
            nearest_compatibility = best_compatibility = torch.zeros_like(nearest_other)
        time_left = obs["time_left"].expand(-1, chickens.shape[1])  # (B, C)
        extra = [obs["chicken_claimed"], nearest_other, time_left]
        extra += [best_compatibility, nearest_compatibility]
        return torch.cat([self._chicken_features(obs), torch.stack(extra, dim=-1)], dim=-1)

    def _robot_features(
        self, obs: dict[str, torch.Tensor], state: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """(B, R, O + 9) what the value reads of every robot of the global state."""
        targets = state["robot_targets"]  # (B, R, C)
        heading = targets.sum(dim=-1, keepdim=True)  # 1 while heading for a chicken, else 0
        compatibility = torch.einsum("bro,bco->brc", state["robot_oceans"], state["chicken_oceans"])
        target_compatibility = (compatibility * targets).sum(dim=-1, keepdim=True)
        target_position = targets @ state["chicken_positions"]  # (B, R, 2); 0 if deciding
        position = state["robot_positions"]
        me = obs["robot_position"][:, None, :]
        offset = position - me
        target_offset = (target_position - me) * heading
        to_target = (target_position - position).norm(dim=-1, keepdim=True) * heading
        return torch.cat(
            [
                state["robot_oceans"],
                offset,
                offset.norm(dim=-1, keepdim=True),
                heading,
                target_compatibility,
                to_target,
                target_offset,
                target_offset.norm(dim=-1, keepdim=True),
            ],
            dim=-1,
        )

    def _features(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Each chicken's features, and the other robots' (B, R - 1, C) compatibilities."""
        compatibility = torch.einsum("bro,bco->brc", obs["other_oceans"], obs["chicken_oceans"])
        return self._round_up_features(obs, compatibility), compatibility

    def _value(self, batch: dict[str, Any], features: torch.Tensor, others: torch.Tensor) -> Any:
        if GLOBAL_STATE not in batch:
            raise ValueError(
                "RoundUpSetModule's value reads the global state: train its policy with "
                "critic='central' (the round-up task's default)"
            )
        obs = batch[Columns.OBS]
        mean = others.mean(dim=1) if others.shape[1] else torch.zeros_like(features[..., 0])
        chickens = self.value_encoder(torch.cat([features, mean[..., None]], dim=-1))
        robots = self.robot_encoder(self._robot_features(obs, batch[GLOBAL_STATE]))
        pooled = [chickens.mean(dim=1), chickens.amax(dim=1), robots.mean(dim=1)]
        pooled.append(robots.amax(dim=1))
        return self.value_head(torch.cat(pooled, dim=-1)).squeeze(-1)

    @override(RLModule)
    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        features, _ = self._features(batch[Columns.OBS])
        return {Columns.ACTION_DIST_INPUTS: self.scorer(features).squeeze(-1)}

    @override(RLModule)
    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        features, others = self._features(batch[Columns.OBS])
        # The values ride as embeddings, so PPO's value loss does not run the network twice.
        return {
            Columns.ACTION_DIST_INPUTS: self.scorer(features).squeeze(-1),
            Columns.EMBEDDINGS: self._value(batch, features, others),
        }

    @override(ValueFunctionAPI)
    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> torch.Tensor:
        if embeddings is not None:
            return embeddings
        features, others = self._features(batch[Columns.OBS])
        return self._value(batch, features, others)

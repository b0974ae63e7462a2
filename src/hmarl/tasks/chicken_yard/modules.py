"""The yard's two policies' networks, as RLlib RLModules that read its Dict observations.

Both are PPO-ready (``TorchRLModule`` + ``ValueFunctionAPI``) and take their sizes
from ``model_config``:

- :class:`ChickenSetModule` (high level) treats the chickens as a set: one shared
  network scores each chicken from that chicken's features and the robot's, and the
  scores are the action logits. It learns "pick the most compatible" once, not once
  per chicken slot, and it works for any number of chickens.
- :class:`GoalReachingModule` (low level) is conditioned on the target chicken: it
  sees where the target lies relative to the robot.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis.value_function_api import ValueFunctionAPI
from ray.rllib.core.rl_module.rl_module import RLModule
from ray.rllib.core.rl_module.torch import TorchRLModule
from ray.rllib.utils.annotations import override
from torch import nn

#: ``model_config`` defaults shared by both modules.
DEFAULT_MODEL_CONFIG = {"hidden_sizes": [64, 64]}


def mlp(sizes: list[int], activate_last: bool = False) -> nn.Sequential:
    """Linear layers with tanh between them (PPO's usual choice for small inputs)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2 or activate_last:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


class _PPOModule(TorchRLModule, ValueFunctionAPI):
    """What both modules share: logits and values from one ``_heads`` call."""

    def _hidden_sizes(self) -> list[int]:
        return list(
            (self.model_config or {}).get("hidden_sizes", DEFAULT_MODEL_CONFIG["hidden_sizes"])
        )

    def _heads(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Action logits and state values for a batch of observations."""
        raise NotImplementedError

    @override(RLModule)
    def _forward(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        logits, _ = self._heads(batch[Columns.OBS])
        return {Columns.ACTION_DIST_INPUTS: logits}

    @override(RLModule)
    def _forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        logits, values = self._heads(batch[Columns.OBS])
        # Keep the values so PPO's value loss does not run the network twice.
        return {Columns.ACTION_DIST_INPUTS: logits, Columns.EMBEDDINGS: values}

    @override(ValueFunctionAPI)
    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> torch.Tensor:
        if embeddings is not None:
            return embeddings
        return self._heads(batch[Columns.OBS])[1]


class ChickenSetModule(_PPOModule):
    """High level: a score per chicken from one network shared across chickens.

    Each chicken's features are its OCEAN vector, the robot's, their elementwise
    product (whose sum is the compatibility), the offset from robot to chicken and
    its length. The value head pools the chickens' embeddings (mean and max).

    Example:

    >>> from hmarl.tasks.chicken_yard.env import ChickenYardEnv
    >>> env = ChickenYardEnv({"num_chickens": 4})
    >>> module = ChickenSetModule(
    ...     observation_space=env.observation_spaces["robot_1_high"],
    ...     action_space=env.action_spaces["robot_1_high"],
    ...     model_config={"hidden_sizes": [32, 32]},
    ... )
    >>> obs, _ = env.reset(seed=0)
    >>> batch = {k: torch.from_numpy(v)[None] for k, v in obs["robot_1_high"].items()}
    >>> module.forward_inference({"obs": batch})["action_dist_inputs"].shape
    torch.Size([1, 4])
    """

    @override(RLModule)
    def setup(self) -> None:
        features = self._num_features()
        hidden = self._hidden_sizes()
        self.scorer = mlp([features, *hidden, 1])
        self.value_encoder = mlp([features, *hidden], activate_last=True)
        self.value_head = nn.Linear(2 * hidden[-1], 1)

    def _num_features(self) -> int:
        """Features per chicken: the length of :meth:`_chicken_features`' last axis."""
        return 3 * self.observation_space["robot_ocean"].shape[0] + 3

    def _chicken_features(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, C, F) the features of each chicken, with the robot's."""
        chickens = obs["chicken_oceans"]  # (B, C, O)
        robot = obs["robot_ocean"][:, None, :].expand_as(chickens)
        offset = obs["chicken_positions"] - obs["robot_position"][:, None, :]  # (B, C, 2)
        distance = offset.norm(dim=-1, keepdim=True)
        return torch.cat([chickens, robot, chickens * robot, offset, distance], dim=-1)

    def _heads(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        features = self._chicken_features(obs)
        logits = self.scorer(features).squeeze(-1)  # (B, C)
        embedded = self.value_encoder(features)
        pooled = torch.cat([embedded.mean(dim=1), embedded.amax(dim=1)], dim=-1)
        return logits, self.value_head(pooled).squeeze(-1)


class GoalReachingModule(_PPOModule):
    """Low level: conditioned on the target, through its offset from the robot.

    Inputs are the unit direction to the target, the distance to it, and the
    robot's own position (the yard's walls clip moves). The value network also
    sees the time left: the best move does not depend on it, but the value does,
    since running out of time costs the time-out penalty.

    Example:

    >>> from hmarl.tasks.chicken_yard.env import ChickenYardEnv
    >>> env = ChickenYardEnv()
    >>> module = GoalReachingModule(
    ...     observation_space=env.observation_spaces["robot_1_low"],
    ...     action_space=env.action_spaces["robot_1_low"],
    ...     model_config={"hidden_sizes": [32]},
    ... )
    >>> obs = {"robot_position": torch.tensor([[0.2, 0.5]]),
    ...        "target_position": torch.tensor([[0.6, 0.1]]),
    ...        "time_left": torch.tensor([[0.9]])}
    >>> module.forward_inference({"obs": obs})["action_dist_inputs"].shape
    torch.Size([1, 8])
    """

    @override(RLModule)
    def setup(self) -> None:
        hidden = self._hidden_sizes()
        self.policy_net = mlp([5, *hidden, self.action_space.n])
        self.value_net = mlp([6, *hidden, 1])

    def _heads(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        offset = obs["target_position"] - obs["robot_position"]
        distance = offset.norm(dim=-1, keepdim=True)
        direction = offset / distance.clamp_min(1e-6)
        # sqrt spreads the short distances, where the last moves are decided.
        features = torch.cat([direction, distance.sqrt(), obs["robot_position"]], dim=-1)
        with_time = torch.cat([features, obs["time_left"]], dim=-1)
        return self.policy_net(features), self.value_net(with_time).squeeze(-1)

"""Centralised critics: values that read the global state, actions that never do.

A policy trained with ``critic="central"`` (see :mod:`hmarl.global_state`) gets the
global state in its batches as the column :data:`~hmarl.global_state.GLOBAL_STATE`.

- With RLlib's default module, hmarl builds :class:`CentralCriticModule`: RLlib's own
  actor (its encoder and policy head, as RLlib's catalog builds them for the
  observation) and, in place of RLlib's critic, an MLP of the same sizes over the
  observation and the state side by side.
- A task's own module reads ``batch[GLOBAL_STATE]`` in ``compute_values`` (and
  ``forward_train`` if it computes its values there); the state's space is in its
  ``model_config[STATE_SPACE_KEY]``. Its logits must not read the state: acting
  (RLlib's env runners, evaluation, exports) gives it none.

:class:`AddGlobalState` is the learner connector piece that builds the column from the
``hmarl_state`` info that hmarl's env wrapper puts beside every observation, for the
episodes of RLlib's own env runner (hmarl's batched sampler writes the column itself).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import DefaultPPOTorchRLModule
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.core.columns import Columns
from ray.rllib.core.models.base import ACTOR, ENCODER_OUT
from ray.rllib.core.rl_module.apis.value_function_api import ValueFunctionAPI
from ray.rllib.core.rl_module.rl_module import RLModule
from ray.rllib.utils.annotations import override
from ray.rllib.utils.spaces.space_utils import get_base_struct_from_space
from ray.rllib.utils.torch_utils import flatten_inputs_to_1d_tensor

from hmarl.flat_observations import flat_space, is_flat
from hmarl.global_state import GLOBAL_STATE, STATE_INFO, STATE_SPACE_KEY
from hmarl.sequences import Padding


def flat_state(state: Any, struct: Any) -> torch.Tensor:
    """A batch of global states as one float vector each (RLlib's flattening)."""
    if struct is None:
        return state.float()
    return flatten_inputs_to_1d_tensor(state, spaces_struct=struct).float()


class CentralCriticModule(DefaultPPOTorchRLModule):
    """RLlib's default PPO module with a value that reads the global state (see the module).

    ``model_config`` is RLlib's default model config (``fcnet_hiddens``,
    ``fcnet_activation``, ...) plus ``STATE_SPACE_KEY``. Built ``inference_only`` (in
    env runners and exports) it holds the actor alone.
    """

    @override(RLModule)
    def setup(self) -> None:
        # RLlib's DefaultPPORLModule.setup (2.60.0) builds the actor-critic encoder, pi
        # and vf from its catalog; with the encoder config's `inference_only` it builds the
        # actor's encoder alone. That is all of RLlib's this module keeps: its critic is
        # the MLP below. (tests/test_central_critic.py fails if the actor changes shape.)
        self.catalog.actor_critic_encoder_config.inference_only = True
        self.encoder = self.catalog.build_actor_critic_encoder(framework=self.framework)
        self.pi = self.catalog.build_pi_head(framework=self.framework)
        if self.inference_only:
            return
        space = self.model_config[STATE_SPACE_KEY]
        self._state_struct = None if is_flat(space) else get_base_struct_from_space(space)
        inputs = self.observation_space.shape[0] + flat_space(space).shape[0]
        hidden = list(self.model_config.get("fcnet_hiddens") or [256, 256])
        activation = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}.get(
            self.model_config.get("fcnet_activation", "tanh"), torch.nn.Tanh
        )
        layers: list[torch.nn.Module] = []
        for size in hidden:
            layers += [torch.nn.Linear(inputs, size), activation()]
            inputs = size
        self.central_vf = torch.nn.Sequential(*layers, torch.nn.Linear(inputs, 1))

    @override(RLModule)
    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return self._forward(batch, **kwargs)

    @override(RLModule)
    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        encoded = self.encoder(batch)
        out = {Columns.ACTION_DIST_INPUTS: self.pi(encoded[ENCODER_OUT][ACTOR])}
        if Columns.STATE_OUT in encoded:
            out[Columns.STATE_OUT] = encoded[Columns.STATE_OUT]
        return out

    @override(ValueFunctionAPI)
    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> torch.Tensor:
        state = flat_state(batch[GLOBAL_STATE], self._state_struct)
        inputs = torch.cat([batch[Columns.OBS].float(), state], dim=-1)
        return self.central_vf(inputs).squeeze(-1)

    @override(DefaultPPOTorchRLModule)
    def get_non_inference_attributes(self) -> list[str]:
        return ["central_vf"]


class AddGlobalState(ConnectorV2):
    """Learner connector piece: the ``global_state`` column of the central critics' batches.

    Runs after RLlib's pieces have laid out each module's rows (every single-agent
    episode's observations in turn, then one bootstrap row repeating its last), and
    before the advantages, whose values read the state. Row t of an episode gets the
    state that came with observation t (``infos[t]["hmarl_state"]``).
    """

    def __init__(
        self,
        input_observation_space: Any = None,
        input_action_space: Any = None,
        *,
        central: frozenset[str],
    ) -> None:
        super().__init__(input_observation_space, input_action_space)
        self.central = central

    @override(ConnectorV2)
    def __call__(
        self, *, rl_module: Any, episodes: list, batch: dict[str, Any], **kwargs: Any
    ) -> Any:
        from hmarl.advantages import episodes_of_module, values_device

        for module_id, module_batch in batch.items():
            if module_id not in self.central:
                continue
            states = [
                info[STATE_INFO]
                for episode in episodes_of_module(self, episodes, module_id)
                for info in list(episode.get_infos())[: len(episode.get_rewards())]
            ]
            # A module with memory has its rows as padded sequences (hmarl.sequences).
            padding = Padding.of(module_batch)
            rows = len(module_batch[Columns.REWARDS]) if padding is None else padding.rows
            if len(states) != rows:
                raise ValueError(f"{module_id}: {len(states)} global states for {rows} rows")
            module_batch[GLOBAL_STATE] = _stack(states, values_device(module_batch), padding)
        return batch


def _stack(states: list[Any], device: Any, padding: Padding | None) -> Any:
    if isinstance(states[0], dict):
        return {key: _stack([s[key] for s in states], device, padding) for key in states[0]}
    rows = np.stack(states)
    return torch.as_tensor(rows if padding is None else padding.pad(rows), device=device)

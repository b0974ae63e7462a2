"""The RL module of a policy whose observations carry an action mask (:mod:`hmarl.action_masks`).

:class:`MaskedModule` wraps the policy's own module: RLlib's default PPO module, or the
one the task declares. The wrapped module is built for the ``observation`` part of the
space and never sees the mask in ``Columns.OBS``; the mask rides beside it in the batch
column ``action_mask``, for a module that chooses to read it. Every forward pass sets
the logits of masked actions to :data:`hmarl.action_masks.MASKED_LOGIT`, so each path
that acts or learns (RLlib's env runner, hmarl's batched sampler, the learner's loss
with its entropy and KL, evaluation, the ONNX graph of an export) sees legal actions
only, whatever module sits inside.

The wrapped module is named in ``model_config`` (plain JSON, so exports describe it)::

    {"module": "package.module.ClassName", "model_config": {...its own...}}

RLlib's default module needs a flat vector; where the ``observation`` is structured the
wrapper flattens it as RLlib's ``FlattenObservations`` connector would (that connector
cannot be used here: it would flatten the mask into the network's input).

This follows RLlib's own example (``examples/rl_modules/classes/action_masking_rlm.py``,
read in 2.60.0), which adds ``clamp(log(mask), FLOAT_MIN)`` to the logits of its one
module class; here any module is wrapped, and the masked logit is a plain constant.
"""

from __future__ import annotations

import importlib
from typing import Any

import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis.value_function_api import ValueFunctionAPI
from ray.rllib.core.rl_module.rl_module import RLModule
from ray.rllib.core.rl_module.torch import TorchRLModule
from ray.rllib.utils.annotations import override
from ray.rllib.utils.spaces.space_utils import get_base_struct_from_space
from ray.rllib.utils.torch_utils import flatten_inputs_to_1d_tensor

from hmarl.action_masks import MASK_KEY, MASKED_LOGIT, check_masked_spaces, observation_key
from hmarl.flat_observations import flat_space, is_flat

DEFAULT_MODULE = (
    "ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module.DefaultPPOTorchRLModule"
)
"""RLlib's default PPO module, by the name a MaskedModule's ``model_config`` gives it."""


def qualname(kind: type) -> str:
    """``package.module.ClassName``: how model configs and exports name a module class."""
    return f"{kind.__module__}.{kind.__qualname__}"


def import_class(qualname: str) -> type:
    """The class named ``package.module.ClassName`` (nested classes by their dotted path)."""
    module_name, _, rest = qualname.rpartition(".")
    while module_name:
        try:
            found: Any = importlib.import_module(module_name)
        except ImportError:
            module_name, _, head = module_name.rpartition(".")
            rest = f"{head}.{rest}"
            continue
        for part in rest.split("."):
            found = getattr(found, part)
        return found
    raise ImportError(f"cannot import {qualname!r}")


def masked(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``logits`` with every masked action's set to :data:`MASKED_LOGIT`."""
    return torch.where(mask > 0, logits, torch.full_like(logits, MASKED_LOGIT))


class MaskedModule(TorchRLModule, ValueFunctionAPI):
    """A policy's module, given the observation without its mask, its logits masked.

    See the module docstring. ``observation_space`` is the env's (the Dict with the
    mask); the wrapped module, ``self.inner``, is built for its ``observation`` part.
    """

    @override(RLModule)
    def setup(self) -> None:
        check_masked_spaces(self.observation_space, self.action_space)
        self.key = observation_key(self.observation_space)
        inner_space = self.observation_space[self.key]
        inner_class = import_class(self.model_config["module"])
        from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import (
            DefaultPPOTorchRLModule,
        )

        self.flatten = issubclass(inner_class, DefaultPPOTorchRLModule) and not is_flat(inner_space)
        if self.flatten:
            self._struct = get_base_struct_from_space(inner_space)
            inner_space = flat_space(inner_space)
        self.inner = inner_class(
            observation_space=inner_space,
            action_space=self.action_space,
            inference_only=self.inference_only,
            model_config=dict(self.model_config.get("model_config") or {}),
        )

    def _inner_batch(self, batch: dict[str, Any]) -> tuple[dict[str, Any], torch.Tensor]:
        """The batch as the wrapped module takes it, and the mask (a new dict; ``batch`` stays)."""
        obs = batch[Columns.OBS]
        mask = obs[MASK_KEY]
        inner = obs[self.key]
        if self.flatten:  # a module with memory takes (B, T, ...) rows: a time axis too
            inner = flatten_inputs_to_1d_tensor(
                inner, spaces_struct=self._struct, time_axis=self.inner.is_stateful()
            ).float()
        return {**batch, Columns.OBS: inner, MASK_KEY: mask}, mask

    def _masked_forward(self, forward: str, batch: dict[str, Any], **kwargs: Any) -> dict:
        inner_batch, mask = self._inner_batch(batch)
        out = dict(getattr(self.inner, forward)(inner_batch, **kwargs))
        out[Columns.ACTION_DIST_INPUTS] = masked(out[Columns.ACTION_DIST_INPUTS], mask)
        return out

    @override(RLModule)
    def _forward_inference(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return self._masked_forward("forward_inference", batch, **kwargs)

    @override(RLModule)
    def _forward_exploration(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return self._masked_forward("forward_exploration", batch, **kwargs)

    @override(RLModule)
    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return self._masked_forward("forward_train", batch, **kwargs)

    @override(ValueFunctionAPI)
    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> torch.Tensor:
        inner_batch, _ = self._inner_batch(batch)
        return self.inner.compute_values(inner_batch, embeddings=embeddings)

    @override(RLModule)
    def get_initial_state(self) -> Any:
        return self.inner.get_initial_state()

    @override(TorchRLModule)
    def get_inference_action_dist_cls(self) -> Any:
        return self.inner.get_inference_action_dist_cls()

    @override(TorchRLModule)
    def get_exploration_action_dist_cls(self) -> Any:
        return self.inner.get_exploration_action_dist_cls()

    @override(TorchRLModule)
    def get_train_action_dist_cls(self) -> Any:
        return self.inner.get_train_action_dist_cls()

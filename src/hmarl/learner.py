"""PPO's torch learner, with what a hierarchy needs: per-level updates and held policies.

**Updates per level.** RLlib 2.60's ``MiniBatchCyclicIterator`` (read in
``ray/rllib/utils/minibatch_utils.py``) runs until the module with the *most*
samples has done ``num_epochs``, cycling the modules with fewer samples: a high
level with one sample per fifteen low-level samples has each of them used about
sixty times per update, not ``num_epochs`` times. :class:`PerModuleMinibatches`
gives each module its own ``num_epochs`` and ``minibatch_size`` (RLlib's
per-module config overrides, the run's values by default): every epoch shuffles a
module's samples and splits them into minibatches of nearly equal size, so each
sample is used exactly ``num_epochs`` times. A module that runs out of minibatches
sits out the remaining update steps: it is absent from their batch, so its loss
term is absent, its gradients stay ``None`` and ``torch.optim.Adam`` skips its
parameters (checked in ``TorchLearner.compute_gradients``/``apply_gradients``:
gradients are zeroed with ``set_to_none=True`` before each step).

**Held policies.** While the schedule holds a policy back, its module still gets
a loss, but only the value function's: the critic learns the level's values from
the first iteration, so it is trained, not raw, when the policy starts to learn.
(A module that shares layers between its policy and its value head moves those
layers through the value loss; hmarl's and RLlib's default modules share none.)

**Memory.** A module with memory gets its rows as padded sequences of its agents' own
decisions (:mod:`hmarl.sequences`): its minibatches are whole sequences, as many rows
(real ones) to a minibatch as ``minibatch_size`` asks, and the loss reads only real
rows (RLlib's PPO loss masks with ``Columns.LOSS_MASK``, false on padding and bootstrap
rows).

**Annealing.** :meth:`HierarchicalPPOLearner.set_lr_scale` multiplies every
optimizer's learning rate (the configured value, or RLlib's schedule's) by a factor
the algorithm sets each iteration (see :class:`hmarl.algorithm.LrAnnealing`). RLlib
2.60 sets an optimizer's rate only through ``_set_optimizer_lr`` (at build, and after
every update from its ``Scheduler``, even a fixed one, in
``Learner.after_gradient_based_update``), always called on the learner: overriding it
scales every rate RLlib sets, and the logged ``default_optimizer_learning_rate`` is
the scaled one.

**Visible learning.** Besides RLlib's per-module entropy, KL, value loss and
explained variance, the learner logs the *clip fraction*: the share of samples
whose probability ratio left PPO's clip range.

**Global state.** For centralised critics, :class:`hmarl.central_critic.AddGlobalState`
joins the learner connector pipeline before the advantages (whose values read it).

**Advantages.** RLlib's GAE piece at the end of the learner connector pipeline is
replaced by :class:`hmarl.advantages.SMDPAdvantageEstimation` (SMDP-correct for
agents that decide at irregular times; RLlib's arithmetic with
``discounting="per-decision"``). Batches from hmarl's batched sampler arrive
without advantages; the learner adds them with the same function before the
minibatch loop.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch
import tree
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.learner import VF_LOSS_KEY
from ray.rllib.evaluation.postprocessing import Postprocessing
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.annotations import override
from ray.rllib.utils.torch_utils import explained_variance

from hmarl.advantages import SMDPAdvantageEstimation, add_advantages
from hmarl.central_critic import AddGlobalState
from hmarl.seeding import visit_agents_in_order
from hmarl.sequences import max_seq_len

CLIP_FRACTION = "clip_fraction"
VF_EXPLAINED_VAR = "vf_explained_var"
MINIBATCH_RNG = "hmarl_minibatch_rng"


class PerModuleMinibatches:
    """Minibatches of a multi-agent batch, each module with its own epochs and size.

    Update step i carries the i-th minibatch of every module that has one left. A
    module with memory is split by sequences (its batch's first axis), ``minibatch_size``
    counting their real rows.
    """

    def __init__(
        self,
        batch: MultiAgentBatch,
        epochs: Mapping[str, int],
        minibatch_sizes: Mapping[str, int],
        rng: np.random.Generator,
    ) -> None:
        self.batch = batch
        self.plans: dict[str, list[np.ndarray]] = {}
        for module_id, module_batch in batch.policy_batches.items():
            rows = len(module_batch)  # real rows (SampleBatch counts seq_lens when padded)
            n = len(module_batch[Columns.SEQ_LENS]) if Columns.SEQ_LENS in module_batch else rows
            parts = max(1, math.ceil(rows / max(1, minibatch_sizes[module_id])))
            self.plans[module_id] = [
                indices
                for _ in range(epochs[module_id])
                for indices in np.array_split(rng.permutation(n), parts)
            ]
        self.steps = max((len(plan) for plan in self.plans.values()), default=0)

    def __iter__(self) -> Iterator[MultiAgentBatch]:
        for step in range(self.steps):
            parts = {}
            for module_id, plan in self.plans.items():
                if step < len(plan):
                    parts[module_id] = _rows(self.batch.policy_batches[module_id], plan[step])
            yield MultiAgentBatch(parts, env_steps=max(len(p) for p in parts.values()))


def _rows(batch: SampleBatch, indices: np.ndarray) -> SampleBatch:
    """The rows (sequences, for a module with memory) at ``indices``."""
    index = torch.from_numpy(indices)
    return SampleBatch(tree.map_structure(lambda column: column[index], dict(batch)))


class HierarchicalPPOLearner(PPOTorchLearner):
    """PPO's torch learner with per-module updates and held policies (see the module docstring)."""

    @override(PPOTorchLearner)
    def build(self) -> None:
        visit_agents_in_order()  # the same batch rows in every process (see hmarl.seeding)
        super().build()
        if self._learner_connector is not None:
            # PPOLearner.build() appended RLlib's GAE piece last; hmarl's goes there,
            # after the global state that centralised critics' values read.
            self._learner_connector.remove("GeneralAdvantageEstimation")
            if self.config.central_policies:
                self._learner_connector.append(
                    AddGlobalState(central=frozenset(self.config.central_policies))
                )
            self._learner_connector.append(
                SMDPAdvantageEstimation(config=self.config, smdp=self.config.discounting == "smdp")
            )
        for module_id, module in self.module.items():
            if module.is_stateful():
                max_seq_len(module, module_id)  # a clear error now, not RLlib's later
        self.held: frozenset[str] = frozenset()
        """Modules whose policy the schedule holds back (their value function trains)."""
        self._minibatch_rng = np.random.default_rng(self.config.seed)

    lr_scale: float = 1.0
    """The factor on every learning rate (see the module docstring)."""

    def set_held(self, modules: frozenset[str]) -> None:
        self.held = frozenset(modules)

    def set_lr_scale(self, scale: float) -> None:
        self.lr_scale = scale
        for optimizer, schedule in self._optimizer_lr_schedules.items():
            self._set_optimizer_lr(optimizer, lr=float(schedule.get_current_value()))

    def _set_optimizer_lr(self, optimizer: torch.optim.Optimizer, lr: float) -> None:
        # RLlib's is a static method, always called on the learner (checked in 2.60).
        PPOTorchLearner._set_optimizer_lr(optimizer, lr * self.lr_scale)

    @override(PPOTorchLearner)
    def get_state(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        state = super().get_state(*args, **kwargs)
        # The minibatch order's generator: a resumed run shuffles as the run would have.
        state[MINIBATCH_RNG] = self._minibatch_rng.bit_generator.state
        return state

    @override(PPOTorchLearner)
    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        if MINIBATCH_RNG in state:
            self._minibatch_rng.bit_generator.state = state[MINIBATCH_RNG]

    @override(PPOTorchLearner)
    def _create_iterator_if_necessary(self, *, training_data: Any, **kwargs: Any) -> Any:
        # Learner.update() calls this for its minibatch loop; 2.60's version turns the
        # training data into a MultiAgentBatch of tensors (running the learner
        # connector on episodes) and then cycles minibatches. Only the cycling changes.
        batch = self._make_batch_if_necessary(training_data=training_data)
        for module_id, module_batch in batch.policy_batches.items():
            if Postprocessing.ADVANTAGES not in module_batch:  # from the batched sampler
                add_advantages(
                    self.module[module_id].unwrapped(),
                    module_batch,
                    self.config.get_config_for_module(module_id).lambda_,
                )
        for module_id in list(batch.policy_batches):
            if not self.should_module_be_updated(module_id, batch):
                del batch.policy_batches[module_id]
        if not batch.policy_batches:
            return {}
        configs = {m: self.config.get_config_for_module(m) for m in batch.policy_batches}
        return PerModuleMinibatches(
            batch,
            epochs={m: c.num_epochs for m, c in configs.items()},
            minibatch_sizes={
                m: c.minibatch_size or len(batch.policy_batches[m]) for m, c in configs.items()
            },
            rng=self._minibatch_rng,
        )

    @override(PPOTorchLearner)
    def compute_loss_for_module(
        self, *, module_id: str, config: Any, batch: dict[str, Any], fwd_out: dict[str, Any]
    ) -> torch.Tensor:
        if module_id in self.held:
            return self._value_loss(module_id, config, batch, fwd_out)
        loss = super().compute_loss_for_module(
            module_id=module_id, config=config, batch=batch, fwd_out=fwd_out
        )
        module = self.module[module_id].unwrapped()
        with torch.no_grad():
            mask = _loss_mask(batch)
            dist = module.get_train_action_dist_cls().from_logits(
                fwd_out[Columns.ACTION_DIST_INPUTS][mask]
            )
            ratio = torch.exp(
                dist.logp(batch[Columns.ACTIONS][mask]) - batch[Columns.ACTION_LOGP][mask]
            )
            clipped = ((ratio - 1.0).abs() > config.clip_param).float().mean()
            values = module.compute_values(batch, embeddings=fwd_out.get(Columns.EMBEDDINGS))
        self.metrics.log_dict(
            {
                CLIP_FRACTION: clipped,
                # Logged after RLlib's own, so this one is reported: RLlib 2.60's PPO
                # loss takes the explained variance over every row, the loss-masked
                # bootstrap rows too, which for a high level are a large share.
                VF_EXPLAINED_VAR: explained_variance(
                    batch[Postprocessing.VALUE_TARGETS][mask], values[mask]
                ),
            },
            key=module_id,
            window=1,
        )
        return loss

    def _value_loss(
        self, module_id: str, config: Any, batch: dict[str, Any], fwd_out: dict[str, Any]
    ) -> torch.Tensor:
        """PPO's value term alone (its clipping and coefficient), for a held module."""
        module = self.module[module_id].unwrapped()
        mask = _loss_mask(batch)
        values = module.compute_values(batch, embeddings=fwd_out.get(Columns.EMBEDDINGS))[mask]
        targets = batch[Postprocessing.VALUE_TARGETS][mask]
        squared = torch.pow(values - targets, 2.0)
        mean_loss = torch.clamp(squared, 0, config.vf_clip_param).mean()
        self.metrics.log_dict(
            {
                VF_LOSS_KEY: mean_loss,
                VF_EXPLAINED_VAR: explained_variance(targets, values),
            },
            key=module_id,
            window=1,
        )
        return config.vf_loss_coeff * mean_loss


def _loss_mask(batch: dict[str, Any]) -> Any:
    """The rows PPO learns from: all but the bootstrap rows (``Columns.LOSS_MASK``)."""
    if Columns.LOSS_MASK in batch:
        return batch[Columns.LOSS_MASK].bool()
    return slice(None)

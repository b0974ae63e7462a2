"""Advantages for agents that decide at irregular times: SMDP-correct GAE.

A high-level agent's decision lasts k env steps (until it observes again). RLlib
sums the rewards of those steps onto the decision, undiscounted, and its GAE
(``connectors/learner/general_advantage_estimation.py`` with
``utils/postprocessing/value_predictions.compute_value_targets``) applies one
``gamma`` per decision, however long it lasted. hmarl discounts by time instead.
For decision t of an agent, lasting k_t env steps, with reward r_{t,j} received at
the j-th of them (j = 1..k_t):

    R_t     = sum_j gamma**(j - 1) * r_{t,j}            the decision's return
    d_t     = gamma**k_t                                its discount
    delta_t = R_t + d_t * V(s_{t+1}) - V(s_t)           (no V(s_{t+1}) once terminated)
    A_t     = delta_t + d_t * lambda * A_{t+1}          (A_{t+1} = 0 at the end of a chunk)

and value targets A_t + V(s_t). With k_t = 1 everywhere this is exactly RLlib's
GAE; ``discounting="per-decision"`` keeps RLlib's behaviour (d_t = gamma, R_t the
plain sum) for comparison. lambda weighs decisions, as it weighs steps in GAE.

Rows follow RLlib's learner-batch layout (``AddOneTsToEpisodesAndTruncate``): each
agent's transitions in time order, then one extra row holding its last
observation (for the bootstrap value; loss-masked), the last real row flagged
terminated or truncated. hmarl's batched sampler builds its batches the same way,
so :func:`add_advantages` serves both samplers. :class:`SMDPAdvantageEstimation`
replaces RLlib's GAE piece in the learner connector pipeline: it reads each
decision's length from the ``hmarl_t`` stamps that :class:`hmarl.task_env.StampedEnv`
puts in every observation's info (and the rewards inside a decision from
``hmarl_option_rewards``), then calls :func:`add_advantages`.

A module with memory gets its rows as padded sequences (:mod:`hmarl.sequences`); the
advantages are computed on the real rows, each agent's in time order, and padded again,
as RLlib's GAE piece unpads and pads.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis.value_function_api import ValueFunctionAPI
from ray.rllib.evaluation.postprocessing import Postprocessing
from ray.rllib.utils.annotations import override

from hmarl.sequences import Padding
from hmarl.task_env import END, OPTION_REWARDS, STAMP

DISCOUNTS = "hmarl_discounts"
"""Batch column: each row's discount to the next decision, gamma**k (or gamma)."""

logger = logging.getLogger(__name__)


def gae(
    rewards: np.ndarray,
    values: np.ndarray,
    discounts: np.ndarray,
    terminateds: np.ndarray,
    truncateds: np.ndarray,
    lambda_: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Advantages and value targets of rows in RLlib's learner-batch layout.

    ``values[t + 1]`` is the value of row t's next state (the next row is the next
    decision of the same agent, or its bootstrap row); a terminated row has no next
    state, a truncated row ends its agent's chunk. Time runs along axis 0; any
    further axes are independent sequences.
    """
    non_terminal = 1.0 - terminateds.astype(np.float64)
    propagate = non_terminal * (1.0 - truncateds.astype(np.float64))
    next_values = np.concatenate([values[1:], np.zeros_like(values[:1])])
    deltas = rewards + discounts * non_terminal * next_values - values
    advantages = np.zeros_like(deltas, dtype=np.float64)
    running = np.zeros_like(deltas[0], dtype=np.float64)
    for t in range(len(deltas) - 1, -1, -1):
        running = deltas[t] + discounts[t] * lambda_ * propagate[t] * running
        advantages[t] = running
    return advantages, advantages + values


def add_advantages(module: Any, batch: dict[str, Any], lambda_: float) -> None:
    """Value targets and standardised advantages of one module's batch, in place.

    The values come from the module itself, in one forward pass over the batch
    (bootstrap rows included), as in RLlib's GAE piece. Advantages are standardised
    over the rows that train (not the bootstrap rows, nor padding).
    """
    with torch.no_grad():
        values = module.compute_values(batch).detach().cpu().numpy().astype(np.float64)
    padding = Padding.of(batch)
    rows = _rows_of(padding)
    values = rows(values)
    advantages, targets = gae(
        rows(batch[Columns.REWARDS]).astype(np.float64),
        values,
        rows(batch[DISCOUNTS]).astype(np.float64),
        rows(batch[Columns.TERMINATEDS]),
        rows(batch[Columns.TRUNCATEDS]),
        lambda_,
    )
    mask = rows(batch[Columns.LOSS_MASK]).astype(bool)
    trained = advantages[mask]
    advantages = (advantages - trained.mean()) / max(1e-4, trained.std())
    device = values_device(batch)
    for key, column in (
        (Postprocessing.ADVANTAGES, advantages),
        (Postprocessing.VALUE_TARGETS, targets),
    ):
        batch[key] = torch.as_tensor(
            _column_of(padding, column), dtype=torch.float32, device=device
        )


def _rows_of(padding: Padding | None) -> Any:
    """A column as plain rows: unpadded for a module with memory, as it is otherwise."""
    return _numpy if padding is None else padding.unpad


def _column_of(padding: Padding | None, rows: np.ndarray) -> np.ndarray:
    """Plain rows as the batch holds its columns: padded again for a module with memory."""
    return rows if padding is None else padding.pad(rows)


def _numpy(column: Any) -> np.ndarray:
    return column.detach().cpu().numpy() if isinstance(column, torch.Tensor) else np.asarray(column)


def values_device(batch: dict[str, Any]) -> Any:
    for value in batch.values():
        if isinstance(value, torch.Tensor):
            return value.device
    return None


def decision_rows(
    rewards: list[float], infos: list[dict], gamma: float, smdp: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's return and discount for one agent's chunk (bootstrap row included).

    ``rewards`` has a reward per row (RLlib's sum over the decision), ``infos`` the
    info of every observation (one more than rows). Without stamps (an env not
    built by hmarl) every decision counts as one step.
    """
    rows = len(rewards)
    returns = np.asarray(rewards, dtype=np.float64)
    discounts = np.full(rows, gamma, dtype=np.float64)
    if not smdp:
        return returns, discounts
    stamps = [info.get(STAMP) if isinstance(info, dict) else None for info in infos]
    # The last row is the bootstrap row (RLlib's AddOneTsToEpisodesAndTruncate repeats
    # the last observation): its discount multiplies nothing.
    for t in range(rows - 1):
        if stamps[t] is None or t + 1 >= len(stamps) or stamps[t + 1] is None:
            continue
        steps = stamps[t + 1] - stamps[t]
        discounts[t] = gamma**steps
        if steps == 0:  # a decision that took no world time: its rewards, undiscounted
            continue
        within = infos[t + 1].get(OPTION_REWARDS)
        if within is not None and len(within) == steps:
            returns[t] = float(np.dot(within, gamma ** np.arange(steps)))
        else:  # every reward of the decision came on its last step
            returns[t] = gamma ** (steps - 1) * returns[t]
    return returns, discounts


def episodes_of_module(piece: ConnectorV2, episodes: list, module_id: str) -> list:
    """The single-agent episodes whose rows make up ``module_id``'s batch, in batch order.

    The same filter and order RLlib's GAE piece (2.60.0) uses to find its episode
    lengths: each multi-agent episode's agents in turn, whether they stepped last or not.
    """
    return [
        episode
        for episode in piece.single_agent_episode_iterator(episodes, agents_that_stepped_only=False)
        if episode.module_id in (None, module_id)
    ]


def _end(infos: list[dict], rows: int) -> str | None:
    """How the env said an agent's chunk ended: the stamp on its final observation."""
    if rows < 2 or len(infos) < rows:
        return None
    final = infos[rows - 1]  # the observation after the last real row
    return final.get(END) if isinstance(final, dict) else None


def _fix_end_flags(
    batch: dict[str, Any], lengths: list[int], ends: list[str | None], padding: Padding | None
) -> None:
    """Set the last real row of each chunk terminated or truncated as the env said.

    (RLlib flags time-limit-truncated agents terminated too: see hmarl.task_env.)
    """
    rows = _rows_of(padding)
    terminateds = rows(batch[Columns.TERMINATEDS]).copy()
    truncateds = rows(batch[Columns.TRUNCATEDS]).copy()
    start = 0
    for length, end in zip(lengths, ends, strict=True):
        if end is not None:
            terminateds[start + length - 2] = end == "terminated"
            truncateds[start + length - 2] = end == "truncated"
        start += length
    device = values_device(batch)
    batch[Columns.TERMINATEDS] = torch.as_tensor(_column_of(padding, terminateds), device=device)
    batch[Columns.TRUNCATEDS] = torch.as_tensor(_column_of(padding, truncateds), device=device)


class SMDPAdvantageEstimation(ConnectorV2):
    """Learner connector piece: SMDP advantages and value targets (see the module).

    Takes the place of RLlib's ``GeneralAdvantageEstimation`` at the end of the
    learner pipeline, on the same batch: RLlib's pieces before it have laid out the
    rows and added the bootstrap rows, loss mask and flags.
    """

    def __init__(
        self,
        input_observation_space: Any = None,
        input_action_space: Any = None,
        *,
        config: Any,
        smdp: bool,
    ) -> None:
        super().__init__(input_observation_space, input_action_space)
        self.config, self.smdp = config, smdp

    @override(ConnectorV2)
    def __call__(
        self, *, rl_module: Any, episodes: list, batch: dict[str, Any], **kwargs: Any
    ) -> Any:
        for module_id, module_batch in batch.items():
            module = rl_module[module_id]
            if not isinstance(module, ValueFunctionAPI):
                continue
            # Each policy's own gamma and lambda (RLlib's per-module overrides; RLlib's
            # GAE piece takes the run's for every module).
            settings = self.config.get_config_for_module(module_id)
            returns, discounts, ends = [], [], []
            for episode in episodes_of_module(self, episodes, module_id):
                infos = list(episode.get_infos())
                r, d = decision_rows(list(episode.get_rewards()), infos, settings.gamma, self.smdp)
                returns.append(r)
                discounts.append(d)
                ends.append(_end(infos, len(r)))
            returns = np.concatenate(returns)
            padding = Padding.of(module_batch)
            rows = len(module_batch[Columns.REWARDS]) if padding is None else padding.rows
            if len(returns) != rows:
                raise ValueError(
                    f"{module_id}: {len(returns)} rows from the episodes but {rows} in the batch"
                )
            _fix_end_flags(module_batch, [len(r) for r in discounts], ends, padding)
            device = values_device(module_batch)
            module_batch[Columns.REWARDS] = torch.as_tensor(
                _column_of(padding, returns), dtype=torch.float32, device=device
            )
            module_batch[DISCOUNTS] = torch.as_tensor(
                _column_of(padding, np.concatenate(discounts)), dtype=torch.float32, device=device
            )
            add_advantages(module, module_batch, settings.lambda_)
        return batch

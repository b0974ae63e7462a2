"""Memory: a stateful module's rows as the learner takes them, sequences of its agents' own steps.

A module with memory (RLlib's default module with ``use_lstm``, or any module whose
``get_initial_state`` is not empty) carries a state from one of its agent's decisions to
the next. The state advances only when the agent acts: while it waits (a high level
during its option) its state is held, and it starts from the module's initial state at
the start of the agent's episode.

The learner sees each agent's decisions in its own time, as RLlib 2.60's learner
connectors lay them out for a stateful module (``AddTimeDimToBatchAndZeroPad`` and
``AddStatesFromEpisodesToBatch``, read in ``ray/rllib/connectors/common/``): an agent's
rows of one sample (its decisions in order, then its bootstrap row) are cut into chunks
of at most ``max_seq_len`` rows, each right-padded with zeros to ``max_seq_len``; every
column becomes (sequences, max_seq_len, ...), ``Columns.SEQ_LENS`` holds each chunk's
real rows, the loss mask is false on padding, and ``Columns.STATE_IN`` holds one state
per chunk: the state the agent had before the chunk's first row (its state after its
previous decision, also across a cut between samples, or the initial state).

:class:`Padding` goes from that layout to plain rows and back (the advantages are
computed on rows, per agent, as RLlib's GAE unpads and pads again); :func:`to_sequences`
builds the layout from rows that carry their own state, as hmarl's batched sampler
keeps them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import tree
from ray.rllib.core.columns import Columns

MAX_SEQ_LEN = "max_seq_len"
"""The ``model_config`` key RLlib's connectors read a stateful module's chunk length from."""


def max_seq_len(module: Any, policy: str) -> int:
    """A stateful module's chunk length, from its ``model_config`` (a clear error without it)."""
    value = (module.model_config or {}).get(MAX_SEQ_LEN)  # a dict in every built module
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(
            f"policy {policy}: its module has memory (get_initial_state is not empty) but "
            f"no whole max_seq_len in its model_config (got {value!r}); declare one, or set "
            "the task's ppo setting max_seq_len or --max-seq-len"
        )
    return value


@dataclass(frozen=True)
class Padding:
    """Where the real rows lie in a batch of padded sequences (see the module docstring)."""

    valid: np.ndarray
    """(sequences, max_seq_len) bools: true at real rows, false at padding."""

    @classmethod
    def of(cls, batch: Mapping[str, Any]) -> Padding | None:
        """The padding of a module's batch; None for a batch of plain rows (no memory)."""
        if Columns.SEQ_LENS not in batch:
            return None
        lengths = _numpy(batch[Columns.SEQ_LENS]).astype(np.int64)
        width = _width(batch, len(lengths))
        return cls(np.arange(width)[None, :] < lengths[:, None])

    @property
    def rows(self) -> int:
        return int(self.valid.sum())

    def unpad(self, column: Any) -> np.ndarray:
        """A padded column (sequences, max_seq_len, ...) as its real rows, in order."""
        return _numpy(column)[self.valid]

    def pad(self, rows: np.ndarray) -> np.ndarray:
        """Rows (one per real row, in order) as a padded column; padding is zero."""
        rows = np.asarray(rows)
        padded = np.zeros(self.valid.shape + rows.shape[1:], dtype=rows.dtype)
        padded[self.valid] = rows
        return padded


def chunk_starts(ends: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The first row and length of each chunk, for runs of rows that end at ``ends``.

    ``ends`` holds the index of each run's last row (its bootstrap row), in order; the
    runs fill the rows before them. Each run is cut into chunks of at most ``width``.
    """
    starts, lengths, begin = [], [], 0
    for end in ends:
        for first in range(begin, end + 1, width):
            starts.append(first)
            lengths.append(min(width, end + 1 - first))
        begin = end + 1
    return np.asarray(starts, dtype=np.int64), np.asarray(lengths, dtype=np.int32)


def to_sequences(batch: dict[str, Any], width: int) -> dict[str, Any]:
    """Rows of one policy (each agent's run closed by its bootstrap row, the loss mask false
    there) as padded sequences of at most ``width`` rows.

    Every row carries ``Columns.STATE_IN``, the state before it; each sequence keeps its
    first row's.
    """
    ends = np.flatnonzero(~np.asarray(batch[Columns.LOSS_MASK], dtype=bool))
    starts, lengths = chunk_starts(ends, width)
    padding = Padding(np.arange(width)[None, :] < lengths[:, None])
    sequences = {
        key: tree.map_structure(padding.pad, column)
        for key, column in batch.items()
        if key != Columns.STATE_IN
    }
    sequences[Columns.STATE_IN] = tree.map_structure(
        lambda state: state[starts], batch[Columns.STATE_IN]
    )
    sequences[Columns.SEQ_LENS] = lengths
    return sequences


def _width(batch: Mapping[str, Any], sequences: int) -> int:
    """The padded length of a batch's sequences, read off a column shaped (sequences, T)."""
    for key in (Columns.LOSS_MASK, Columns.REWARDS, Columns.TERMINATEDS):
        if key in batch:
            shape = tuple(batch[key].shape)
            if len(shape) >= 2 and shape[0] == sequences:
                return shape[1]
    raise ValueError("a batch with seq_lens but no (sequences, max_seq_len) column")


def _numpy(column: Any) -> np.ndarray:
    if hasattr(column, "detach"):
        return column.detach().cpu().numpy()
    return np.asarray(column)

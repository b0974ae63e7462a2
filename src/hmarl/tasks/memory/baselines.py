"""A hand-written policy with perfect recall: the ceiling of the memory task.

It follows hmarl's protocol for a policy with memory (:class:`hmarl.task.Policy`):
``remembers = True``, ``act`` takes each row's agent key, and ``bind`` forgets every
agent before new episodes.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from hmarl.tasks.memory.config import HIGH_LEVEL_POLICY, MemoryConfig


class RecallPolicy:
    """The high level remembers the cue of its first decision and names it at every
    decision (the last is the one that counts); the low level repeats the option."""

    remembers = True

    def __init__(self, config: MemoryConfig) -> None:
        self.cues = config.cues
        self.seen: dict[Hashable, int] = {}
        """The cue each high-level agent saw at its first decision."""

    def bind(self, env: Any) -> None:
        self.seen.clear()

    def act(
        self, policy_id: str, obs: np.ndarray, agents: Sequence[Hashable] | None = None
    ) -> np.ndarray:
        choices = np.argmax(obs[:, : self.cues], axis=1)
        if policy_id != HIGH_LEVEL_POLICY:
            return choices
        if agents is None:
            raise ValueError("RecallPolicy remembers each agent's cue: act needs agents=")
        for agent, row, choice in zip(agents, obs, choices, strict=True):
            if row[: self.cues].any():  # the first decision: the cue is shown
                self.seen[agent] = int(choice)
        return np.array([self.seen[agent] for agent in agents], dtype=np.int64)

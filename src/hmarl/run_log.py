"""Result logs for runs without Tune, in Tune's formats, so every tool reads both alike.

Tune writes ``result.json`` (one JSON line per iteration) and TensorBoard event
files into each trial folder. ``hmarl train --no-tune`` writes the same two into
its run folder through this class.
"""

from __future__ import annotations

import json
import math
import numbers
from pathlib import Path
from typing import Any

from tensorboardX import SummaryWriter


def flatten(result: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a nested result, keyed by their '/'-joined path."""
    flat: dict[str, float] = {}
    for key, value in result.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            flat |= flatten(value, f"{path}/")
        elif isinstance(value, numbers.Number) and not isinstance(value, bool):
            flat[path] = float(value)
    return flat


class RunLog:
    """Append each iteration's result to ``result.json`` and TensorBoard."""

    def __init__(self, folder: Path) -> None:
        self._json = open(Path(folder) / "result.json", "a")  # noqa: SIM115 (kept open)
        self._tensorboard = SummaryWriter(str(folder), flush_secs=10)

    def write(self, result: dict[str, Any]) -> None:
        plain = {k: v for k, v in result.items() if k != "config"}
        self._json.write(json.dumps(plain, default=str) + "\n")
        self._json.flush()
        step = int(result.get("num_env_steps_sampled_lifetime", result["training_iteration"]))
        for tag, value in flatten(plain).items():
            if math.isfinite(value):  # NaN marks "no episode finished yet"; skip it
                # The same tags as Tune's TensorBoard logger.
                self._tensorboard.add_scalar(f"ray/tune/{tag}", value, global_step=step)

    def close(self) -> None:
        self._json.close()
        self._tensorboard.close()

"""Finding checkpoints and loading their policies for inference, without an Algorithm.

An RLlib algorithm checkpoint keeps each RL module in its own folder
(``learner_group/learner/rl_module/<module id>``), so acting needs neither a Ray
cluster nor the training config: :func:`load_policy` builds the two modules from
those folders and wraps them as a :class:`~hmarl.baselines.Policy` that acts
greedily on single or batched observations.

Security: RLlib checkpoints contain pickled Python objects. Loading one runs
code from it; load only checkpoints you trust.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from ray.rllib.utils.numpy import flatten_inputs_to_1d_tensor

from hmarl.algorithm import HIGH_LEVEL_POLICY, LOW_LEVEL_POLICY

MODULES_DIR = Path("learner_group", "learner", "rl_module")


class CheckpointError(ValueError):
    """The path given is not a usable hmarl checkpoint; the message says why."""


def find_checkpoints(folder: Path) -> list[Path]:
    """Every algorithm checkpoint under ``folder`` (Tune's or ours), oldest first."""
    marks = Path(folder).rglob("rllib_checkpoint.json")
    marks = [m for m in marks if m.parent.name.startswith("checkpoint_")]
    return [m.parent for m in sorted(marks, key=lambda m: m.stat().st_mtime)]


def resolve_checkpoint(path: Path) -> list[Path]:
    """The checkpoints a path names, best first: itself, or a run's from newest to oldest."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path} does not exist")
    if not path.is_dir():
        raise CheckpointError(f"{path} is not a folder; give a checkpoint or run folder")
    if (path / "rllib_checkpoint.json").exists():
        return [path]
    found = find_checkpoints(path)
    if not found:
        raise CheckpointError(f"{path} holds no RLlib checkpoint")
    return found[::-1]


def load_modules(checkpoint: Path) -> dict[str, torch.nn.Module]:
    """The high- and low-level RL modules of one checkpoint folder."""
    from ray.rllib.core.rl_module.rl_module import RLModule

    modules = {}
    for module_id in (HIGH_LEVEL_POLICY, LOW_LEVEL_POLICY):
        folder = checkpoint / MODULES_DIR / module_id
        if not folder.is_dir():
            raise CheckpointError(
                f"{checkpoint} is not an hmarl checkpoint: it has no {module_id} module"
            )
        try:
            module = RLModule.from_checkpoint(str(folder.resolve()))
        except Exception as err:  # a corrupt file can fail in many ways; all mean the same
            raise CheckpointError(
                f"{checkpoint}: cannot load {module_id} ({type(err).__name__}: {err})"
            ) from None
        module.eval()
        modules[module_id] = module
    return modules


class TrainedPolicy:
    """Greedy actions from trained modules, on observations with any leading dimensions."""

    def __init__(self, modules: dict[str, torch.nn.Module], checkpoint: Path | None = None):
        self.modules = modules
        self.checkpoint = checkpoint

    def _act(self, module_id: str, obs: dict[str, np.ndarray]) -> np.ndarray:
        module = self.modules[module_id]
        lead = obs["robot_position"].shape[:-1]
        rows = {
            k: np.ascontiguousarray(v, dtype=np.float32).reshape(-1, *v.shape[len(lead) :])
            for k, v in obs.items()
        }
        if isinstance(module.observation_space, gym.spaces.Dict):
            batch = {k: torch.from_numpy(v) for k, v in rows.items()}
        else:
            # RLlib's default modules were trained behind its FlattenObservations
            # connector; this is the function that connector applies.
            batch = torch.from_numpy(flatten_inputs_to_1d_tensor(rows, batch_axis=True))
        with torch.no_grad():
            logits = module.forward_inference({"obs": batch})["action_dist_inputs"]
        return logits.argmax(-1).numpy().reshape(lead)

    def high(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return self._act(HIGH_LEVEL_POLICY, obs)

    def low(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return self._act(LOW_LEVEL_POLICY, obs)


def load_policy(path: Path) -> TrainedPolicy:
    """The newest loadable checkpoint that ``path`` names, as a greedy policy.

    A run folder may end in a checkpoint that an interruption left unreadable;
    then the one before it is used (and ``policy.checkpoint`` says which).
    """
    candidates = resolve_checkpoint(path)
    errors = []
    for checkpoint in candidates:
        try:
            return TrainedPolicy(load_modules(checkpoint), checkpoint)
        except CheckpointError as err:
            errors.append(str(err))
    raise CheckpointError(errors[0] if len(errors) == 1 else "; ".join(errors[:3]))

"""Weights-only policy folders: a trained policy to share, loaded without unpickling anything.

An RLlib checkpoint holds pickled Python objects, and loading one runs code from it.
``hmarl export RUN --out FOLDER`` (:func:`export`) writes a folder of data only:

- ``hmarl_policy.json``, the description: the hmarl version, the task (its name, the
  ``--task`` value that loads it, its env config) and, per policy id, the module
  (``module.qualname``, its ``model_config`` and spaces), the env's observation space
  (spaces in :mod:`hmarl.space_codec`'s JSON), every weight's name and shape, and the
  SHA-256 of each of the policy's files;
- ``<policy>.safetensors``: the module's weights, the part that acts (no value head
  where RLlib's module can drop it);
- ``<policy>.onnx`` with ``--format onnx``: the greedy action as an ONNX graph (see
  :mod:`hmarl.onnx_policy`), described by ``onnx_inputs`` and ``onnx_output`` (and for
  a module with memory ``onnx_state``: each state input, the output that gives its next
  value, its shape and its initial value).

:func:`load_export` (and so ``hmarl evaluate``, ``watch`` and ``inspect``, through
:func:`hmarl.runs.load_trained`) builds each module from the description and loads
its weights strictly. It never unpickles, and never imports what the file names: the
module class must be one of an allow-list, RLlib's default PPO module and the module
classes the task itself declares (the task is code the user installed; the file is
not), and the task is found by its registered name (a task given as
``module:attribute`` needs ``--task``, as importing a module a file names runs code).
Anything that does not fit, a changed, truncated or mis-shaped weights file
included, is a one-line :class:`ExportError`.

An export is written whole or not at all: into a hidden folder beside ``--out``,
loaded back and checked (the same greedy actions as the checkpoint's modules, and as
the ONNX graphs) and only then renamed; an existing non-empty folder is never
overwritten.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import re
import shutil
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hmarl.checkpoints import CheckpointError
from hmarl.global_state import STATE_SPACE_KEY
from hmarl.masked_module import MaskedModule, qualname
from hmarl.registry import load_task
from hmarl.runs import RunRecord, Trained, find_run, load_trained
from hmarl.space_codec import SpaceCodecError, decode_space, encode_space
from hmarl.task import Task, TaskError

DESCRIPTION_FILE = "hmarl_policy.json"
FORMAT = "hmarl-policy"
FORMAT_VERSION = 1
FORMATS = ("safetensors", "onnx")
"""What an export can hold; the weights are always written, the ONNX graphs on request."""
CHECK_ROWS = 64
"""Random observations per policy on which an export is checked before it is kept."""

_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class ExportError(CheckpointError):
    """An export cannot be written, or a folder is not a usable export; the message says why."""


def is_export(path: Path) -> bool:
    """Is ``path`` an export folder (it holds a description)?"""
    return (Path(path) / DESCRIPTION_FILE).is_file()


def parse_formats(values: Iterable[str]) -> tuple[str, ...]:
    """``--format`` values (repeated or comma-separated) as formats; the weights always."""
    given = [part.strip() for value in values for part in value.split(",") if part.strip()]
    unknown = sorted(set(given) - set(FORMATS))
    if unknown:
        raise ExportError(
            f"unknown export format {', '.join(unknown)}; formats are {', '.join(FORMATS)}"
        )
    return tuple(f for f in FORMATS if f == "safetensors" or f in given)


# -- the description ------------------------------------------------------------------


@dataclass(frozen=True)
class Description:
    """An export's ``hmarl_policy.json``: what it was trained on, and each policy."""

    record: RunRecord
    """The task, its ``--task`` reference and env config, the hmarl version."""
    policies: dict[str, dict[str, Any]]
    """Per policy id: module, observation_space, parameters, files (and onnx_*)."""

    def to_json(self) -> str:
        data = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            # A run's stop is no business of a policy's.
            **{k: v for k, v in dataclasses.asdict(self.record).items() if k != "stop"},
            "policies": self.policies,
        }
        # Strict JSON (no NaN/Infinity literals): other languages read it too.
        try:
            return json.dumps(data, indent=2, allow_nan=False) + "\n"
        except (TypeError, ValueError) as err:
            raise ExportError(f"the description is not strict JSON ({err})") from None

    @classmethod
    def read(cls, folder: Path) -> Description:
        """The description of an export folder (:class:`ExportError` if it is none)."""
        path = Path(folder) / DESCRIPTION_FILE
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise ExportError(f"{path} is not readable JSON ({err})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ExportError(f"{path} is not an hmarl policy description")
        if data.get("format_version") != FORMAT_VERSION:
            raise ExportError(
                f"{path} has format version {data.get('format_version')!r}; this hmarl reads "
                f"version {FORMAT_VERSION}"
            )
        if not isinstance(data.get("policies"), dict) or not all(
            isinstance(entry, dict) for entry in data["policies"].values()
        ):
            raise ExportError(f"{path}: 'policies' must map each policy id to an object")
        return cls(RunRecord.from_dict(data, path), data["policies"])

    def load_task(self, folder: Path) -> Task:
        """The task, by its registered name only: never a module the file names."""
        if ":" in self.record.task_ref:
            raise ExportError(
                f"{folder} names its task as module:attribute ({self.record.task_ref}); hmarl "
                f"does not import a module a policy file names: give --task "
                f"{self.record.task_ref} if you trust that module"
            )
        return self.record.load_task()


# -- writing ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Exported:
    """What :func:`export` wrote."""

    folder: Path
    source: Path
    """The checkpoint (or export) the policies came from."""
    files: tuple[str, ...]
    """The files in ``folder``, the description last."""
    skipped: list[str] = dataclasses.field(default_factory=list)
    """Newer checkpoints of the run that were not used, each with why (incomplete)."""


def export(
    path: Path,
    out: Path,
    formats: Iterable[str] = ("safetensors",),
    task_ref: str | None = None,
) -> Exported:
    """Write the newest loadable policy that ``path`` names as an export folder ``out``.

    ``path`` is what ``hmarl evaluate`` takes: a run, trial or checkpoint folder (or
    an export). ``task_ref`` (a ``--task`` value) is needed only for a checkpoint
    outside any run folder.
    """
    formats = parse_formats(formats)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"{out} already exists; an export never overwrites, choose a new --out")
    given = load_task(task_ref) if task_ref else None
    trained = load_trained(Path(path), task=given)
    task_ref = task_ref or _task_ref(trained.source)
    # Hidden, beside the export, so the rename at the end is within one file system.
    tmp = out.with_name(f".{out.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        files = _write(tmp, trained, task_ref, formats)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Exported(out, trained.source, files, trained.skipped)


def _task_ref(source: Path) -> str:
    """The ``--task`` value recorded for a checkpoint (by its run) or an export."""
    if is_export(source):
        return Description.read(source).record.task_ref
    run = find_run(source)  # there is one: without it, load_trained asked for --task
    return run[1].task_ref


def _write(
    folder: Path, trained: Trained, task_ref: str, formats: tuple[str, ...]
) -> tuple[str, ...]:
    """Every file of an export into ``folder``, checked by loading it back."""
    import hmarl

    task, policy = trained.task, trained.policy
    allowed = allowed_modules(task)
    policies = {
        policy_id: _write_policy(
            folder, policy_id, module, policy.observation_spaces[policy_id], allowed
        )
        for policy_id, module in policy.modules.items()
    }
    record = RunRecord(task.name, task_ref, dict(trained.env_config), hmarl.__version__)
    description = Description(record, policies)
    (folder / DESCRIPTION_FILE).write_text(description.to_json())

    loaded = load_export(folder, task=task).policy
    observations = random_observations(policy.observation_spaces, seed=0)
    for policy_id, obs in observations.items():
        if not _act_alike(loaded, policy, policy_id, obs):
            raise ExportError(f"policy {policy_id}: the export does not act as the checkpoint")
    if "onnx" in formats:
        for policy_id, obs in observations.items():
            _write_onnx(folder, loaded, policy_id, obs, policies[policy_id])
        (folder / DESCRIPTION_FILE).write_text(description.to_json())
    names = [name for entry in policies.values() for name in entry["files"]]
    return (*names, DESCRIPTION_FILE)


def _act_alike(loaded: Any, policy: Any, policy_id: str, obs: Any) -> bool:
    """Do two module policies take the same greedy actions on a batch of observations?

    A module with memory acts twice, its rows as new agents, the second time on the
    rows in reverse order from the states the first left.
    """
    import tree

    if policy_id not in policy.stateful:
        return np.array_equal(loaded.act(policy_id, obs), policy.act(policy_id, obs))
    agents = list(range(CHECK_ROWS))
    for acting in (loaded, policy):
        acting.reset()
    for order in (agents, agents[::-1]):
        rows = tree.map_structure(lambda leaf, order=order: leaf[order], obs)
        a = loaded.act(policy_id, rows, agents=order)
        if not np.array_equal(a, policy.act(policy_id, rows, agents=order)):
            return False
    return True


def _write_policy(
    folder: Path,
    policy_id: str,
    module: Any,
    observation_space: Any,
    allowed: Mapping[str, type],
) -> dict[str, Any]:
    """One policy's weights file and its description entry (``observation_space``: the env's)."""
    import safetensors.torch

    if not _FILE_NAME.match(policy_id):
        raise ExportError(f"policy id {policy_id!r} cannot name a file; export needs a plain name")
    kind = type(module)
    if allowed.get(qualname(kind)) is not kind:
        raise ExportError(
            f"policy {policy_id}: its module {qualname(kind)} is neither RLlib's default PPO "
            "module nor one the task declares, so an export could not rebuild it"
        )
    model_config = acting_config(module.model_config)
    try:
        json.dumps(model_config, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ExportError(f"policy {policy_id}: its model_config is not JSON ({err})") from None
    entry = {
        "module": {
            "qualname": qualname(kind),
            "model_config": model_config,
            "observation_space": _encode(policy_id, module.observation_space),
            "action_space": _encode(policy_id, module.action_space),
        },
        "observation_space": _encode(policy_id, observation_space),
    }
    # The weights the rebuilt (inference-only) module has: RLlib's default module
    # and hmarl's central critic drop their value functions there; a task's module
    # keeps what it builds when inference-only.
    needed = build_module(policy_id, entry, allowed).state_dict()
    state = module.state_dict()
    missing = sorted(set(needed) - set(state))
    if missing:
        raise ExportError(f"policy {policy_id}: the checkpoint's module has no {missing[0]}")
    weights = {name: state[name].detach().clone().contiguous() for name in needed}
    data = safetensors.torch.save(weights)
    name = f"{policy_id}.safetensors"
    (folder / name).write_bytes(data)
    entry["parameters"] = {key: list(tensor.shape) for key, tensor in weights.items()}
    entry["files"] = {name: _sha256(data)}
    return entry


def _write_onnx(folder: Path, policy: Any, policy_id: str, obs: Any, entry: dict[str, Any]) -> None:
    """One policy's ONNX graph, checked against torch, added to its description entry."""
    from hmarl.onnx_policy import check_onnx, write_onnx

    name = f"{policy_id}.onnx"
    try:
        signature = write_onnx(policy, policy_id, obs, folder / name)
        data = (folder / name).read_bytes()
        check_onnx(data, policy, policy_id, obs)
    except AssertionError as err:
        raise ExportError(f"ONNX self-check failed: {err}") from None
    except Exception as err:  # torch.export fails in many ways; all mean the same here
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise ExportError(
            f"policy {policy_id}: torch cannot export its module to ONNX "
            f"({type(err).__name__}: {first})"
        ) from None
    entry["onnx_inputs"] = signature["inputs"]
    entry["onnx_output"] = signature["output"]
    if "state" in signature:  # a module with memory: its state's inputs, outputs, start
        entry["onnx_state"] = signature["state"]
    entry["files"][name] = _sha256(data)


# -- loading ----------------------------------------------------------------------------


def load_export(
    folder: Path, env_overrides: Mapping[str, Any] | None = None, task: Task | None = None
) -> Trained:
    """The policy an export folder holds, on the env it was trained on (with overrides).

    ``task`` is needed only when the export names its task as ``module:attribute``.
    """
    from hmarl.policies import ModulePolicy
    from hmarl.task_env import make_task_env

    folder = Path(folder)
    description = Description.read(folder)
    record = description.record
    task = task or description.load_task(folder)
    if task.name != record.task:
        raise TaskError(f"{folder} was trained on task {record.task}, not {task.name}")
    env_config = task.env_config_dict({**record.env_config, **(env_overrides or {})})
    spaces = task.policy_spaces(make_task_env(task, env_config))
    missing = sorted(set(spaces) - set(description.policies))
    if missing:
        raise ExportError(f"{folder} has no policy {', '.join(missing)}")
    allowed = allowed_modules(task)
    modules = {
        policy_id: load_module(folder, policy_id, description.policies[policy_id], allowed)
        for policy_id in spaces
    }
    observation_spaces = {policy_id: pair[0] for policy_id, pair in spaces.items()}
    return Trained(ModulePolicy(modules, observation_spaces, folder), task, env_config, folder)


def acting_config(model_config: Any) -> dict[str, Any]:
    """A module's ``model_config`` as an export describes it: a plain dict, without the
    global state's space (a centralised critic's; acting never reads the state), the
    wrapped module's too."""
    if dataclasses.is_dataclass(model_config):  # RLlib's DefaultModelConfig
        model_config = dataclasses.asdict(model_config)
    config = {k: v for k, v in (model_config or {}).items() if k != STATE_SPACE_KEY}
    if isinstance(config.get("model_config"), Mapping):  # a MaskedModule's wrapped module
        config["model_config"] = acting_config(config["model_config"])
    return config


def allowed_modules(task: Task) -> dict[str, type]:
    """The module classes an export may name: RLlib's default PPO module, hmarl's own
    (a centralised critic's, the action-mask wrapper) and the task's."""
    from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import (
        DefaultPPOTorchRLModule,
    )

    from hmarl.central_critic import CentralCriticModule

    declared = [spec.module_class for spec in task.module_specs().values()]
    classes = [
        DefaultPPOTorchRLModule,
        CentralCriticModule,
        MaskedModule,
        *(c for c in declared if c is not None),
    ]
    return {qualname(c): c for c in classes}


def build_module(policy_id: str, entry: Mapping[str, Any], allowed: Mapping[str, type]) -> Any:
    """A fresh inference-only module as a description entry declares it (no weights yet)."""
    module = _field(policy_id, entry, "module", dict)
    name = _field(policy_id, module, "qualname", str)
    kind = allowed.get(name)
    if kind is None:
        raise ExportError(
            f"policy {policy_id}: module class {name!r} is not one hmarl builds "
            f"(allowed: {', '.join(sorted(allowed))})"
        )
    spaces = {}
    for key in ("observation_space", "action_space"):
        try:
            spaces[key] = decode_space(module.get(key))
        except SpaceCodecError as err:
            raise ExportError(f"policy {policy_id}: module.{key}: {err}") from None
    model_config = _field(policy_id, module, "model_config", dict)
    if kind is MaskedModule:
        # It imports the module it wraps by name: only a class on the same allow-list.
        inner = model_config.get("module")
        if inner not in allowed or allowed[inner] is MaskedModule:
            raise ExportError(
                f"policy {policy_id}: the masked module wraps {inner!r}, not one hmarl builds "
                f"(allowed: {', '.join(sorted(allowed))})"
            )
    try:
        # RLModuleSpec.build hands modules their model_config as a plain dict too
        # (DefaultModelConfig goes through dataclasses.asdict), so this is how
        # RLlib itself builds them.
        return kind(**spaces, inference_only=True, model_config=model_config)
    except Exception as err:  # the module's own setup refusing the description
        raise ExportError(
            f"policy {policy_id}: {name} cannot be built from the description "
            f"({type(err).__name__}: {err})"
        ) from None


def load_module(
    folder: Path, policy_id: str, entry: Mapping[str, Any], allowed: Mapping[str, type]
) -> Any:
    """One policy's module: built from its entry, its weights checked and loaded strictly."""
    module = build_module(policy_id, entry, allowed)
    weights = _read_weights(Path(folder), policy_id, entry)
    described = _field(policy_id, entry, "parameters", dict)
    for name, tensor in weights.items():
        if described.get(name) != list(tensor.shape):
            raise ExportError(
                f"policy {policy_id}: weight {name} has shape {tuple(tensor.shape)} in the "
                f"file, the description says {_shape(described.get(name))}"
            )
    expected = module.state_dict()
    for name, tensor in expected.items():
        if name not in weights:
            raise ExportError(f"policy {policy_id}: the file has no weight {name}")
        if weights[name].shape != tensor.shape:
            raise ExportError(
                f"policy {policy_id}: weight {name} has shape {tuple(weights[name].shape)} in "
                f"the file, the module expects {tuple(tensor.shape)}"
            )
    unexpected = [name for name in weights if name not in expected]
    if unexpected:
        raise ExportError(f"policy {policy_id}: the module has no weight {unexpected[0]}")
    module.load_state_dict(weights, strict=True)
    module.eval()
    return module


def _read_weights(folder: Path, policy_id: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    """The weights file's tensors, once it parses and matches its recorded SHA-256."""
    import safetensors.torch

    name = f"{policy_id}.safetensors"
    path = folder / name
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ExportError(f"policy {policy_id}: cannot read {path} ({err.strerror})") from None
    try:
        weights = safetensors.torch.load(data)
    except Exception as err:  # safetensors' own error type, for any malformed file
        detail = " ".join(str(err).split())
        raise ExportError(
            f"policy {policy_id}: {path} is truncated or corrupt ({detail})"
        ) from None
    recorded = _field(policy_id, entry, "files", dict).get(name)
    if recorded != _sha256(data):
        raise ExportError(
            f"policy {policy_id}: {path} does not match the SHA-256 in {DESCRIPTION_FILE} "
            "(the file changed after export)"
        )
    return weights


def random_observations(spaces: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """A batch of :data:`CHECK_ROWS` observations sampled from each policy's space."""
    from hmarl.evaluation import stack

    batches = {}
    for offset, (policy_id, space) in enumerate(sorted(spaces.items())):
        space = copy.deepcopy(space)  # the env's space objects stay unseeded
        space.seed(seed + offset)
        batches[policy_id] = stack(space, [space.sample() for _ in range(CHECK_ROWS)])
    return batches


def _encode(policy_id: str, space: Any) -> dict[str, Any]:
    try:
        return encode_space(space)
    except SpaceCodecError as err:
        raise ExportError(f"policy {policy_id}: {err}") from None


def _field(policy_id: str, data: Mapping[str, Any], key: str, kind: type) -> Any:
    value = data.get(key)
    if not isinstance(value, kind):
        raise ExportError(
            f"policy {policy_id}: {DESCRIPTION_FILE} has no {key!r} {kind.__name__} for it"
        )
    return value


def _shape(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- acting in your own code ----------------------------------------------------------


@dataclass
class LoadedPolicy:
    """A trained policy from an export folder, to act in your own code (see :func:`load_policy`).

    ``act(policy_id, obs)`` takes a batch of observations of agents that share a
    policy (the policy's observation space with a leading batch axis: a dict of
    arrays for a Dict space) and returns one action per row; :meth:`actions` takes
    an env's observations by agent id.

    A policy with memory (``remembers``) keeps each agent's state between its
    decisions: :meth:`actions` by agent id, ``act`` by the keys given as ``agents``;
    call :meth:`reset` before each new episode.
    """

    task: Task
    env_config: dict[str, Any]
    """The env the policy was trained on, as ``make_env`` takes it."""
    policy: Any
    """The :class:`hmarl.policies.ModulePolicy` that acts."""
    source: Path

    @property
    def policy_ids(self) -> list[str]:
        return list(self.policy.modules)

    @property
    def remembers(self) -> bool:
        """Whether some policy has memory (then ``act`` needs ``agents``)."""
        return self.policy.remembers

    def act(self, policy_id: str, obs: Any, agents: Sequence[Hashable] | None = None) -> np.ndarray:
        """One action per row of a batch of observations of ``policy_id``'s agents;
        ``agents``, a key per row naming the agent, for a policy with memory."""
        if policy_id not in self.policy.modules:
            raise KeyError(f"no policy {policy_id!r}; the export holds {self.policy_ids}")
        if self.remembers:
            return self.policy.act(policy_id, obs, agents=agents)
        return self.policy.act(policy_id, obs)

    def reset(self) -> None:
        """A new episode: every agent's memory starts afresh (nothing to do without memory)."""
        self.policy.reset()

    def actions(self, observations: Mapping[str, Any]) -> dict[str, Any]:
        """An action for each agent in ``observations`` (agent id -> one observation).

        Pass the agents due to act: an env's observations after ``reset`` or a step,
        without the final ones of agents that ended on it. Agents of one policy are
        batched into one forward pass.
        """
        from hmarl.evaluation import act_batched

        spaces = {
            policy_id: (space, self.policy.modules[policy_id].action_space)
            for policy_id, space in self.policy.observation_spaces.items()
        }
        found = act_batched(self.task, self.policy, spaces, list(observations.items()))
        return dict(zip(observations, found, strict=True))


def load_policy(
    folder: Path | str,
    task: Task | None = None,
    actions: str = "greedy",
    seed: int | None = None,
) -> LoadedPolicy:
    """The policy in an export folder (``hmarl export RUN --out FOLDER``), ready to act.

    Nothing is unpickled (see the module docstring). ``task`` is needed only when the
    export names its task as ``module:attribute``. ``actions="sampled"`` draws actions
    from the policy's distribution (as in training; ``seed`` makes them repeatable)
    instead of taking the most likely one::

        import hmarl

        policy = hmarl.load_policy("yard-policy")
        env = policy.task.make_env(policy.env_config)
        obs, _ = env.reset(seed=0)
        obs, *_ = env.step(policy.actions(obs))
    """
    from hmarl.task import ACTIONS

    if actions not in ACTIONS:
        raise ValueError(f"actions must be one of {', '.join(ACTIONS)}, got {actions!r}")
    trained = load_export(Path(folder), task=task)
    acting = trained.policy.sampling(seed) if actions == "sampled" else trained.policy
    return LoadedPolicy(trained.task, trained.env_config, acting, trained.source)

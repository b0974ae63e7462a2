"""A policy's greedy action as an ONNX graph, and the check that it acts as torch does.

``hmarl export --format onnx`` writes one graph per policy, from observation to
greedy action, to run without Python RL libraries (onnxruntime in any language).

Inputs: one per leaf of the observation the module takes, batch axis first and
dynamic. A Dict observation gives one input per key, in sorted key order, named by
the key (nested keys joined by ``.``, Tuple items by their index); a single array is
named ``obs``. RLlib's default modules take the observation flattened into one
vector by RLlib's ``flatten_inputs_to_1d_tensor`` (Dict keys sorted, Box values in
row-major order, Discrete values one-hot): their one input is that vector, and the
export's description says so. Output: ``action``, one greedy action per row.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hmarl.policies import ModulePolicy, greedy_action

OUTPUT = "action"
TIE = 1e-5
"""Logits this close are a tie: float rounding, not the graph, decides between them."""


def onnx_inputs(policy: ModulePolicy, policy_id: str, obs: Any) -> dict[str, np.ndarray]:
    """A batch of env observations as the ONNX graph's named inputs."""
    return {name: leaf.numpy() for name, leaf in _leaves(policy.module_input(policy_id, obs))}


def write_onnx(policy: ModulePolicy, policy_id: str, obs: Any, path: Path) -> dict[str, Any]:
    """Write the policy's greedy-action graph to ``path``; return its inputs and output.

    ``obs`` is an example batch of env observations (at least two rows, so the batch
    axis stays dynamic).
    """
    example = policy.module_input(policy_id, obs)
    leaves = _leaves(example)
    names = [name for name, _ in leaves]
    graph = _GreedyAction(policy.modules[policy_id], _template(example)).eval()
    batch = torch.export.Dim("batch")
    # The dynamo exporter (torch.export, needs onnxscript) keeps every input even when
    # the graph does not use it (the yard's low level ignores time_left); the legacy
    # TorchScript exporter drops such inputs, and feeding them by name then fails.
    with torch.no_grad(), _quiet():
        torch.onnx.export(
            graph,
            tuple(leaf for _, leaf in leaves),
            str(path),
            input_names=names,
            output_names=[OUTPUT],
            dynamo=True,
            dynamic_shapes=(tuple({0: batch} for _ in leaves),),
            external_data=False,
            verbose=False,
        )
        action = graph(*(leaf for _, leaf in leaves))
    layout = (
        "the observation flattened by RLlib's flatten_inputs_to_1d_tensor (Dict keys sorted, "
        "Box values row-major, Discrete values one-hot)"
        if policy.flattens(policy_id)
        else "as the env observes it"
    )
    return {
        "inputs": [
            {
                "name": name,
                "shape": [None, *leaf.shape[1:]],
                "dtype": _dtype(leaf),
                "layout": layout,
            }
            for name, leaf in leaves
        ],
        "output": {"name": OUTPUT, "shape": [None, *action.shape[1:]], "dtype": _dtype(action)},
    }


def check_onnx(graph: bytes, policy: ModulePolicy, policy_id: str, obs: Any) -> None:
    """Assert that the graph's actions are torch's on a batch of env observations.

    Discrete actions must be equal, except in rows where torch's own logits of the two
    actions tie to within :data:`TIE`; continuous actions close to 1e-5.
    """
    import onnxruntime
    from ray.rllib.core.columns import Columns

    session = onnxruntime.InferenceSession(graph, providers=["CPUExecutionProvider"])
    got = session.run([OUTPUT], onnx_inputs(policy, policy_id, obs))[0]
    want = policy.act(policy_id, obs)
    if got.shape != want.shape:
        raise AssertionError(
            f"{policy_id}: ONNX actions have shape {got.shape}, torch's {want.shape}"
        )
    if want.dtype.kind == "f":
        if not np.allclose(got, want, rtol=1e-4, atol=1e-5):
            raise AssertionError(f"{policy_id}: ONNX actions differ from torch's")
        return
    rows = np.flatnonzero((got != want).reshape(len(want), -1).any(axis=1))
    if not len(rows):
        return
    module = policy.modules[policy_id]
    with torch.no_grad():
        batch = {Columns.OBS: policy.module_input(policy_id, obs)}
        logits = module.forward_inference(batch)[Columns.ACTION_DIST_INPUTS].numpy()
    # Only a Discrete action indexes its logits; any other difference is a real one.
    ties = (
        got.ndim == 1
        and logits.ndim == 2
        and np.all(logits[rows, want[rows]] - logits[rows, got[rows]] <= TIE)
    )
    if not ties:
        raise AssertionError(
            f"{policy_id}: ONNX actions differ from torch's in {len(rows)} of {len(want)} rows"
        )


class _GreedyAction(torch.nn.Module):
    """The graph exported: leaves in, the module's greedy action out."""

    def __init__(self, module: torch.nn.Module, template: Any) -> None:
        super().__init__()
        self.module = module
        self.template = template

    def forward(self, *leaves: torch.Tensor) -> torch.Tensor:
        return greedy_action(self.module, _fill(self.template, iter(leaves)))


def _leaves(obs: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """(name, tensor) for each leaf of a module input, Dict keys in sorted order."""
    if isinstance(obs, Mapping):
        return [leaf for key in sorted(obs) for leaf in _leaves(obs[key], f"{prefix}{key}.")]
    if isinstance(obs, tuple):
        return [leaf for i, item in enumerate(obs) for leaf in _leaves(item, f"{prefix}{i}.")]
    return [(prefix[:-1] or "obs", obs)]


def _template(obs: Any) -> Any:
    """The structure of a module input, leaves left out."""
    if isinstance(obs, Mapping):
        return {key: _template(obs[key]) for key in sorted(obs)}
    if isinstance(obs, tuple):
        return tuple(_template(item) for item in obs)
    return None


def _fill(template: Any, leaves: Iterator[Any]) -> Any:
    """The structure ``template`` with its leaves taken in :func:`_leaves` order."""
    if isinstance(template, dict):
        return {key: _fill(value, leaves) for key, value in template.items()}
    if isinstance(template, tuple):
        return tuple(_fill(item, leaves) for item in template)
    return next(leaves)


def _dtype(tensor: Any) -> str:
    return str(tensor.dtype).removeprefix("torch.")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """torch.onnx reports each stage on stdout and warns freely; none of it is for the user."""
    loggers = [logging.getLogger(name) for name in ("torch", "onnxscript")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)

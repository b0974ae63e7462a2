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

A module with memory (:mod:`hmarl.sequences`) also takes each row's state and returns
the next: one input per leaf of its state (``state_in.<key>``, batch axis first) after
the observation's, and one output per leaf (``state_out.<key>``) after ``action``.
Feed an agent's ``state_out`` back as its ``state_in`` at its next decision, and the
initial state (in the description) at the start of its episode.
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

from hmarl.policies import ModulePolicy, forward, greedy_action, greedy_step

OUTPUT = "action"
STATE_IN, STATE_OUT = "state_in.", "state_out."
"""Name prefixes of a module with memory's state inputs and outputs."""
TIE = 1e-5
"""Logits this close are a tie: float rounding, not the graph, decides between them."""


def onnx_inputs(
    policy: ModulePolicy, policy_id: str, obs: Any, state: Any = None
) -> dict[str, np.ndarray]:
    """A batch of env observations (and for a module with memory each row's state) as the
    ONNX graph's named inputs."""
    inputs = {name: leaf.numpy() for name, leaf in _leaves(policy.module_input(policy_id, obs))}
    if state is not None:
        inputs |= {name: leaf.numpy() for name, leaf in _leaves(state, STATE_IN)}
    return inputs


def initial_states(module: Any, rows: int) -> Any:
    """A module with memory's initial state, for ``rows`` rows (a batch axis first)."""
    import tree

    return tree.map_structure(
        lambda leaf: torch.as_tensor(leaf)[None].repeat(rows, *([1] * np.ndim(leaf))),
        module.get_initial_state(),
    )


def write_onnx(policy: ModulePolicy, policy_id: str, obs: Any, path: Path) -> dict[str, Any]:
    """Write the policy's greedy-action graph to ``path``; return its inputs and outputs.

    ``obs`` is an example batch of env observations (at least two rows, so the batch
    axis stays dynamic).
    """
    module = policy.modules[policy_id]
    example = policy.module_input(policy_id, obs)
    leaves = _leaves(example)
    state = initial_states(module, len(leaves[0][1])) if policy_id in policy.stateful else None
    state_leaves = [] if state is None else _leaves(state, STATE_IN)
    names = [name for name, _ in leaves + state_leaves]
    outputs = [OUTPUT, *(STATE_OUT + name.removeprefix(STATE_IN) for name, _ in state_leaves)]
    graph = _Greedy(module, _template(example), None if state is None else _template(state))
    batch = torch.export.Dim("batch")
    inputs = tuple(leaf for _, leaf in leaves + state_leaves)
    # The dynamo exporter (torch.export, needs onnxscript) keeps every input even when
    # the graph does not use it (the yard's low level ignores time_left); the legacy
    # TorchScript exporter drops such inputs, and feeding them by name then fails.
    with torch.no_grad(), _quiet():
        torch.onnx.export(
            graph,
            inputs,
            str(path),
            input_names=names,
            output_names=outputs,
            dynamo=True,
            dynamic_shapes=(tuple({0: batch} for _ in inputs),),
            external_data=False,
            verbose=False,
        )
        found = graph(*inputs)
        action, after = (found, ()) if state is None else (found[0], found[1:])
    layout = (
        "the observation flattened by RLlib's flatten_inputs_to_1d_tensor (Dict keys sorted, "
        "Box values row-major, Discrete values one-hot)"
        if policy.flattens(policy_id)
        else "as the env observes it"
    )
    signature = {
        "inputs": [_described(name, leaf, layout) for name, leaf in leaves]
        + [
            _described(name, leaf, "the agent's state before this decision")
            for name, leaf in state_leaves
        ],
        "output": {"name": OUTPUT, "shape": [None, *action.shape[1:]], "dtype": _dtype(action)},
    }
    if state is not None:
        signature["state"] = [
            {
                "input": name,
                "output": output,
                "shape": [None, *leaf.shape[1:]],
                "dtype": _dtype(leaf),
                "initial": leaf[0].tolist(),
            }
            for (name, leaf), output, _ in zip(state_leaves, outputs[1:], after, strict=True)
        ]
    return signature


def _described(name: str, leaf: Any, layout: str) -> dict[str, Any]:
    return {"name": name, "shape": [None, *leaf.shape[1:]], "dtype": _dtype(leaf), "layout": layout}


def check_onnx(graph: bytes, policy: ModulePolicy, policy_id: str, obs: Any) -> None:
    """Assert that the graph's actions are torch's on a batch of env observations.

    Discrete actions must be equal, except in rows where torch's own logits of the two
    actions tie to within :data:`TIE`; continuous actions close to 1e-5. A module with
    memory is checked over two decisions: from the initial state, then from the state
    torch's first left (its next states close to 1e-5 too).
    """
    import onnxruntime

    session = onnxruntime.InferenceSession(graph, providers=["CPUExecutionProvider"])
    module = policy.modules[policy_id]
    if policy_id not in policy.stateful:
        got = session.run([OUTPUT], onnx_inputs(policy, policy_id, obs))[0]
        _check_actions(policy_id, got, policy.act(policy_id, obs), module, policy, obs, None)
        return
    batch = policy.module_input(policy_id, obs)
    state = initial_states(module, len(_leaves(batch)[0][1]))
    for _ in range(2):
        got, *got_state = session.run(None, onnx_inputs(policy, policy_id, obs, state))
        with torch.no_grad():
            inputs, after = forward(module, batch, state)
            want = module.get_inference_action_dist_cls().from_logits(inputs)
            want = want.to_deterministic().sample().numpy()
        _check_actions(policy_id, got, want, module, policy, obs, state)
        for (name, leaf), found in zip(_leaves(after, STATE_OUT), got_state, strict=True):
            if not np.allclose(found, leaf.numpy(), rtol=1e-4, atol=1e-5):
                raise AssertionError(f"{policy_id}: ONNX {name} differs from torch's")
        state = after


def _check_actions(
    policy_id: str,
    got: np.ndarray,
    want: np.ndarray,
    module: Any,
    policy: ModulePolicy,
    obs: Any,
    state: Any,
) -> None:
    """Assert the graph's actions ``got`` are torch's ``want`` (ties aside; see check_onnx)."""
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
    with torch.no_grad():
        logits = forward(module, policy.module_input(policy_id, obs), state)[0].numpy()
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


class _Greedy(torch.nn.Module):
    """The graph exported: leaves in, the module's greedy action out (and for a module with
    memory, its state's leaves in after the observation's, the next state's out)."""

    def __init__(self, module: torch.nn.Module, template: Any, state: Any) -> None:
        super().__init__()
        self.module = module
        self.template = template
        self.state = state

    def forward(self, *leaves: torch.Tensor) -> Any:
        given = iter(leaves)
        obs = _fill(self.template, given)
        if self.state is None:
            return greedy_action(self.module, obs)
        action, after = greedy_step(self.module, obs, _fill(self.state, given))
        return (action, *(leaf for _, leaf in _leaves(after)))


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

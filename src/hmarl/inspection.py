"""What ``hmarl inspect`` shows: each policy's network, layer by layer.

:func:`describe_policies` reads RL modules (from a checkpoint through
:func:`hmarl.checkpoints.load_modules`, or freshly built) into plain records:
the module's class, its observation and action spaces, every layer that owns
parameters with their shapes, and the parameter counts. The numbers come from the
modules' own parameters, never from their configs. ``to_dict()`` gives JSON for
programs; :func:`print_policies` draws a table per policy for people.

>>> from torch import nn
>>> policy = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))
>>> summary = describe_policies({"low_level_policy": policy})["low_level_policy"]
>>> first = summary.layers[0]
>>> first.name, first.kind, first.shapes, first.parameters
('0', 'Linear', {'weight': (8, 5), 'bias': (8,)}, 48)
>>> summary.total_parameters
75
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import torch
from rich.console import Console
from rich.markup import escape
from rich.table import Table


@dataclass(frozen=True)
class LayerSummary:
    """A submodule that owns parameters itself (a ``Linear``, say; not a ``Sequential``)."""

    name: str
    """Dotted path inside the policy's module, e.g. ``scorer.0``; "" for the module itself."""
    kind: str
    """The layer's class name, e.g. ``Linear``."""
    shapes: dict[str, tuple[int, ...]]
    """Shape of each of its parameters, e.g. ``{"weight": (64, 18), "bias": (64,)}``."""
    parameters: int
    """Number of values in its parameters."""


@dataclass(frozen=True)
class PolicySummary:
    """One policy's network."""

    policy: str
    """The policy (module) id, e.g. ``high_level_policy``."""
    module_class: str
    """Qualified class name, e.g. ``mytasks.modules.SetScorer``."""
    observation_space: dict[str, str] | str
    """Each field of a Dict space by name, or the space itself; "unknown" if not set."""
    action_space: str
    layers: tuple[LayerSummary, ...]
    total_parameters: int
    """All the module's parameters (each counted once, however often it is used)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (shapes become lists)."""
        return _json_safe(dataclasses.asdict(self))


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def describe_policies(modules: Mapping[str, torch.nn.Module]) -> dict[str, PolicySummary]:
    """A summary per policy id, in the order given."""
    return {policy: describe_module(policy, module) for policy, module in modules.items()}


def describe_module(policy: str, module: torch.nn.Module) -> PolicySummary:
    layers = []
    for name, submodule in module.named_modules():
        own = dict(submodule.named_parameters(recurse=False))
        if own:
            layers.append(
                LayerSummary(
                    name=name,
                    kind=type(submodule).__name__,
                    shapes={k: tuple(p.shape) for k, p in own.items()},
                    parameters=sum(p.numel() for p in own.values()),
                )
            )
    kind = type(module)
    return PolicySummary(
        policy=policy,
        module_class=f"{kind.__module__}.{kind.__qualname__}",
        observation_space=_space(getattr(module, "observation_space", None)),
        action_space=str(_space(getattr(module, "action_space", None))),
        layers=tuple(layers),
        total_parameters=sum(p.numel() for p in module.parameters()),
    )


def _space(space: gym.Space | None) -> dict[str, str] | str:
    if space is None:
        return "unknown"
    if isinstance(space, gym.spaces.Dict):
        return {key: str(sub) for key, sub in space.spaces.items()}
    return str(space)


def print_policies(summaries: Mapping[str, PolicySummary], console: Console | None = None) -> None:
    """A heading, the spaces and a layer table for each policy."""
    if console is None:
        from hmarl.report import console as shared

        console = shared
    for summary in summaries.values():
        console.print(f"[bold]{escape(summary.policy)}[/bold]: {escape(summary.module_class)}")
        spaces = summary.observation_space
        if isinstance(spaces, dict):
            console.print("  observation space (Dict):")
            width = max(map(len, spaces), default=0)
            for key, text in spaces.items():
                console.print(f"    {escape(key):<{width}}  {escape(text)}")
        else:
            console.print(f"  observation space: {escape(spaces)}")
        console.print(f"  action space: {escape(summary.action_space)}")
        table = Table(show_edge=True)
        table.add_column("layer")
        table.add_column("type")
        table.add_column("parameter shapes")
        table.add_column("parameters", justify="right")
        for layer in summary.layers:
            shapes = ", ".join(f"{k} {_shape(s)}" for k, s in layer.shapes.items())
            table.add_row(
                escape(layer.name or "(module)"),
                escape(layer.kind),
                escape(shapes),
                f"{layer.parameters:,}",
            )
        table.add_section()
        table.add_row("[bold]total[/bold]", "", "", f"[bold]{summary.total_parameters:,}[/bold]")
        console.print(table)
        console.print()


def _shape(shape: tuple[int, ...]) -> str:
    """(64, 18) -> '64×18'; a scalar parameter -> 'scalar'."""
    return "×".join(map(str, shape)) or "scalar"

"""Checking settings by their declared types: clear errors that name the setting.

Used for :class:`hmarl.training.TrainConfig` and for the values of TOML files, so
that ``use_tune = "no"``, ``stop_iters = 2.5`` or ``lr = "0.001"`` are refused by
name instead of being taken at face value. Plain Python, no Ray or torch: a bad
command fails in well under a second.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any

_KIND = {
    int: "a whole number",
    float: "a number",
    bool: "true or false",
    str: "a string",
    Path: "a path (a string)",
}


def check_types(instance: Any) -> None:
    """Raise ValueError naming the first field whose value does not fit its annotation."""
    hints = typing.get_type_hints(type(instance))
    for f in dataclasses.fields(instance):
        value = getattr(instance, f.name)
        if not fits(value, hints[f.name]):
            raise ValueError(f"{f.name}: expected {describe(hints[f.name])}, got {value!r}")


def fits(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(fits(value, arm) for arm in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is Any:
        return True
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if origin in (list, tuple):
        (item,) = typing.get_args(hint)[:1]
        return isinstance(value, list | tuple) and all(fits(v, item) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        )
    if hint is Path:
        return isinstance(value, str | Path)
    return isinstance(value, hint)


def describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        arms = [describe(a) for a in typing.get_args(hint) if a is not type(None)]
        return " or ".join(arms) + (" (or nothing)" if type(None) in typing.get_args(hint) else "")
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(v) for v in typing.get_args(hint))
    if origin in (list, tuple):
        (item,) = typing.get_args(hint)[:1]
        return f"a list of {describe(item).removeprefix('a ')}s"
    if origin is dict:
        return "a table"
    return _KIND.get(hint, getattr(hint, "__name__", str(hint)))

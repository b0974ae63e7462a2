"""Gymnasium spaces as plain JSON, for files that must never be unpickled.

Gymnasium has no JSON form of its spaces (it pickles them), so an export's
description writes them in this small format of its own:

=============  =================================================================
space          JSON
=============  =================================================================
Box            ``{"type": "Box", "shape": [2], "dtype": "float32", "low": 0.0,
               "high": 1.0}``: ``low`` and ``high`` a number when every entry is
               the same, else nested lists; infinities as ``"inf"``/``"-inf"``
Discrete       ``{"type": "Discrete", "n": 8, "start": 0}``
MultiDiscrete  ``{"type": "MultiDiscrete", "nvec": [3, 4], "start": [0, 0],
               "dtype": "int64"}``
Dict           ``{"type": "Dict", "spaces": {"key": <space>, ...}}`` in the space's
               key order
Tuple          ``{"type": "Tuple", "spaces": [<space>, ...]}``
=============  =================================================================

The output is strict JSON (no NaN or Infinity literals), so any language reads it.
Any other space, or a malformed document, raises :class:`SpaceCodecError`.

>>> import gymnasium as gym, numpy as np
>>> space = gym.spaces.Dict({"position": gym.spaces.Box(0.0, 1.0, (2,), np.float32),
...                          "goal": gym.spaces.Discrete(4, start=1)})
>>> encode_space(space)["spaces"]["position"]
{'type': 'Box', 'shape': [2], 'dtype': 'float32', 'low': 0.0, 'high': 1.0}
>>> decode_space(encode_space(space)) == space
True
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np

__all__ = ["SpaceCodecError", "decode_space", "encode_space"]

_INFINITIES = {"inf": math.inf, "-inf": -math.inf}


class SpaceCodecError(ValueError):
    """A space this format has no form for, or a document that is not a space."""


def encode_space(space: gym.Space) -> dict[str, Any]:
    """``space`` as JSON-able data (see the module docstring)."""
    if isinstance(space, gym.spaces.Box):
        return {
            "type": "Box",
            "shape": list(space.shape),
            "dtype": space.dtype.name,
            "low": _encode_bound(space.low),
            "high": _encode_bound(space.high),
        }
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, gym.spaces.MultiDiscrete):
        return {
            "type": "MultiDiscrete",
            "nvec": space.nvec.tolist(),
            "start": space.start.tolist(),
            "dtype": space.dtype.name,
        }
    if isinstance(space, gym.spaces.Dict):
        return {"type": "Dict", "spaces": {k: encode_space(s) for k, s in space.spaces.items()}}
    if isinstance(space, gym.spaces.Tuple):
        return {"type": "Tuple", "spaces": [encode_space(s) for s in space.spaces]}
    raise SpaceCodecError(
        f"{space} has no JSON form (Box, Discrete, MultiDiscrete, Dict and Tuple do)"
    )


def decode_space(data: Any) -> gym.Space:
    """The space :func:`encode_space` wrote; :class:`SpaceCodecError` for anything else."""
    if not isinstance(data, dict):
        raise SpaceCodecError(f"a space is a JSON object, got {data!r}")
    kind = data.get("type")
    try:
        if kind == "Box":
            dtype = _dtype(data["dtype"], "biuf")
            low, high = _decode_bound(data["low"]), _decode_bound(data["high"])
            return gym.spaces.Box(low, high, shape=_shape(data["shape"]), dtype=dtype)
        if kind == "Discrete":
            return gym.spaces.Discrete(_int(data["n"]), start=_int(data["start"]))
        if kind == "MultiDiscrete":
            return gym.spaces.MultiDiscrete(
                np.asarray(data["nvec"]), dtype=_dtype(data["dtype"], "iu"), start=data["start"]
            )
        if kind == "Dict":
            spaces = data["spaces"]
            if not isinstance(spaces, dict):
                raise SpaceCodecError("a Dict's spaces are a JSON object")
            # Pairs keep the file's key order (a plain dict would be sorted by gymnasium).
            return gym.spaces.Dict([(str(k), decode_space(s)) for k, s in spaces.items()])
        if kind == "Tuple":
            if not isinstance(data["spaces"], list):
                raise SpaceCodecError("a Tuple's spaces are a JSON list")
            return gym.spaces.Tuple([decode_space(s) for s in data["spaces"]])
    except KeyError as err:
        raise SpaceCodecError(f"a {kind} space needs {err.args[0]!r}") from None
    except (TypeError, ValueError) as err:
        if isinstance(err, SpaceCodecError):
            raise
        raise SpaceCodecError(f"not a valid {kind} space: {err}") from None
    raise SpaceCodecError(f"unknown space type {kind!r}")


def _encode_bound(values: np.ndarray) -> Any:
    """One number for a uniform bound, else nested lists; infinities as strings."""
    flat = values.reshape(-1)
    if flat.size and np.all(flat == flat[0]):
        return _encode_number(flat[0].item())
    return _encode_nested(values.tolist())


def _encode_nested(value: Any) -> Any:
    if isinstance(value, list):
        return [_encode_nested(v) for v in value]
    return _encode_number(value)


def _encode_number(value: float | int) -> float | int | str:
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, float) and math.isnan(value):
        raise SpaceCodecError("a Box bound is NaN")
    return value


def _decode_bound(value: Any) -> Any:
    if isinstance(value, list):
        return np.asarray([_decode_bound(v) for v in value])
    if isinstance(value, str):
        if value not in _INFINITIES:
            raise SpaceCodecError(f"a Box bound is a number, 'inf' or '-inf', got {value!r}")
        return _INFINITIES[value]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpaceCodecError(f"a Box bound is a number, got {value!r}")
    return value


def _dtype(name: Any, kinds: str) -> np.dtype:
    """A numeric dtype by name; only the kinds given (no object or string dtypes)."""
    try:
        dtype = np.dtype(str(name))
    except TypeError:
        raise SpaceCodecError(f"unknown dtype {name!r}") from None
    if dtype.kind not in kinds:
        raise SpaceCodecError(f"dtype {name!r} is not allowed here")
    return dtype


def _shape(value: Any) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise SpaceCodecError(f"a shape is a list of whole numbers, got {value!r}")
    return tuple(_int(v) for v in value)


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpaceCodecError(f"expected a whole number, got {value!r}")
    return value

"""Layers in order: building them from specs, and their shapes, passes and positions.

A block's children are lists of layers run one after another; these helpers are shared by
the blocks (``nnctl.core.blocks``) and by anything that walks a block's children with
their input shapes (the summary, ``nnctl time``, the config checks).
"""

from __future__ import annotations

import numpy as np

from nnctl.core import checks
from nnctl.core.layers import LAYERS, Layer
from nnctl.errors import ConfigError, ShapeError


def initialize_layer(spec, path: str = "") -> Layer:
    """A Layer from an instance, a name or a ``{type: ..., ...}`` mapping.

    Inside a block (``path`` given, e.g. ``layers[1]``) every error is a ConfigError whose
    path starts there (``layers[1].n_out``), nested blocks adding their own steps.
    """
    if isinstance(spec, Layer):
        return spec
    if isinstance(spec, str):
        spec = {"type": spec}
    if not isinstance(spec, dict) or "type" not in spec:
        raise ConfigError(path, f"must be a layer name or a mapping with 'type'; got {spec!r}")
    kwargs = dict(spec)
    cls = LAYERS.get(kwargs.pop("type"), f"{path}.type" if path else "type")
    try:
        return cls(**kwargs)
    except ConfigError as error:
        if not path:
            raise
        raise ConfigError(f"{path}.{error.path}" if error.path else path, error.message) from error
    except checks.ArgumentError as error:
        if not path:
            raise
        raise ConfigError(f"{path}.{error.argument}", error.message) from error
    except (TypeError, ValueError) as error:
        if not path:
            raise
        raise ConfigError(path, str(error)) from error


def repeat_count(spec, path: str) -> int:
    """The ``repeat`` of a layer spec in a list (1 when absent); ConfigError if not >= 1."""
    if not isinstance(spec, dict) or "repeat" not in spec:
        return 1
    try:
        return checks.positive_int("repeat", spec["repeat"])
    except checks.ArgumentError as error:
        raise ConfigError(f"{path}.repeat", error.message) from error


def without_repeat(spec):
    """The spec of one copy: ``spec`` without its ``repeat`` key."""
    if isinstance(spec, dict) and "repeat" in spec:
        return {k: v for k, v in spec.items() if k != "repeat"}
    return spec


def initialize_layers(specs, path: str) -> list[Layer]:
    """A list of layer specs as layers; ``path`` names the list (``layers``).

    An item ``{..., repeat: N}`` stands for N copies of the layer, each with its own weights.
    """
    if not isinstance(specs, (list, tuple)):
        raise ConfigError(path, f"must be a list of layers; got {specs!r}")
    layers = []
    for i, spec in enumerate(specs):
        for _ in range(repeat_count(spec, f"{path}[{i}]")):
            layers.append(initialize_layer(without_repeat(spec), f"{path}[{i}]"))
    return layers


class LocatedShapeError(ShapeError):
    """A ShapeError from inside a block, its message prefixed with the child's position
    (``residual layers[1]: Conv2D: kernel 9x9 ...``).

    ``layer`` is the innermost layer that does not fit its input (a child, or a nested block
    whose branches disagree) and ``reason`` the message without positions, so that callers
    can name the place in their own terms (the config layer: the layer's key path).
    """

    def __init__(self, message: str, layer: Layer, reason: str) -> None:
        super().__init__(message)
        self.layer, self.reason = layer, reason


def shape_text(shape) -> str:
    return str(tuple(shape))


def chain_walk(layers, input_shape, where: str, prefix: str = ""):
    """``(rows, output shape)`` of ``layers`` applied in order to ``input_shape``.

    Each row is ``(name, layer, input shape)``, the name ``prefix`` + the position. A layer
    that does not fit raises LocatedShapeError naming ``where[position]``.
    """
    rows, shape = [], tuple(input_shape)
    for i, layer in enumerate(layers):
        rows.append((f"{prefix}{i}", layer, shape))
        try:
            shape = tuple(layer.output_shape(shape))
        except ShapeError as error:
            culprit = getattr(error, "layer", layer)
            reason = getattr(error, "reason", str(error))
            raise LocatedShapeError(f"{where}[{i}]: {error}", culprit, reason) from error
    return rows, shape


def chain_forward(layers, X: np.ndarray) -> np.ndarray:
    for layer in layers:
        X = layer.forward(X)
    return X


def chain_backward(layers, dLdY: np.ndarray):
    for layer in reversed(layers):
        dLdY = layer.backward(dLdY)
    return dLdY


def add_all(arrays) -> np.ndarray:
    """The sum of a list of arrays as a new array (the inputs may be views of others)."""
    total = arrays[0] + arrays[1] if len(arrays) > 1 else arrays[0].copy()
    for array in arrays[2:]:
        total += array
    return total


def named_layers(layer: Layer, name: str = "", depth: int = 0):
    """``(name, layer, depth)`` of ``layer`` and of every layer inside it (a built block's
    ``named_children``, depth first); names are dotted (``3``, ``3.0``, ``3.shortcut``;
    from ``""``: ``0``, ``shortcut``)."""
    yield name, layer, depth
    for child_name, child in layer.named_children():
        yield from named_layers(child, f"{name}.{child_name}" if name else child_name, depth + 1)


def walk_layers(layer: Layer, input_shape, name: str, depth: int = 0):
    """``(name, layer, input shape, depth)`` of ``layer`` and, below it, of every layer it
    contains (a block's children, depth first, in build order), without building anything.
    Children are named by dotted suffixes (``3.0``, ``3.shortcut``, ``3.branches.1.0``)."""
    yield name, layer, tuple(input_shape), depth
    for child_name, child, shape in layer.walk(input_shape):
        yield from walk_layers(child, shape, f"{name}.{child_name}", depth + 1)

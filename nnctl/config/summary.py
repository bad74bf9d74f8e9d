"""A model's layer table from its config alone: output shapes, parameters, FLOPs, memory.

Each layer answers for itself (``Layer.output_shape``, ``parameter_count`` and ``flops``
for an input shape), so no layer type is special here; a block's children follow it as
rows of their own, one level deeper (``walk_layers``), and the block's numbers include
theirs. FLOPs are for one forward pass of one example, a multiply-add counting 2.
Activation memory is the sum of every layer's output size (blocks and their children) in
the model's dtype, per example, as kept for the backward pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnctl.config.components import LAYER, make
from nnctl.core.chain import walk_layers


@dataclass(frozen=True)
class LayerRow:
    """One layer; ``name`` is its dotted position (``3``, ``3.0``, ``3.shortcut``, as in
    parameter keys), ``depth`` 0 for the model's layers, 1 for a block's children, ..."""

    index: int
    type: str
    output_shape: tuple[int, ...]
    parameters: int
    flops: int
    name: str = ""
    depth: int = 0


@dataclass(frozen=True)
class Summary:
    input_shape: tuple[int, ...]
    rows: list[LayerRow]
    dtype: str

    @property
    def parameters(self) -> int:
        return sum(row.parameters for row in self.rows if row.depth == 0)

    @property
    def flops(self) -> int:
        return sum(row.flops for row in self.rows if row.depth == 0)

    @property
    def activation_bytes(self) -> int:
        size = np.dtype(self.dtype).itemsize
        return size * sum(int(np.prod(row.output_shape)) for row in self.rows)


def summarize(model: dict, input_shape: tuple[int, ...]) -> Summary:
    """The layer table of a resolved ``model:`` section for ``input_shape``."""
    rows, shape = [], tuple(input_shape)
    for index, spec in enumerate(model["layers"]):
        layer = make(LAYER, spec)
        for name, child, in_shape, depth in walk_layers(layer, shape, str(index)):
            out = tuple(child.output_shape(in_shape))
            count, flops = child.parameter_count(in_shape), child.flops(in_shape)
            rows.append(LayerRow(index, child.type_name, out, int(count), int(flops), name, depth))
        shape = tuple(layer.output_shape(shape))
    return Summary(tuple(input_shape), rows, model["dtype"])


BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def human(n: float, unit: str = "") -> str:
    """``1234567`` → ``"1.23M"``; bytes with ``unit="B"`` → ``"4.5 KiB"``."""
    if unit == "B":
        for suffix in BYTE_UNITS:
            if n < 1024 or suffix == BYTE_UNITS[-1]:
                return f"{n:.0f} {suffix}" if suffix == "B" else f"{n:.1f} {suffix}"
            n /= 1024
    for suffix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{suffix}"
    return str(int(n))

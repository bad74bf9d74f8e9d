"""``Graph``: the ONNX nodes and weights of an export, and the layout of every tensor.

nnctl computes on NHWC images; ONNX's Conv, MaxPool, AveragePool, BatchNormalization and
the global pools want NCHW. Every tensor of the graph is a ``Value``: its name and its
layout, ``NHWC``, ``NCHW`` or ``NC`` (vectors, features last). An exporter asks for the
layout its operator needs (``channels_first``, ``channels_last``) and a Transpose is added
only where the layout changes, once per tensor and layout, so a chain of convolutions and
pools runs in NCHW without a transpose between them. Element-wise operators keep the
layout they are given; operators on the channel axis (softmax, concat) find it with
``channel_axis``.

Weights are stored as float32 initializers under the network's own names (``layers.0.W``),
already in the layout their operator reads (conv kernels as ``(n_out, c_in, kh, kw)``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from nnctl.export.metadata import input_layout

NHWC, NCHW, NC = "NHWC", "NCHW", "NC"
TO_NCHW, TO_NHWC = (0, 3, 1, 2), (0, 2, 3, 1)
DTYPE = np.float32
ELEM_TYPE = TensorProto.FLOAT


@dataclass(frozen=True)
class Value:
    """A tensor of the graph: its ``name`` and ``layout`` (``NHWC``, ``NCHW`` or ``NC``)."""

    name: str
    layout: str

    def renamed(self, name: str) -> Value:
        """The same layout under another tensor name (an operator's output)."""
        return Value(name, self.layout)


class Graph:
    """Nodes and initializers collected while layers export themselves.

    Names are unique: ``node`` numbers repeated prefixes (``layers.2/Relu``,
    ``layers.2/Relu_1``), ``weight`` refuses a name given twice.
    """

    def __init__(self) -> None:
        self.nodes: list = []
        self.initializers: list = []
        self._used: Counter[str] = Counter()
        self._weights: set[str] = set()
        self._transposed: dict[tuple[str, str], Value] = {}

    def _unique(self, base: str) -> str:
        count = self._used[base]
        self._used[base] += 1
        return base if count == 0 else f"{base}_{count}"

    def node(self, op: str, inputs: list[str], prefix: str, **attributes) -> str:
        """Add an ``op`` node reading ``inputs``; return the name of its (first) output."""
        name = self._unique(f"{prefix}/{op}")
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attributes))
        return name

    def weight(self, name: str, array: np.ndarray) -> str:
        """Add ``array`` as a float32 initializer called ``name``; return the name."""
        return self._initializer(name, np.asarray(array, dtype=DTYPE))

    def ints(self, name: str, values) -> str:
        """Add an int64 initializer (shapes, axes); return its name."""
        return self._initializer(name, np.asarray(values, dtype=np.int64))

    def _initializer(self, name: str, array: np.ndarray) -> str:
        if name in self._weights:
            raise ValueError(f"initializer {name} added twice")
        self._weights.add(name)
        self.initializers.append(numpy_helper.from_array(np.array(array, order="C"), name))
        return name

    # --- layouts ----------------------------------------------------------------------
    def channels_first(self, value: Value) -> Value:
        """``value`` as NCHW (images) or unchanged (vectors, already NCHW)."""
        return self._to(value, NCHW, NHWC, TO_NCHW)

    def channels_last(self, value: Value) -> Value:
        """``value`` with its features on the last axis: NHWC images or vectors."""
        return self._to(value, NHWC, NCHW, TO_NHWC)

    def _to(self, value: Value, target: str, source: str, perm) -> Value:
        if value.layout != source:
            return value
        key = (value.name, target)
        if key not in self._transposed:
            out = self.node("Transpose", [value.name], f"{value.name}/to_{target}", perm=perm)
            self._transposed[key] = Value(out, target)
        return self._transposed[key]

    def like(self, value: Value, layout: str) -> Value:
        """``value`` in ``layout`` (the layout of another image tensor it is combined with)."""
        return self.channels_first(value) if layout == NCHW else self.channels_last(value)


def channel_axis(layout: str) -> int:
    """The axis holding channels (features) in ``layout``: 1 in NCHW, else the last one."""
    return 1 if layout == NCHW else -1


def graph_input(name: str, sample_shape) -> tuple:
    """(ValueInfo, Value) of a float32 input ``(batch, *sample_shape)``; batch is dynamic."""
    info = helper.make_tensor_value_info(name, ELEM_TYPE, ["batch", *sample_shape])
    return info, Value(name, input_layout(sample_shape))


def graph_output(name: str, shape) -> object:
    """ValueInfo of a float32 output ``(batch, *shape)``."""
    return helper.make_tensor_value_info(name, ELEM_TYPE, ["batch", *shape])

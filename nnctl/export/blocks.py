"""ONNX exporters of composite layers: ``residual`` (with its projection shortcut) and
``concat``. Children export under the keys of the block's own state (``layers.2.0``,
``layers.2.shortcut``, ``layers.3.branches.1.0``), so ONNX weight names match checkpoints.
"""

from __future__ import annotations

from nnctl.export.graph import NC, NCHW, NHWC, Graph, Value, channel_axis
from nnctl.export.layers import (
    EXPORTERS,
    conv_kernel,
    export_activation,
    export_chain,
    export_layer,
)


@EXPORTERS.register("residual")
def _residual(layer, graph: Graph, x: Value, prefix: str) -> Value:
    """activation(F(x) + S(x)); the shortcut's tensor is brought to F's layout."""
    branch = export_chain(layer.layers, graph, x, prefix)
    shortcut = x
    if layer.projection is not None:
        shortcut = export_layer(layer.projection, graph, x, f"{prefix}.shortcut")
    shortcut = graph.like(shortcut, branch.layout)
    z = graph.node("Add", [branch.name, shortcut.name], prefix)
    return export_activation(layer.activation, graph, branch.renamed(z), prefix)


@EXPORTERS.register("projection")
def _projection(layer, graph: Graph, x: Value, prefix: str) -> Value:
    """A strided 1x1 convolution without bias on images, a MatMul on vectors."""
    if x.layout == NC:
        W = graph.weight(f"{prefix}.W", layer.parameters["W"])  # (n_in, n_out)
        return Value(graph.node("MatMul", [x.name, W], prefix), NC)
    x = graph.channels_first(x)
    W = conv_kernel(graph, f"{prefix}.W", layer.parameters["W"])  # (n_out, c_in, 1, 1)
    y = graph.node("Conv", [x.name, W], prefix, kernel_shape=[1, 1], strides=list(layer.stride))
    return Value(y, NCHW)


@EXPORTERS.register("concat")
def _concat(layer, graph: Graph, x: Value, prefix: str) -> Value:
    """The branches joined on the channel axis; NCHW only when every branch ends in it."""
    outputs = [
        export_chain(branch, graph, x, f"{prefix}.branches.{j}")
        for j, branch in enumerate(layer.branches)
    ]
    layouts = {output.layout for output in outputs}
    layout = layouts.pop() if len(layouts) == 1 else NHWC
    outputs = [graph.like(output, layout) for output in outputs]
    y = graph.node("Concat", [o.name for o in outputs], prefix, axis=channel_axis(layout))
    return Value(y, layout)

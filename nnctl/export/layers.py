"""ONNX exporters of layers and activations, in registries keyed by their config names.

A layer exporter is ``export(layer, graph, x, prefix) -> Value``: it adds the nodes that
compute ``layer.forward`` in evaluation mode on the tensor ``x`` and returns the output;
``prefix`` is the layer's key in the network's state (``layers.3``, ``layers.2.shortcut``)
and names its weights and nodes. An activation exporter is ``export(activation, graph, x,
prefix) -> Value``. A new layer or activation registers its exporter here
(``@EXPORTERS.register("conv2d")``); a test fails when a registered one has none.
Composite layers (residual, concat) are in ``nnctl.export.blocks``.
"""

from __future__ import annotations

from nnctl.errors import ExportError
from nnctl.export.graph import NC, NCHW, Graph, Value, channel_axis
from nnctl.registry import Registry

EXPORTERS = Registry("layer exporter")
ACTIVATION_EXPORTERS = Registry("activation exporter")


def export_layer(layer, graph: Graph, x: Value, prefix: str) -> Value:
    """The output of ``layer`` on ``x``; ExportError naming the layer if it has no exporter."""
    name = layer.type_name
    if name not in EXPORTERS:
        raise ExportError(
            f"{prefix} ({name}): cannot be exported to ONNX, no exporter for layer type "
            f"'{name}' (exportable: {', '.join(EXPORTERS.names())})"
        )
    return EXPORTERS.get(name)(layer, graph, x, prefix)


def export_chain(layers, graph: Graph, x: Value, prefix: str) -> Value:
    """``layers`` applied in order; layer ``i`` exports as ``{prefix}.{i}``."""
    for index, layer in enumerate(layers):
        x = export_layer(layer, graph, x, f"{prefix}.{index}")
    return x


def export_activation(activation, graph: Graph, x: Value, prefix: str) -> Value:
    """``activation`` applied to ``x``; ExportError naming the layer if it has no exporter."""
    name = activation.type_name
    if name not in ACTIVATION_EXPORTERS:
        raise ExportError(
            f"{prefix}: activation '{name}' cannot be exported to ONNX "
            f"(exportable: {', '.join(ACTIVATION_EXPORTERS.names())})"
        )
    return ACTIVATION_EXPORTERS.get(name)(activation, graph, x, prefix)


# --- activations ----------------------------------------------------------------------


@ACTIVATION_EXPORTERS.register("linear")
def _linear(activation, graph: Graph, x: Value, prefix: str) -> Value:
    return x


def _elementwise(op: str):
    def export(activation, graph: Graph, x: Value, prefix: str) -> Value:
        return x.renamed(graph.node(op, [x.name], prefix))

    export.__doc__ = f"An element-wise ONNX {op}."
    return export


for _name, _op in (("relu", "Relu"), ("sigmoid", "Sigmoid"), ("tanh", "Tanh"), ("arctan", "Atan")):
    ACTIVATION_EXPORTERS.register(_name)(_elementwise(_op))


@ACTIVATION_EXPORTERS.register("leaky_relu")
def _leaky_relu(activation, graph: Graph, x: Value, prefix: str) -> Value:
    return x.renamed(graph.node("LeakyRelu", [x.name], prefix, alpha=activation.alpha))


@ACTIVATION_EXPORTERS.register("elu")
def _elu(activation, graph: Graph, x: Value, prefix: str) -> Value:
    return x.renamed(graph.node("Elu", [x.name], prefix, alpha=activation.alpha))


@ACTIVATION_EXPORTERS.register("softmax")
def _softmax(activation, graph: Graph, x: Value, prefix: str) -> Value:
    """Over the channels (nnctl's last axis), whichever axis holds them here."""
    return x.renamed(graph.node("Softmax", [x.name], prefix, axis=channel_axis(x.layout)))


# --- layers ---------------------------------------------------------------------------


def _flat(graph: Graph, x: Value, prefix: str) -> Value:
    """(batch, ...) → (batch, features) in nnctl's (NHWC) element order."""
    x = graph.channels_last(x)
    if x.layout == NC:
        return x
    return Value(graph.node("Flatten", [x.name], prefix, axis=1), NC)


def _bias(graph: Graph, layer, prefix: str) -> list[str]:
    """The optional bias input of Gemm and Conv: ``[b]`` (n_out,), or none (``bias: false``)."""
    if "b" not in layer.parameters:
        return []
    return [graph.weight(f"{prefix}.b", layer.parameters["b"].reshape(-1))]


def conv_kernel(graph: Graph, name: str, W) -> str:
    """An NHWC kernel (kh, kw, c_in, n_out) as ONNX's (n_out, c_in, kh, kw)."""
    return graph.weight(name, W.transpose(3, 2, 0, 1))


def _pads(layer) -> list[int]:
    """nnctl's ((top, bottom), (left, right)) as ONNX's [top, left, bottom, right]."""
    (top, bottom), (left, right) = layer.pad
    return [top, left, bottom, right]


@EXPORTERS.register("fully_connected")
def _fully_connected(layer, graph: Graph, x: Value, prefix: str) -> Value:
    x = _flat(graph, x, prefix)
    W = graph.weight(f"{prefix}.W", layer.parameters["W"])  # (n_in, n_out)
    z = graph.node("Gemm", [x.name, W, *_bias(graph, layer, prefix)], prefix)
    return export_activation(layer.activation, graph, Value(z, NC), prefix)


@EXPORTERS.register("flatten")
def _flatten(layer, graph: Graph, x: Value, prefix: str) -> Value:
    return _flat(graph, x, prefix)


@EXPORTERS.register("dropout")
def _dropout(layer, graph: Graph, x: Value, prefix: str) -> Value:
    """Evaluation mode: the identity."""
    return x.renamed(graph.node("Identity", [x.name], prefix))


@EXPORTERS.register("conv2d")
def _conv2d(layer, graph: Graph, x: Value, prefix: str) -> Value:
    x = graph.channels_first(x)
    W = conv_kernel(graph, f"{prefix}.W", layer.parameters["W"])
    z = graph.node(
        "Conv",
        [x.name, W, *_bias(graph, layer, prefix)],
        prefix,
        kernel_shape=list(layer.kernel_shape),
        strides=list(layer.stride),
        pads=_pads(layer),
    )
    return export_activation(layer.activation, graph, Value(z, NCHW), prefix)


# Pool2D mode → (ONNX operator, attributes): max pads with -inf (padding never wins), average
# pads with zeros and divides by the whole window, as nnctl does.
POOL_OPS = {"max": ("MaxPool", {}), "average": ("AveragePool", {"count_include_pad": 1})}


@EXPORTERS.register("pool2d")
def _pool2d(layer, graph: Graph, x: Value, prefix: str) -> Value:
    op, attributes = POOL_OPS[layer.mode]
    x = graph.channels_first(x)
    y = graph.node(
        op,
        [x.name],
        prefix,
        kernel_shape=list(layer.kernel_shape),
        strides=list(layer.stride),
        pads=_pads(layer),
        **attributes,
    )
    return Value(y, NCHW)


@EXPORTERS.register("batch_norm")
def _batch_norm(layer, graph: Graph, x: Value, prefix: str) -> Value:
    """Inference-mode BatchNormalization with the running statistics (channels on axis 1)."""
    x = graph.channels_first(x)
    arrays = {**layer.parameters, **layer.buffers}
    names = ("gamma", "beta", "running_mean", "running_var")
    inputs = [x.name] + [graph.weight(f"{prefix}.{name}", arrays[name]) for name in names]
    return x.renamed(graph.node("BatchNormalization", inputs, prefix, epsilon=layer.eps))


@EXPORTERS.register("layer_norm")
def _layer_norm(layer, graph: Graph, x: Value, prefix: str) -> Value:
    x = graph.channels_last(x)
    gamma = graph.weight(f"{prefix}.gamma", layer.parameters["gamma"])
    beta = graph.weight(f"{prefix}.beta", layer.parameters["beta"])
    y = graph.node("LayerNormalization", [x.name, gamma, beta], prefix, axis=-1, epsilon=layer.eps)
    return x.renamed(y)


def _global_pool(op: str):
    def export(layer, graph: Graph, x: Value, prefix: str) -> Value:
        x = graph.channels_first(x)
        pooled = graph.node(op, [x.name], prefix)  # (batch, ch, 1, 1)
        return Value(graph.node("Flatten", [pooled], prefix, axis=1), NC)  # (batch, ch)

    export.__doc__ = f"ONNX {op} over every position, then (batch, ch)."
    return export


EXPORTERS.register("global_avg_pool")(_global_pool("GlobalAveragePool"))
EXPORTERS.register("global_max_pool")(_global_pool("GlobalMaxPool"))


@EXPORTERS.register("activation")
def _activation_layer(layer, graph: Graph, x: Value, prefix: str) -> Value:
    return export_activation(layer.activation, graph, x, prefix)

"""A trained network as a standard ONNX model: raw inputs in, probabilities (or regression
outputs) out.

The graph is the run's preprocessing (``Sub`` the shift, ``Div`` by the scale, as float32
like ``Preprocessor.transform``, so the scaled inputs are bit-identical), then every layer in
evaluation mode (``nnctl.export.layers``, ``nnctl.export.blocks``), with a dynamic batch
axis. Images stay NHWC at the interface (``input_layout`` in the metadata); inside, the
convolutions and pools run on NCHW (``nnctl.export.graph``) with one Transpose where the
layout changes. ONNX's own operators are used rather than rewriting a convolution as
MatMuls: any runtime recognizes and optimizes them, and they differ from nnctl only by
float32 rounding in the order of their sums (well inside 1e-5 on probabilities; tested).
"""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import helper

from nnctl import __version__
from nnctl.export import blocks  # noqa: F401  (registers the block exporters)
from nnctl.export.graph import NC, Graph, Value, graph_input, graph_output
from nnctl.export.layers import ACTIVATION_EXPORTERS, EXPORTERS, export_chain
from nnctl.export.metadata import export_metadata
from nnctl.fileio import atomic_write_bytes

#: The ONNX operator set: the newest one that onnx 1.16 and onnxruntime 1.18 (the oldest
#: versions the ``onnx`` extra allows) implement; every operator used here is current in it.
OPSET = 21
INPUT = "input"
OUTPUTS = {"classification": "probabilities", "regression": "outputs"}

__all__ = ["ACTIVATION_EXPORTERS", "EXPORTERS", "INPUT", "OPSET", "OUTPUTS", "to_onnx", "write"]


def _preprocessing(preprocess, graph: Graph, x: Value) -> Value:
    """``(x - shift) / scale`` (nothing for ``normalize: none``), then the optional flatten."""
    if preprocess.mode != "none":
        shift = graph.weight("preprocess.shift", preprocess.shift)
        scale = graph.weight("preprocess.scale", preprocess.scale)
        x = x.renamed(graph.node("Sub", [x.name, shift], "preprocess"))
        x = x.renamed(graph.node("Div", [x.name, scale], "preprocess"))
    if preprocess.flatten:
        x = Value(graph.node("Flatten", [x.name], "preprocess", axis=1), NC)
    return x


def to_onnx(network, preprocess, task: str = "classification", metadata=None):
    """The ONNX ModelProto of a built ``network`` after ``preprocess``, checked by
    ``onnx.checker``. Input ``input`` (batch, *raw example shape) float32; output
    ``probabilities`` (classification) or ``outputs`` (regression), (batch, *output shape).
    ExportError when a layer or activation has no exporter."""
    graph = Graph()
    input_info, x = graph_input(INPUT, preprocess.sample_shape)
    x = _preprocessing(preprocess, graph, x)
    x = graph.channels_last(export_chain(network.layers, graph, x, "layers"))
    output = OUTPUTS[task]
    graph.nodes.append(helper.make_node("Identity", [x.name], [output], name="output"))
    out_shape = network.output_shapes(network.input_shape)[-1]
    body = helper.make_graph(
        graph.nodes, "nnctl", [input_info], [graph_output(output, out_shape)], graph.initializers
    )
    opsets = [helper.make_opsetid("", OPSET)]
    model = helper.make_model(
        body,
        opset_imports=opsets,
        producer_name="nnctl",
        producer_version=__version__,
        ir_version=helper.find_min_ir_version_for(opsets),
    )
    model.doc_string = "nnctl network in evaluation mode, preprocessing included"
    helper.set_model_props(model, dict(metadata or {}))
    onnx.checker.check_model(model, full_check=True)
    return model


def write(model, path: Path) -> None:
    """Export a ``TrainedModel`` (``nnctl.train.run.open_model``) to ``path``, atomically."""
    metadata = export_metadata(model)
    proto = to_onnx(model.network, model.preprocess, model.config.spec.task, metadata)
    atomic_write_bytes(Path(path), proto.SerializeToString())

"""Every registered layer and activation exports to ONNX, and onnxruntime computes what
nnctl computes in evaluation mode (random weights, non-trivial running statistics, nested
blocks, every padding and stride); the preprocessing in the graph; layouts and errors."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from export_helpers import TOL, randomize, run_onnx

from nnctl.core import (
    ACTIVATIONS,
    LAYERS,
    Activation,
    ActivationLayer,
    BatchNorm,
    Concat,
    Conv2D,
    Dropout,
    Flatten,
    FullyConnected,
    GlobalAvgPool,
    GlobalMaxPool,
    Layer,
    LayerNorm,
    NeuralNetwork,
    Pool2D,
    Residual,
)
from nnctl.data import Preprocessor
from nnctl.errors import ExportError
from nnctl.export.onnx import (
    ACTIVATION_EXPORTERS,
    EXPORTERS,
    INPUT,
    OPSET,
    OUTPUTS,
    to_onnx,
)

ACTIVATION_CASES = {
    "linear": "linear",
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "relu": "relu",
    "leaky_relu": {"type": "leaky_relu", "alpha": 0.2},
    "elu": {"type": "elu", "alpha": 0.7},
    "arctan": "arctan",
    "softmax": "softmax",
}

# Every registered layer: (layers, batch shape of the input); conv/pool cases cover every
# padding kind and strides, the blocks identity and projection shortcuts and nesting.
LAYER_CASES = {
    "fully_connected": [
        ([FullyConnected(7, "tanh")], (5, 4)),
        ([FullyConnected(6, "relu")], (3, 4, 5, 2)),  # image input: flattened in NHWC order
    ],
    "flatten": [([Conv2D(3, 3), Flatten(), FullyConnected(4)], (2, 5, 4, 2))],
    "dropout": [([Dropout(0.5), FullyConnected(3)], (4, 6)), ([Dropout(0.3)], (2, 3, 3, 2))],
    "conv2d": [
        ([Conv2D(4, 3, "relu", pad="same")], (2, 7, 6, 3)),
        ([Conv2D(3, (2, 4), "linear", stride=2, pad="same")], (2, 7, 8, 2)),
        ([Conv2D(3, (3, 2), "linear", pad="same")], (2, 7, 8, 2)),  # pads (1, 1), (0, 1)
        ([Conv2D(5, 3, "sigmoid", pad="valid")], (2, 6, 6, 1)),
        ([Conv2D(2, (3, 2), "elu", stride=(2, 1), pad=[1, 2])], (2, 7, 5, 3)),
        ([Conv2D(3, 5, "tanh", stride=3, pad=2)], (1, 9, 11, 2)),
    ],
    "pool2d": [
        ([Pool2D(2, "max", stride=2)], (2, 6, 8, 3)),
        ([Pool2D(3, "max", stride=2, pad=1)], (2, 7, 7, 2)),
        ([Pool2D(3, "average", stride=1, pad=1)], (2, 5, 5, 2)),
        ([Pool2D((3, 2), "average", stride=(1, 2), pad="same")], (1, 5, 7, 2)),  # uneven pads
        ([Pool2D(2, "max", stride=1, pad="valid")], (2, 4, 5, 1)),
    ],
    "batch_norm": [
        ([BatchNorm(eps=1e-3)], (4, 5)),
        ([Conv2D(3, 3), BatchNorm(), ActivationLayer("relu")], (2, 5, 4, 2)),
    ],
    "layer_norm": [([LayerNorm()], (3, 5)), ([Conv2D(4, 3), LayerNorm(eps=1e-3)], (2, 4, 5, 3))],
    "global_avg_pool": [([Conv2D(4, 3), GlobalAvgPool()], (2, 5, 6, 3))],
    "global_max_pool": [([GlobalMaxPool(), FullyConnected(3, "softmax")], (2, 5, 6, 3))],
    "activation": [
        ([ActivationLayer("softmax")], (3, 4)),
        ([Conv2D(4, 3), ActivationLayer("softmax")], (2, 3, 4, 2)),  # over channels
        ([ActivationLayer({"type": "leaky_relu", "alpha": 0.1})], (2, 3, 3, 2)),
    ],
    "residual": [
        ([Residual([Conv2D(3, 3, "tanh"), BatchNorm(), Conv2D(3, 3)], "identity")], (2, 5, 5, 3)),
        ([Residual([Conv2D(4, 3, "tanh", stride=2), Conv2D(4, 3)], "auto", "elu")], (2, 5, 5, 2)),
        ([Residual([Dropout(0.3), FullyConnected(5, "tanh")], "projection", "tanh")], (3, 5)),
        ([Residual([FullyConnected(4, "tanh"), LayerNorm()], "auto", "linear")], (3, 6)),
        (
            [
                Conv2D(3, 3, "relu"),
                Residual(
                    [
                        Concat(
                            [
                                [Residual([Conv2D(2, 3, "tanh")], activation="tanh")],
                                ["batch_norm"],
                                [],
                            ]
                        ),
                        {"type": "conv2d", "n_out": 3, "kernel_shape": 1},
                    ],
                    activation="sigmoid",
                ),
                GlobalAvgPool(),
            ],
            (2, 6, 6, 2),
        ),
    ],
    "concat": [
        (
            [Concat([[Conv2D(2, 3, "tanh")], [Pool2D(3, "max", stride=1, pad=1)], [BatchNorm()]])],
            (2, 4, 5, 3),
        ),
        ([Concat([[Conv2D(2, 3)], [LayerNorm()], []]), Conv2D(3, 1)], (2, 4, 4, 3)),
        ([Concat([[FullyConnected(3, "tanh")], [LayerNorm()], []])], (3, 4)),
    ],
}


def _cases():
    for name, cases in sorted(LAYER_CASES.items()):
        for index, (layers, shape) in enumerate(cases):
            yield pytest.param(layers, shape, id=f"{name}-{index}")


def exported_and_expected(layers, shape, preprocess=None, seed=0):
    """(onnxruntime output, nnctl's evaluation-mode output) on random raw input."""
    preprocess = preprocess or Preprocessor("none", shape[1:])
    network = NeuralNetwork(layers, "l2", seed=seed, input_shape=preprocess.output_shape)
    randomize(network, seed)
    network.eval()
    X = np.random.default_rng(seed + 1).normal(size=shape).astype(np.float32)
    model = to_onnx(network, preprocess, "regression")
    return run_onnx(model, X), network.forward(preprocess.transform(X))


@pytest.mark.parametrize("layers, shape", list(_cases()))
def test_layer_exports_and_computes_what_nnctl_does(layers, shape):
    got, expected = exported_and_expected(layers, shape)
    assert got.shape == expected.shape
    assert np.max(np.abs(got - expected)) <= TOL * max(1.0, np.max(np.abs(expected)))


@pytest.mark.parametrize("name", sorted(ACTIVATION_CASES))
@pytest.mark.parametrize("shape", [(4, 6), (2, 3, 4, 5)])
def test_activation_exports(name, shape):
    spec = ACTIVATION_CASES[name]
    layers = [FullyConnected(5, spec)] if len(shape) == 2 else [Conv2D(4, 3, spec)]
    got, expected = exported_and_expected(layers, shape)
    np.testing.assert_allclose(got, expected, rtol=TOL, atol=TOL)


def test_every_registered_layer_and_activation_has_an_exporter_and_a_test():
    assert set(LAYERS.names()) <= set(EXPORTERS.names())
    assert set(LAYERS.names()) == set(LAYER_CASES)
    assert set(ACTIVATIONS.names()) == set(ACTIVATION_EXPORTERS.names()) == set(ACTIVATION_CASES)


def test_dropout_is_the_identity_and_batch_norm_uses_its_running_statistics():
    layers = [Dropout(0.9), BatchNorm()]
    network = NeuralNetwork(layers, "l2", input_shape=(3,))
    randomize(network)
    X = np.random.default_rng(2).normal(size=(4, 3)).astype(np.float32)
    bn = layers[1]
    mean, var = bn.buffers["running_mean"], bn.buffers["running_var"]
    by_hand = (X - mean) / np.sqrt(var + bn.eps) * bn.parameters["gamma"] + bn.parameters["beta"]
    got = run_onnx(to_onnx(network, Preprocessor("none", (3,)), "regression"), X)
    np.testing.assert_allclose(got, by_hand, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["standard", "minmax", "none"])
@pytest.mark.parametrize("flatten", [False, True])
def test_preprocessing_is_in_the_graph(mode, flatten):
    rng = np.random.default_rng(3)
    train = rng.integers(0, 256, size=(20, 6, 5, 1)).astype(np.uint8)
    preprocess = Preprocessor.fit(train, mode, flatten)
    X = rng.integers(0, 256, size=(7, 6, 5, 1)).astype(np.float32)
    network = NeuralNetwork(
        [FullyConnected(4, "softmax")], "l2", input_shape=preprocess.output_shape
    )
    randomize(network)
    got = run_onnx(to_onnx(network, preprocess), X)
    expected = network.eval().forward(preprocess.transform(X))
    assert np.max(np.abs(got - expected)) <= TOL


def test_tabular_preprocessing_per_feature():
    rng = np.random.default_rng(4)
    train = rng.normal(loc=[1.0, -20.0, 300.0], scale=[0.1, 5.0, 40.0], size=(30, 3))
    preprocess = Preprocessor.fit(train.astype(np.float32), "standard")
    network = NeuralNetwork([FullyConnected(2, "tanh")], "l2", input_shape=(3,))
    randomize(network)
    X = rng.normal(loc=[1.0, -20.0, 300.0], scale=[0.1, 5.0, 40.0], size=(9, 3))
    model = to_onnx(network, preprocess, "regression")
    expected = network.eval().forward(preprocess.transform(X))
    assert np.max(np.abs(run_onnx(model, X) - expected)) <= TOL


def test_conv_stack_transposes_only_at_the_layout_changes():
    layers = [Conv2D(4, 3, "relu"), Pool2D(2, stride=2), Conv2D(4, 3, "relu"), BatchNorm(),
              Pool2D(2, stride=2), Dropout(0.2), FullyConnected(3, "softmax")]  # fmt: skip
    network = NeuralNetwork(layers, "cross_entropy", input_shape=(8, 8, 1))
    model = to_onnx(network, Preprocessor("standard", (8, 8, 1), 3.0, 2.0))
    ops = [node.op_type for node in model.graph.node]
    assert ops.count("Transpose") == 2  # into NCHW after the input, back before the flatten
    assert ops.index("Transpose") == ops.index("Div") + 1
    assert ops[-5:] == ["Transpose", "Flatten", "Gemm", "Softmax", "Identity"]


def test_model_interface_opset_and_metadata():
    network = NeuralNetwork([Conv2D(2, 3), FullyConnected(3, "softmax")], "cross_entropy",
                            input_shape=(4, 4, 2))  # fmt: skip
    model = to_onnx(network, Preprocessor("none", (4, 4, 2)), metadata={"input_layout": "NHWC"})
    assert [(o.domain, o.version) for o in model.opset_import] == [("", OPSET)]
    (graph_input,) = model.graph.input
    dims = [d.dim_param or d.dim_value for d in graph_input.type.tensor_type.shape.dim]
    assert (graph_input.name, dims) == (INPUT, ["batch", 4, 4, 2])
    (output,) = model.graph.output
    dims = [d.dim_param or d.dim_value for d in output.type.tensor_type.shape.dim]
    assert (output.name, dims) == (OUTPUTS["classification"], ["batch", 3])
    assert {p.key: p.value for p in model.metadata_props} == {"input_layout": "NHWC"}
    names = {init.name for init in model.graph.initializer}
    assert names == {"layers.0.W", "layers.0.b", "layers.1.W", "layers.1.b"}


class Mystery(Layer):
    type_name = "mystery"

    def forward(self, X):
        return X


class Weird(Activation):
    type_name = "weird"

    def forward(self, Z):
        return Z


@pytest.mark.parametrize(
    "layers, message",
    [
        ([FullyConnected(3), Mystery()], "layers.1 (mystery): cannot be exported to ONNX"),
        ([Residual([Mystery()])], "layers.0.0 (mystery): cannot be exported"),
        ([Concat([[], [FullyConnected(2), Mystery()]])], "layers.0.branches.1.1 (mystery)"),
        ([FullyConnected(3, Weird())], "layers.0: activation 'weird' cannot be exported"),
    ],
)
def test_a_layer_without_exporter_is_an_error_naming_it(layers, message):
    network = NeuralNetwork(layers, "l2", input_shape=(3,))
    with pytest.raises(ExportError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        to_onnx(network, Preprocessor("none", (3,)))
    assert "\n" not in str(info.value)

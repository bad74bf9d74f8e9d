"""Numerical gradient checks (float64 central differences) for every registered layer,
activation and loss, and for whole networks."""

from __future__ import annotations

import numpy as np
import pytest

from nnctl.core import (
    ACTIVATIONS,
    LAYERS,
    LOSSES,
    ActivationLayer,
    BatchNorm,
    Concat,
    Conv2D,
    Dropout,
    Flatten,
    FullyConnected,
    GlobalAvgPool,
    GlobalMaxPool,
    LayerNorm,
    NeuralNetwork,
    Pool2D,
    Residual,
    initialize_activation,
    initialize_loss,
)
from nnctl.core.gradcheck import check_network, numerical_gradient, relative_error

TOL = 1e-6

# Every registered activation: (name or config, input generator)
ACTIVATION_CASES = {
    "linear": "linear",
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "relu": "relu",
    "leaky_relu": {"type": "leaky_relu", "alpha": 0.1},
    "elu": {"type": "elu", "alpha": 0.7},
    "arctan": "arctan",
    "softmax": "softmax",
}


def _away_from_kinks(Z):
    # keep finite differences away from the non-differentiable point of relu-like functions
    return np.where(np.abs(Z) < 1e-3, 0.1, Z)


@pytest.mark.parametrize("name", sorted(ACTIVATION_CASES))
@pytest.mark.parametrize("shape", [(4, 7), (2, 3, 3, 5)])
def test_activation_gradient(name, shape):
    act = initialize_activation(ACTIVATION_CASES[name])
    rng = np.random.default_rng(1)
    Z = _away_from_kinks(rng.normal(scale=2.0, size=shape))
    R = rng.normal(size=shape)
    numeric = numerical_gradient(lambda: float(np.sum(act.forward(Z) * R)), Z)
    assert relative_error(act.backward(Z, R), numeric) < TOL


@pytest.mark.parametrize("name", sorted(ACTIVATION_CASES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activation_stable_for_huge_inputs(name, dtype):
    act = initialize_activation(ACTIVATION_CASES[name])
    Z = np.array([[-1e4, -50.0, 0.0, 50.0, 1e4]], dtype=dtype)
    # underflow to 0 is exact and harmless; overflow, 0/0 and inf-inf are not
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        Y = act.forward(Z)
        dZ = act.backward(Z, np.ones_like(Z))
    assert np.all(np.isfinite(Y)) and np.all(np.isfinite(dZ))
    assert Y.dtype == dtype


def test_sigmoid_and_softmax_extremes_are_exact():
    Z = np.array([[-1e4, 0.0, 1e4]])
    np.testing.assert_array_equal(initialize_activation("sigmoid")(Z), [[0.0, 0.5, 1.0]])
    np.testing.assert_array_equal(initialize_activation("softmax")(Z), [[0.0, 0.0, 1.0]])


LOSS_CASES = {
    "cross_entropy": "probabilities",
    "l2": "real",
    "binary_cross_entropy": "binary",
    "huber": "real",
    "l1": "real",
}
# Losses with arguments, checked like the plain ones.
LOSS_OPTION_CASES = [
    ({"type": "cross_entropy", "label_smoothing": 0.1}, "probabilities"),
    ({"type": "cross_entropy", "class_weights": [1.0, 2.0, 0.5, 3.0, 1.5]}, "probabilities"),
    (
        {"type": "cross_entropy", "label_smoothing": 0.2, "class_weights": [2, 1, 1, 4, 0.5]},
        "probabilities",
    ),
    ({"type": "huber", "delta": 0.3}, "real"),
]


def _loss_cases():
    for name, kind in sorted(LOSS_CASES.items()):
        yield pytest.param(name, kind, id=name)
    for spec, kind in LOSS_OPTION_CASES:
        options = ",".join(f"{k}={v}" for k, v in spec.items() if k != "type")
        yield pytest.param(spec, kind, id=f"{spec['type']}({options})")


def _loss_inputs(kind: str, rng):
    """Targets and outputs of shape (6, 5) for one kind of loss."""
    if kind == "probabilities":
        Y = np.eye(5)[rng.integers(0, 5, size=6)]
        Y_hat = rng.uniform(0.05, 1.0, size=(6, 5))
        return Y, Y_hat / Y_hat.sum(axis=1, keepdims=True)
    if kind == "binary":
        return rng.integers(0, 2, size=(6, 5)).astype(float), rng.uniform(0.05, 0.95, (6, 5))
    Y, Y_hat = rng.normal(size=(6, 5)), rng.normal(size=(6, 5))
    return Y, np.where(np.abs(Y_hat - Y) < 1e-3, Y + 0.1, Y_hat)  # away from |d| = 0


@pytest.mark.parametrize("spec,kind", list(_loss_cases()))
def test_loss_gradient(spec, kind):
    loss = initialize_loss(spec)
    Y, Y_hat = _loss_inputs(kind, np.random.default_rng(2))
    numeric = numerical_gradient(lambda: loss.forward(Y, Y_hat), Y_hat)
    assert relative_error(loss.backward(Y, Y_hat), numeric) < TOL


FUSED_LOSS_CASES = [
    case for case in _loss_cases() if initialize_loss(case.values[0]).fused_activation
]


@pytest.mark.parametrize("spec,kind", FUSED_LOSS_CASES)
def test_fused_loss_gradient_from_logits(spec, kind):
    """Losses that combine with their output activation: ``backward_logits`` is the
    gradient of ``forward_logits`` with respect to the logits, and ``forward_logits`` is the
    loss of the activated outputs."""
    loss = initialize_loss(spec)
    rng = np.random.default_rng(6)
    Y, _ = _loss_inputs(kind, rng)
    Z = rng.normal(scale=2.0, size=Y.shape)
    activation = loss.fused_activation()
    numeric = numerical_gradient(lambda: loss.forward_logits(Y, Z), Z)
    assert relative_error(loss.backward_logits(Y, activation(Z)), numeric) < TOL
    assert np.isclose(loss.forward_logits(Y, Z), loss.forward(Y, activation(Z)), rtol=1e-12)


def test_cross_entropy_never_takes_log_of_zero():
    loss = initialize_loss("cross_entropy")
    Y = np.array([[1.0, 0.0]], dtype=np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        value = loss.forward(Y, np.array([[0.0, 1.0]], dtype=np.float32))
        grad = loss.backward(Y, np.array([[0.0, 1.0]], dtype=np.float32))
    assert np.isfinite(value) and value > 80  # -log(tiny float32) ~ 87.3
    assert np.all(np.isfinite(grad))


# Every registered layer: a list of (constructor, input shape) cases.
LAYER_CASES = {
    "fully_connected": [
        (lambda: FullyConnected(4, "tanh"), (3, 5)),
        (lambda: FullyConnected(3, "sigmoid", "he_normal"), (2, 4, 3, 2)),  # image input
        (lambda: FullyConnected(4, "softmax"), (3, 6)),
        (lambda: FullyConnected(3, "tanh", bias=False), (3, 4)),
    ],
    "conv2d": [
        (lambda: Conv2D(3, (3, 3), "tanh", stride=1, pad="same"), (2, 5, 5, 2)),
        (lambda: Conv2D(2, (3, 3), "linear", stride=2, pad="same"), (2, 7, 6, 3)),
        (lambda: Conv2D(2, (3, 3), "sigmoid", stride=1, pad="valid"), (2, 6, 5, 2)),
        (lambda: Conv2D(2, (3, 2), "tanh", stride=2, pad="valid"), (2, 7, 7, 1)),
        (lambda: Conv2D(3, (2, 3), "linear", stride=1, pad=1), (1, 5, 4, 2)),
        (lambda: Conv2D(2, (5, 3), "elu", stride=(2, 1), pad=(2, 1)), (2, 9, 5, 2)),
        (lambda: Conv2D(2, (2, 2), "tanh", stride=1, pad="same"), (2, 4, 5, 2)),  # even: asym
        (lambda: Conv2D(2, (1, 1), "linear", stride=1, pad="valid"), (2, 3, 3, 4)),
        (lambda: Conv2D(3, (3, 3), "tanh", stride=2, bias=False), (2, 5, 5, 2)),
    ],
    "pool2d": [
        (lambda: Pool2D((2, 2), "max", stride=2), (2, 6, 6, 3)),
        (lambda: Pool2D((3, 3), "max", stride=1), (2, 5, 6, 2)),
        (lambda: Pool2D((3, 2), "max", stride=2, pad=1), (1, 7, 5, 2)),
        (lambda: Pool2D((2, 2), "average", stride=2), (2, 6, 6, 3)),
        (lambda: Pool2D((3, 3), "average", stride=1, pad=1), (2, 5, 5, 2)),
        (lambda: Pool2D((2, 3), "average", stride=(1, 2)), (1, 5, 7, 2)),
    ],
    "flatten": [(lambda: Flatten(), (3, 2, 4, 2))],
    "dropout": [(lambda: Dropout(0.4), (4, 6)), (lambda: Dropout(0.0), (2, 3, 3, 1))],
    "activation": [
        (lambda: ActivationLayer("tanh"), (3, 4)),
        (lambda: ActivationLayer({"type": "elu", "alpha": 0.5}), (2, 3, 3, 2)),
        (lambda: ActivationLayer("softmax"), (2, 3, 2, 4)),
    ],
    "batch_norm": [  # training mode: batch statistics
        (lambda: BatchNorm(), (4, 5)),
        (lambda: BatchNorm(momentum=0.5, eps=1e-3), (2, 3, 4, 3)),
        (lambda: BatchNorm(), (1, 3, 3, 2)),  # one image: rows * cols values per channel
    ],
    "layer_norm": [(lambda: LayerNorm(), (3, 5)), (lambda: LayerNorm(eps=1e-3), (2, 3, 2, 4))],
    "global_avg_pool": [(lambda: GlobalAvgPool(), (2, 3, 4, 3))],
    "global_max_pool": [(lambda: GlobalMaxPool(), (2, 3, 4, 3))],
    "residual": [
        # identity shortcut
        (
            lambda: Residual([Conv2D(3, 3, "tanh"), BatchNorm(), Conv2D(3, 3)], "identity", "tanh"),
            (2, 5, 5, 3),
        ),
        # projection with stride 2 (auto: the layers halve the size and change the channels)
        (
            lambda: Residual([Conv2D(4, 3, "tanh", stride=2), Conv2D(4, 3)], "auto", "elu"),
            (2, 5, 5, 2),
        ),
        # a projection on request, on vectors; dropout inside (the same mask every call)
        (lambda: Residual([Dropout(0.3), FullyConnected(5, "tanh")], "projection", "tanh"), (3, 5)),
        (lambda: Residual([FullyConnected(4, "tanh"), LayerNorm()], "auto", "linear"), (3, 6)),
        # nested: a residual inside a concat branch inside a residual, and layer specs
        (
            lambda: Residual(
                [
                    Concat(
                        [[Residual([Conv2D(2, 3, "tanh")], activation="tanh")], ["batch_norm"], []]
                    ),
                    {"type": "conv2d", "n_out": 3, "kernel_shape": 1},
                ],
                activation="sigmoid",
            ),
            (2, 4, 4, 3),
        ),
        # repeat: two copies of a bias-free conv, each with its own weights
        (
            lambda: Residual(
                [{"type": "conv2d", "n_out": 2, "activation": "tanh", "bias": False, "repeat": 2}]
            ),
            (2, 4, 4, 2),
        ),
    ],
    "concat": [
        (
            lambda: Concat(
                [[Conv2D(2, 3, "tanh")], [Pool2D(3, "max", stride=1, pad=1)], [BatchNorm()]]
            ),
            (2, 4, 5, 3),
        ),
        (lambda: Concat([[FullyConnected(3, "tanh")], [LayerNorm()], []]), (3, 4)),
    ],
}


def _layer_cases():
    for name, cases in sorted(LAYER_CASES.items()):
        for index, (make, shape) in enumerate(cases):
            yield pytest.param(make, shape, id=f"{name}-{index}")


@pytest.mark.parametrize("make,shape", list(_layer_cases()))
def test_layer_gradient(make, shape):
    layer = make()
    rng = np.random.default_rng(3)
    X = rng.normal(size=shape)
    layer.build(shape[1:], rng=np.random.default_rng(4), dtype=np.float64)
    for value in layer.parameters.values():
        value[...] = rng.normal(size=value.shape)  # also non-zero biases
    R = rng.normal(size=(shape[0],) + layer.output_shape(shape[1:]))

    def objective():
        layer.rng = np.random.default_rng(5)  # the same dropout mask every call
        return float(np.sum(layer.forward(X) * R))

    objective()
    dX = layer.backward(R)
    assert dX.shape == X.shape
    assert relative_error(dX, numerical_gradient(objective, X)) < TOL
    for key, value in layer.parameters.items():
        objective()
        layer.backward(R)
        analytic = layer.gradients[key].copy()
        assert relative_error(analytic, numerical_gradient(objective, value)) < TOL, key


def test_every_registered_component_has_a_gradient_check():
    assert set(LAYERS.names()) == set(LAYER_CASES)
    assert set(ACTIVATIONS.names()) == set(ACTIVATION_CASES)
    assert set(LOSSES.names()) == set(LOSS_CASES)


def _network_cases():
    yield (
        "mlp-softmax-ce",
        lambda: (
            [FullyConnected(6, "relu"), Dropout(0.3), FullyConnected(4, "softmax")],
            "cross_entropy",
            (5,),
        ),
    )
    yield (
        "cnn-softmax-ce",
        lambda: (
            [
                Conv2D(3, (3, 3), "relu", pad="same"),
                Pool2D((2, 2), "max", stride=2),
                Conv2D(4, (3, 3), "tanh", stride=2, pad=1),
                Pool2D((2, 2), "average", stride=1),
                Flatten(),
                FullyConnected(3, "softmax"),
            ],
            "cross_entropy",
            (8, 7, 2),
        ),
    )
    yield (
        "mlp-l2",
        lambda: (
            [FullyConnected(5, "elu"), FullyConnected(2, "linear")],
            "l2",
            (3,),
        ),
    )
    yield (
        "sigmoid-ce",
        lambda: (
            [FullyConnected(4, "arctan"), FullyConnected(3, "sigmoid")],
            "cross_entropy",
            (4,),
        ),
    )

    yield (
        "resnet-bn-gap-ce-options",
        lambda: (
            [
                Conv2D(3, (3, 3), "tanh"),
                Residual(
                    [Conv2D(4, 3, "elu", stride=2), BatchNorm(), Conv2D(4, 3)], activation="tanh"
                ),
                Residual([BatchNorm(), ActivationLayer("tanh"), Conv2D(4, 3)], "identity", "elu"),
                GlobalAvgPool(),
                Dropout(0.2),
                FullyConnected(3, "softmax"),
            ],
            {"type": "cross_entropy", "label_smoothing": 0.1, "class_weights": [1.0, 2.0, 0.5]},
            (6, 6, 2),
        ),
    )
    yield (
        "concat-gmp-layernorm-bce",
        lambda: (
            [
                Conv2D(3, (3, 3), "tanh"),
                Concat([[Conv2D(2, 1, "tanh")], [Pool2D(3, "average", stride=1, pad=1)], []]),
                GlobalMaxPool(),
                LayerNorm(),
                FullyConnected(4, "sigmoid"),
            ],
            "binary_cross_entropy",
            (5, 5, 2),
        ),
    )
    yield (
        "mlp-residual-huber",
        lambda: (
            [
                FullyConnected(5, "tanh"),
                Residual([FullyConnected(5, "elu"), LayerNorm()], activation="linear"),
                FullyConnected(2),
            ],
            {"type": "huber", "delta": 0.5},
            (3,),
        ),
    )
    yield ("mlp-l1", lambda: ([FullyConnected(4, "tanh"), FullyConnected(2)], "l1", (3,)))
    yield (
        "activation-layer-softmax-ce",
        lambda: ([FullyConnected(4), ActivationLayer("softmax")], "cross_entropy", (3,)),
    )


def _targets(loss, n_out: int, rng) -> np.ndarray:
    """One-hot rows for cross-entropy, 0/1 for binary cross-entropy, reals otherwise."""
    kind = loss["type"] if isinstance(loss, dict) else loss
    if kind == "cross_entropy":
        return np.eye(n_out)[rng.integers(0, n_out, 4)]
    if kind == "binary_cross_entropy":
        return rng.integers(0, 2, size=(4, n_out)).astype(float)
    return rng.normal(size=(4, n_out))


@pytest.mark.parametrize("name,make", list(_network_cases()))
def test_network_gradient(name, make):
    layers, loss, input_shape = make()
    net = NeuralNetwork(layers, loss, seed=7, dtype="float64", input_shape=input_shape)
    rng = np.random.default_rng(8)
    X = rng.normal(size=(4,) + input_shape)
    n_out = net.output_shapes(input_shape)[-1][0]
    Y = _targets(loss, n_out, rng)
    state = net.rng.bit_generator.state
    out = net.forward(X)
    assert np.isclose(net.backward(Y, out), net.loss_value(Y, out))
    net.rng.bit_generator.state = state  # the same dropout mask in the check
    results = check_network(net, X, Y, samples=10**6)
    assert [r.key for r in results] == [key for key, _, _ in net.param_grads()]
    for r in results:
        assert r.checked == np.prod(r.shape), (r.index, r.parameter)
        assert r.max_relative_error < TOL, (r.index, r.parameter)


def test_numerical_gradient_of_a_known_function():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    grad = numerical_gradient(lambda: float(np.sum(x**3)), x)
    np.testing.assert_allclose(grad, 3 * x**2, rtol=1e-8)
    assert x.tolist() == [[1.0, -2.0], [0.5, 3.0]]  # restored


def test_relative_error_is_relative_to_the_gradients_scale():
    assert relative_error([1.0, 100.0], [1.5, 100.0]) == pytest.approx(0.005)
    assert relative_error([1.0], [1.5], scale=100.0) == pytest.approx(0.005)
    assert relative_error([], []) == 0.0
    with pytest.raises(ValueError, match="shapes differ"):
        relative_error([1.0, 2.0], [1.0])


def test_check_network_finds_a_wrong_gradient(monkeypatch):
    net = NeuralNetwork(
        [FullyConnected(3, "tanh"), FullyConnected(2, "linear")],
        "l2",
        dtype="float64",
        input_shape=(4,),
    )
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(5, 4)), rng.normal(size=(5, 2))
    original = FullyConnected.backward_linear

    def off_by_one_percent(self, dLdZ):
        dLdX = original(self, dLdZ)
        self.gradients["b"] = self.gradients["b"] * 1.01
        return dLdX

    monkeypatch.setattr(FullyConnected, "backward_linear", off_by_one_percent)
    errors = {(r.index, r.parameter): r.max_relative_error for r in check_network(net, X, Y)}
    assert errors[(0, "W")] < TOL and errors[(1, "W")] < TOL
    assert 0.005 < errors[(0, "b")] < 0.02 and 0.005 < errors[(1, "b")] < 0.02

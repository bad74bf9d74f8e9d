"""PyTorch as an optional oracle (float64) for the components of modern networks: batch
and layer normalization, global pooling, a residual block with a projection shortcut,
cross-entropy with label smoothing and class weights, binary cross-entropy, Huber and L1.
Skipped without torch."""

from __future__ import annotations

import numpy as np
import pytest

from nnctl.core import (
    BatchNorm,
    Conv2D,
    FullyConnected,
    GlobalAvgPool,
    GlobalMaxPool,
    LayerNorm,
    NeuralNetwork,
    Residual,
    initialize_loss,
)

torch = pytest.importorskip("torch")
F = torch.nn.functional
TIGHT = {"rtol": 1e-10, "atol": 1e-12}


def nchw(X: np.ndarray):
    return torch.tensor(X.transpose(0, 3, 1, 2), requires_grad=True)  # NHWC → NCHW


def nhwc(T) -> np.ndarray:
    return T.detach().numpy().transpose(0, 2, 3, 1)  # NCHW → NHWC


def oihw(W: np.ndarray):
    return torch.tensor(W.transpose(3, 2, 0, 1), requires_grad=True)  # HWIO → OIHW


@pytest.mark.parametrize("shape", [(5, 4, 3, 3), (6, 4)])
def test_batch_norm_training_and_running_statistics_match_torch(shape):
    rng = np.random.default_rng(0)
    bn = BatchNorm(momentum=0.9, eps=1e-5)  # = torch momentum 0.1
    bn.build(shape[1:], dtype=np.float64)
    bn.parameters["gamma"][...] = rng.normal(size=shape[-1])
    bn.parameters["beta"][...] = rng.normal(size=shape[-1])
    C = shape[-1]
    gamma = torch.tensor(bn.parameters["gamma"].copy(), requires_grad=True)
    beta = torch.tensor(bn.parameters["beta"].copy(), requires_grad=True)
    running_mean, running_var = (
        torch.zeros(C, dtype=torch.float64),
        torch.ones(C, dtype=torch.float64),
    )
    to_torch = nchw if len(shape) == 4 else (lambda a: torch.tensor(a, requires_grad=True))
    from_torch = nhwc if len(shape) == 4 else (lambda t: t.detach().numpy())
    for step in range(3):
        X = rng.normal(1.0 + step, 2.0, size=shape)
        R = rng.normal(size=shape)
        Y = bn.forward(X)
        dX = bn.backward(R)
        Xt = to_torch(X)
        Yt = F.batch_norm(Xt, running_mean, running_var, gamma, beta, True, 0.1, 1e-5)
        gamma.grad = beta.grad = None
        (Yt * to_torch(R)).sum().backward()
        np.testing.assert_allclose(Y, from_torch(Yt), **TIGHT)
        np.testing.assert_allclose(dX, from_torch(Xt.grad), **TIGHT)
        np.testing.assert_allclose(bn.gradients["gamma"], gamma.grad.numpy(), **TIGHT)
        np.testing.assert_allclose(bn.gradients["beta"], beta.grad.numpy(), **TIGHT)
    np.testing.assert_allclose(bn.buffers["running_mean"], running_mean.numpy(), **TIGHT)
    np.testing.assert_allclose(bn.buffers["running_var"], running_var.numpy(), **TIGHT)

    bn.training = False  # evaluation: the running statistics
    X, R = rng.normal(size=shape), rng.normal(size=shape)
    Y = bn.forward(X)
    dX = bn.backward(R)
    Xt = to_torch(X)
    Yt = F.batch_norm(Xt, running_mean, running_var, gamma, beta, False, 0.1, 1e-5)
    (Yt * to_torch(R)).sum().backward()
    np.testing.assert_allclose(Y, from_torch(Yt), **TIGHT)
    np.testing.assert_allclose(dX, from_torch(Xt.grad), **TIGHT)


@pytest.mark.parametrize("shape", [(4, 6), (2, 3, 3, 5)])
def test_layer_norm_matches_torch(shape):
    rng = np.random.default_rng(1)
    ln = LayerNorm(eps=1e-5)
    ln.build(shape[1:], dtype=np.float64)
    ln.parameters["gamma"][...] = rng.normal(size=shape[-1])
    ln.parameters["beta"][...] = rng.normal(size=shape[-1])
    X, R = rng.normal(2.0, 3.0, size=shape), rng.normal(size=shape)
    Y = ln.forward(X)
    dX = ln.backward(R)
    Xt = torch.tensor(X, requires_grad=True)  # the last axis in both layouts
    gamma = torch.tensor(ln.parameters["gamma"], requires_grad=True)
    beta = torch.tensor(ln.parameters["beta"], requires_grad=True)
    Yt = F.layer_norm(Xt, (shape[-1],), gamma, beta, 1e-5)
    (Yt * torch.tensor(R)).sum().backward()
    np.testing.assert_allclose(Y, Yt.detach().numpy(), **TIGHT)
    np.testing.assert_allclose(dX, Xt.grad.numpy(), **TIGHT)
    np.testing.assert_allclose(ln.gradients["gamma"], gamma.grad.numpy(), **TIGHT)
    np.testing.assert_allclose(ln.gradients["beta"], beta.grad.numpy(), **TIGHT)


def test_global_pools_match_torch_with_ties():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(2, 5, 4, 3))
    X[:, 1:4] = 0.0
    X[0, :, :, 1] = 0.0  # a channel that is all ties
    X[1, 4, 3, 2] = X[1, 0, 0, 2] = 9.0  # a tie at the maximum
    for layer, pool in (
        (GlobalMaxPool(), F.adaptive_max_pool2d),
        (GlobalAvgPool(), F.adaptive_avg_pool2d),
    ):
        Y = layer.forward(X)
        R = rng.normal(size=Y.shape)
        dX = layer.backward(R)
        Xt = nchw(X)
        Yt = pool(Xt, 1)[:, :, 0, 0]
        (Yt * torch.tensor(R)).sum().backward()
        np.testing.assert_allclose(Y, Yt.detach().numpy(), **TIGHT)
        np.testing.assert_allclose(dX, nhwc(Xt.grad), **TIGHT)


def test_residual_block_with_projection_matches_torch():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(3, 7, 7, 2))  # odd size: "same" with stride 2 pads 1 on each side
    block = Residual([Conv2D(4, 3, "relu", stride=2), BatchNorm(), Conv2D(4, 3)], "auto", "relu")
    block.build(X.shape[1:], rng=rng, dtype=np.float64)
    for key, value in block.parameters.items():
        if key.endswith(".b"):
            value[...] = rng.normal(scale=0.1, size=value.shape)
    Y = block.forward(X)
    R = rng.normal(size=Y.shape)
    block.needs_input_grad = True
    dX = block.backward(R)

    p = block.parameters
    W0, W2, Ws = oihw(p["0.W"]), oihw(p["2.W"]), oihw(p["shortcut.W"])
    b0, b2 = (torch.tensor(p[k][0], requires_grad=True) for k in ("0.b", "2.b"))
    gamma, beta = (torch.tensor(p[k], requires_grad=True) for k in ("1.gamma", "1.beta"))
    Xt = nchw(X)
    h = F.relu(F.conv2d(Xt, W0, b0, stride=2, padding=1))
    h = F.batch_norm(h, None, None, gamma, beta, True, 0.1, 1e-5)
    h = F.conv2d(h, W2, b2, padding=1)
    Yt = F.relu(h + F.conv2d(Xt, Ws, stride=2))  # 1x1, no bias
    (Yt * torch.tensor(R.transpose(0, 3, 1, 2))).sum().backward()

    np.testing.assert_allclose(Y, nhwc(Yt), **TIGHT)
    np.testing.assert_allclose(dX, nhwc(Xt.grad), **TIGHT)
    grads = block.gradients
    for key, tensor in (("0.W", W0), ("2.W", W2), ("shortcut.W", Ws)):
        np.testing.assert_allclose(grads[key], tensor.grad.numpy().transpose(2, 3, 1, 0), **TIGHT)
    for key, tensor in (("0.b", b0), ("2.b", b2), ("1.gamma", gamma), ("1.beta", beta)):
        np.testing.assert_allclose(grads[key].reshape(-1), tensor.grad.numpy(), **TIGHT)


def test_resnet_step_with_smoothed_weighted_cross_entropy_matches_torch():
    rng = np.random.default_rng(4)
    loss = {"type": "cross_entropy", "label_smoothing": 0.1, "class_weights": [1.0, 2.0, 0.5]}
    layers = [
        Residual([Conv2D(4, 3, "relu"), Conv2D(4, 3)]),
        GlobalAvgPool(),
        FullyConnected(3, "softmax"),
    ]
    net = NeuralNetwork(layers, loss, dtype="float64", input_shape=(5, 5, 2))
    X = rng.normal(size=(4, 5, 5, 2))
    labels = np.array([0, 1, 2, 1])
    value = net.backward(np.eye(3)[labels], net.forward(X))

    params = [torch.tensor(p, requires_grad=True) for _, p, _ in net.param_grads()]
    W0, b0, W1, b1, Ws, W3, b3 = params
    Xt = nchw(X)
    h = F.relu(F.conv2d(Xt, W0.permute(3, 2, 0, 1), b0[0], padding=1))  # HWIO → OIHW
    h = F.conv2d(h, W1.permute(3, 2, 0, 1), b1[0], padding=1)
    h = F.relu(h + F.conv2d(Xt, Ws.permute(3, 2, 0, 1)))
    logits = h.mean(dim=(2, 3)) @ W3 + b3
    weight = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    loss_t = F.cross_entropy(logits, torch.tensor(labels), weight=weight, label_smoothing=0.1)
    loss_t.backward()
    assert np.isclose(value, loss_t.item(), rtol=1e-12)
    for (key, _, grad), p in zip(net.param_grads(), params):
        np.testing.assert_allclose(grad, p.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=key)


@pytest.mark.parametrize(
    "smoothing,weights",
    [(0.1, None), (0.0, [1.0, 3.0, 0.5, 2.0]), (0.3, [0.2, 1.0, 4.0, 1.5]), (0.0, None)],
)
def test_cross_entropy_options_match_torch(smoothing, weights):
    rng = np.random.default_rng(5)
    Z = rng.normal(scale=2.0, size=(7, 4))
    labels = rng.integers(0, 4, 7)
    Y = np.eye(4)[labels]
    loss = initialize_loss(
        {"type": "cross_entropy", "label_smoothing": smoothing, "class_weights": weights}
    )
    Zt = torch.tensor(Z, requires_grad=True)
    weight = None if weights is None else torch.tensor(weights, dtype=torch.float64)
    expected = F.cross_entropy(Zt, torch.tensor(labels), weight=weight, label_smoothing=smoothing)
    expected.backward()
    P = torch.softmax(torch.tensor(Z), dim=1).numpy()
    assert np.isclose(loss.forward_logits(Y, Z), expected.item(), rtol=1e-12)
    assert np.isclose(loss.forward(Y, P), expected.item(), rtol=1e-12)
    np.testing.assert_allclose(loss.backward_logits(Y, P), Zt.grad.numpy(), **TIGHT)


def test_binary_cross_entropy_matches_torch():
    rng = np.random.default_rng(6)
    Z = rng.normal(scale=3.0, size=(5, 4))
    Y = rng.integers(0, 2, size=(5, 4)).astype(np.float64)
    loss = initialize_loss("binary_cross_entropy")
    Zt = torch.tensor(Z, requires_grad=True)
    expected = F.binary_cross_entropy_with_logits(Zt, torch.tensor(Y))
    expected.backward()
    P = torch.sigmoid(torch.tensor(Z))
    Pt = P.clone().requires_grad_(True)
    from_probabilities = F.binary_cross_entropy(Pt, torch.tensor(Y))
    from_probabilities.backward()
    assert np.isclose(loss.forward_logits(Y, Z), expected.item(), rtol=1e-12)
    assert np.isclose(loss.forward(Y, P.numpy()), from_probabilities.item(), rtol=1e-12)
    np.testing.assert_allclose(loss.backward_logits(Y, P.numpy()), Zt.grad.numpy(), **TIGHT)
    np.testing.assert_allclose(loss.backward(Y, P.numpy()), Pt.grad.numpy(), **TIGHT)


@pytest.mark.parametrize(
    "spec,torch_loss",
    [
        ({"type": "huber", "delta": 1.0}, lambda a, b: F.huber_loss(a, b, delta=1.0)),
        ({"type": "huber", "delta": 0.3}, lambda a, b: F.huber_loss(a, b, delta=0.3)),
        ("l1", F.l1_loss),
    ],
)
def test_regression_losses_match_torch(spec, torch_loss):
    rng = np.random.default_rng(7)
    Y, Y_hat = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    loss = initialize_loss(spec)
    Yt = torch.tensor(Y_hat, requires_grad=True)
    expected = torch_loss(Yt, torch.tensor(Y))
    expected.backward()
    assert np.isclose(loss.forward(Y, Y_hat), expected.item(), rtol=1e-12)
    np.testing.assert_allclose(loss.backward(Y, Y_hat), Yt.grad.numpy(), **TIGHT)

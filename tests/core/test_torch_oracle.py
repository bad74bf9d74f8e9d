"""PyTorch as an optional oracle (float64): conv, max/average pool and fully connected
layers, forward and backward, and a whole fused CNN step. Skipped without torch (the
``oracle`` extra installs it; CI does)."""

from __future__ import annotations

import numpy as np
import pytest

from nnctl.core import Conv2D, Flatten, FullyConnected, NeuralNetwork, Pool2D

torch = pytest.importorskip("torch")
F = torch.nn.functional
# One thread: these tensors are tiny, and torch's pool would only compete with the rest of
# the suite for the cores.
torch.set_num_threads(1)


def tensor(X: np.ndarray, grad: bool = False):
    """A float64 torch tensor of ``X``, so the comparisons can be held to 1e-12."""
    return torch.tensor(X, dtype=torch.float64, requires_grad=grad)


def nchw(X: np.ndarray):
    return tensor(X.transpose(0, 3, 1, 2), grad=True)  # NHWC → NCHW


def nhwc(T) -> np.ndarray:
    return T.detach().numpy().transpose(0, 2, 3, 1)  # NCHW → NHWC


@pytest.mark.parametrize(
    "kernel,stride,pad,in_shape",
    [((3, 3), 1, 1, (2, 7, 6, 3)), ((3, 2), 2, 0, (2, 8, 7, 2)), ((5, 5), 1, 2, (1, 9, 9, 1))],
)
def test_conv_matches_torch(kernel, stride, pad, in_shape):
    rng = np.random.default_rng(0)
    layer = Conv2D(4, kernel, "linear", stride=stride, pad=pad)
    layer.build(in_shape[1:], rng=rng, dtype=np.float64)
    layer.parameters["b"][...] = rng.normal(size=(1, 4))
    X = rng.normal(size=in_shape)
    Y = layer.forward(X)
    R = rng.normal(size=Y.shape)
    dX = layer.backward(R)
    W = tensor(layer.parameters["W"].transpose(3, 2, 0, 1), grad=True)  # OIHW
    b = tensor(layer.parameters["b"][0], grad=True)
    Xt = nchw(X)
    Yt = F.conv2d(Xt, W, b, stride=stride, padding=pad)
    (Yt * tensor(R.transpose(0, 3, 1, 2))).sum().backward()
    np.testing.assert_allclose(Y, nhwc(Yt), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dX, nhwc(Xt.grad), rtol=1e-12, atol=1e-12)
    dW = W.grad.numpy().transpose(2, 3, 1, 0)  # OIHW → HWIO
    np.testing.assert_allclose(layer.gradients["W"], dW, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.gradients["b"][0], b.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", ["max", "average"])
@pytest.mark.parametrize("kernel,stride", [(2, 2), (3, 1), (3, 2)])
def test_pool_matches_torch(mode, kernel, stride):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(2, 7, 8, 3))
    X[:, :3] = 0.0  # ties: torch also credits the first maximum
    layer = Pool2D(kernel, mode, stride=stride)
    Y = layer.forward(X)
    R = rng.normal(size=Y.shape)
    dX = layer.backward(R)
    Xt = nchw(X)
    pool = F.max_pool2d if mode == "max" else F.avg_pool2d
    Yt = pool(Xt, kernel, stride)
    (Yt * tensor(R.transpose(0, 3, 1, 2))).sum().backward()
    np.testing.assert_allclose(Y, nhwc(Yt), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dX, nhwc(Xt.grad), rtol=1e-12, atol=1e-12)


def test_fully_connected_matches_torch():
    rng = np.random.default_rng(2)
    layer = FullyConnected(5, "linear")
    layer.build((6,), rng=rng, dtype=np.float64)
    X, R = rng.normal(size=(4, 6)), rng.normal(size=(4, 5))
    Y = layer.forward(X)
    layer.needs_input_grad = True
    dX = layer.backward(R)
    Xt = tensor(X, grad=True)
    W = tensor(layer.parameters["W"], grad=True)
    Yt = Xt @ W + tensor(layer.parameters["b"])
    (Yt * tensor(R)).sum().backward()
    np.testing.assert_allclose(Y, Yt.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dX, Xt.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.gradients["W"], W.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_fused_cnn_step_matches_torch():
    rng = np.random.default_rng(3)
    layers = [
        Conv2D(4, 3, "relu"),
        Pool2D(2, "max", stride=2),
        Conv2D(5, 3, "relu"),
        Pool2D(2, "max", stride=2),
        Flatten(),
        FullyConnected(3, "softmax"),
    ]
    net = NeuralNetwork(layers, "cross_entropy", dtype="float64", input_shape=(8, 8, 2))
    X = rng.normal(size=(4, 8, 8, 2))
    X[:, :4] = 0.0  # zero background: ties after relu
    labels = rng.integers(0, 3, 4)
    loss = net.backward(np.eye(3)[labels], net.forward(X))

    params = [tensor(p, grad=True) for _, p, _ in net.param_grads()]
    W1, b1, W2, b2, W3, b3 = params
    h = nchw(X)
    for W, b in ((W1, b1), (W2, b2)):
        h = F.max_pool2d(F.relu(F.conv2d(h, W.permute(3, 2, 0, 1), b[0], padding=1)), 2)
    logits = h.permute(0, 2, 3, 1).reshape(4, -1) @ W3 + b3  # flatten in NHWC order
    loss_t = F.cross_entropy(logits, torch.tensor(labels))
    loss_t.backward()
    assert np.isclose(loss, loss_t.item(), rtol=1e-12)
    for (key, _, grad), p in zip(net.param_grads(), params):
        np.testing.assert_allclose(grad, p.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=key)

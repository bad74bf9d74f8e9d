"""The batch split (``nnctl.core.parallel``): a split pass equals the unsplit one to float
rounding, deterministically, with the same dropout masks and generator state; batch
statistics are the whole batch's; the switch and its default."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from nnctl.core import (
    BatchNorm,
    Conv2D,
    Dropout,
    Flatten,
    FullyConnected,
    NeuralNetwork,
    Pool2D,
    Residual,
)
from nnctl.core.checks import ArgumentError
from nnctl.core.parallel import THREADS_VARIABLE, default_threads, part_rows


def mlp(loss="cross_entropy", dtype="float64", dropout=0.3, out="softmax"):
    layers = [FullyConnected(16, "relu"), Dropout(dropout), FullyConnected(4, out)]
    return NeuralNetwork(layers, loss, seed=2, dtype=dtype, input_shape=(10,))


def cnn(dtype="float64"):
    layers = [
        Conv2D(4, 3, "relu"),
        Pool2D(2, "max", stride=2),
        Conv2D(5, 3, "relu"),
        Pool2D(2, "max", stride=2),
        Flatten(),
        Dropout(0.25),
        FullyConnected(4, "softmax"),
    ]
    return NeuralNetwork(layers, "cross_entropy", seed=2, dtype=dtype, input_shape=(8, 8, 2))


def resnet(dtype="float64", norm=False):
    inner = [Conv2D(3, 3, "relu"), *([BatchNorm()] if norm else []), Conv2D(3, 3)]
    layers = [Conv2D(3, 3, "relu"), Residual(inner), Flatten(), FullyConnected(4, "softmax")]
    return NeuralNetwork(layers, "cross_entropy", seed=2, dtype=dtype, input_shape=(6, 6, 2))


def data(net, n, seed=1, zero_background=False):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, *net.input_shape))
    if zero_background:  # ties in every pool window, as on real images
        X[:, : net.input_shape[0] // 2] = 0.0
    return X.astype(net.dtype), np.eye(4, dtype=net.dtype)[rng.integers(0, 4, n)]


def step(net, X, Y, threads):
    """(output, loss, gradients, generator state) of one pass on ``threads`` parts."""
    net.threads, net.split_min_values = threads, 0
    out = net.forward(X)
    assert (net._split is not None) == (threads > 1)
    loss = net.backward(Y, out)
    grads = {key: grad.copy() for key, _, grad in net.param_grads()}
    return out, loss, grads, net.rng.bit_generator.state


def split_and_whole(make, n, threads=2, **data_options):
    """The same step on two identical networks, split and unsplit."""
    split, whole = make(), make()
    X, Y = data(split, n, **data_options)
    return step(split, X, Y, threads), step(whole, X, Y, 1)


def assert_close_steps(a, b, rtol):
    np.testing.assert_allclose(a[0], b[0], rtol=rtol, atol=rtol)
    assert a[1] == pytest.approx(b[1], rel=rtol, abs=rtol)
    assert a[2].keys() == b[2].keys()
    for key in a[2]:
        np.testing.assert_allclose(a[2][key], b[2][key], rtol=rtol, atol=rtol, err_msg=key)
    assert a[3] == b[3]  # the generator drew the same numbers


@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("n", [8, 7])  # odd batches: parts of 4 and 3
@pytest.mark.parametrize(
    "make",
    [
        mlp,
        cnn,
        resnet,
        lambda: resnet(norm=True),
        lambda: mlp(loss="l2", out="sigmoid"),  # the loss's own gradient, not the fused one
        lambda: mlp(loss={"type": "cross_entropy", "class_weights": [1, 2, 0.5, 3]}),
        lambda: mlp(loss="binary_cross_entropy", out="sigmoid"),
    ],
    ids=["mlp", "cnn", "resnet", "resnet-bn", "l2", "weighted-ce", "bce"],
)
def test_split_step_equals_the_whole_step_to_rounding(make, n, threads):
    split, whole = split_and_whole(make, n, threads)
    assert_close_steps(split, whole, rtol=1e-12)


def test_split_float32_step_is_close_and_ties_resolve_alike():
    split, whole = split_and_whole(lambda: cnn("float32"), 9, zero_background=True)
    assert_close_steps(split, whole, rtol=2e-5)


def test_dropout_masks_are_the_whole_batchs_rows():
    net = mlp()
    X, _ = data(net, 9)
    net.threads, net.split_min_values = 2, 0
    net.forward(X)
    masks = [replica.layers[1].cache["mask"] for replica in net._split.replicas]
    reference = mlp()
    reference.threads = 1
    reference.forward(X)
    np.testing.assert_array_equal(np.concatenate(masks), reference.layers[1].cache["mask"])


def test_split_is_fused_exactly_like_the_plain_layers():
    """Each part runs its own fused units: fused and plain split steps agree exactly."""
    net = cnn("float32")
    X, Y = data(net, 10, zero_background=True)
    state = net.rng.bit_generator.state
    net.fuse = True
    fused = step(net, X, Y, 2)
    net.rng.bit_generator.state = state
    net.fuse = False
    plain = step(net, X, Y, 2)
    np.testing.assert_array_equal(fused[0], plain[0])
    assert fused[1] == plain[1]
    for key in fused[2]:
        np.testing.assert_array_equal(fused[2][key], plain[2][key], err_msg=key)


def test_split_training_is_deterministic_and_continues_from_a_state_dict():
    def train(net, batches):
        net.threads, net.split_min_values = 2, 0
        for X, Y in batches:
            net.backward(Y, net.forward(X))
            for _, param, grad in net.param_grads():
                param -= 0.1 * grad
        return net.state_dict()

    batches = [data(cnn(), 9, seed=s) for s in range(4)]
    first, second = train(cnn(), batches), train(cnn(), batches)
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])
    resumed = cnn()
    train(resumed, batches[:2])
    state, rng = resumed.state_dict(), resumed.rng.bit_generator.state
    fresh = cnn()  # a new network (new replicas) from the saved state
    fresh.load_state_dict(state)
    fresh.rng.bit_generator.state = rng
    final = train(fresh, batches[2:])
    for key in first:
        np.testing.assert_array_equal(final[key], first[key])


def test_replicas_follow_replaced_parameters_and_modes():
    net = mlp()
    X, Y = data(net, 8)
    step(net, X, Y, 2)
    net.layers[0].parameters["W"] = net.layers[0].parameters["W"] * 2.0  # a new array
    net.eval()
    split_out = net.forward(X)
    net.threads = 1
    np.testing.assert_allclose(split_out, net.forward(X), rtol=1e-12)


def test_predict_with_the_split_gives_the_whole_batchs_loss():
    net = cnn()
    X, Y = data(net, 9)
    net.threads, net.split_min_values = 2, 0
    out, loss = net.predict(X, Y)
    assert net._split is not None
    net.threads = 1
    out_whole, loss_whole = net.predict(X, Y)
    np.testing.assert_allclose(out, out_whole, rtol=1e-12)
    assert loss == pytest.approx(loss_whole, rel=1e-12)


def test_split_batch_norm_uses_the_whole_batchs_statistics_and_updates_them_once():
    split, whole = resnet(norm=True), resnet(norm=True)
    for seed in range(3):  # running statistics over several steps
        X, Y = data(split, 9, seed=seed)
        step(split, X, Y, 2)
        step(whole, X, Y, 1)
    for net in (split, whole):
        net.eval()
    np.testing.assert_allclose(split.forward(X), whole.forward(X), rtol=1e-12)
    buffers = [(k, v) for k, v in split.state_dict().items() if "running" in k]
    assert len(buffers) == 2
    reference = whole.state_dict()
    for key, value in buffers:
        np.testing.assert_allclose(value, reference[key], rtol=1e-12, err_msg=key)


def test_a_failing_part_breaks_no_barrier_for_good():
    """One part fails before the batch norm: the other part, waiting there, is released,
    the caller gets the failure, and the next pass runs."""
    net, whole = resnet(norm=True), resnet(norm=True)
    X, Y = data(net, 8)
    net.threads, net.split_min_values = 2, 0
    net.forward(X)
    failing = net._split.replicas[1].layers[0]

    def fail(_):
        raise ValueError("part 1 failed")

    failing.forward = fail
    outcome = []

    def run():
        try:
            net.forward(X)
        except ValueError as error:
            outcome.append(error)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive() and len(outcome) == 1
    del failing.forward
    split = step(net, X, Y, 2)
    assert_close_steps(split, step(whole, X, Y, 1), rtol=1e-12)


def test_small_work_and_tiny_batches_stay_whole():
    net = mlp()
    X, _ = data(net, 8)
    net.threads = 2
    net.forward(X)  # 8 examples of a tiny network: below split_min_values values per part
    assert net._split is None
    net.split_min_values = 0
    net.forward(X[:1])  # fewer examples than parts
    assert net._split is None


def test_worker_errors_and_numpy_error_state_reach_the_caller():
    net = mlp()
    X, _ = data(net, 8)
    net.threads, net.split_min_values = 2, 0
    X[-1, :] = 1e300  # only the last part's softmax underflows
    with np.errstate(under="raise"), pytest.raises(FloatingPointError, match="underflow"):
        net.forward(X)
    with np.errstate(under="ignore"):
        out = net.forward(X)
    assert np.isfinite(out).all()


def test_threads_must_be_a_positive_integer():
    net = mlp()
    with pytest.raises(ArgumentError, match="threads"):
        net.threads = 0


def test_default_threads_from_the_environment(monkeypatch):
    monkeypatch.setenv(THREADS_VARIABLE, "1")
    assert default_threads() == 1 and mlp().threads == 1
    monkeypatch.setenv(THREADS_VARIABLE, "3")
    assert default_threads() == 3
    monkeypatch.setenv(THREADS_VARIABLE, "two")
    with pytest.raises(ArgumentError, match=THREADS_VARIABLE):
        default_threads()
    monkeypatch.delenv(THREADS_VARIABLE)
    assert default_threads() in (1, 2)


def test_part_rows_cover_the_batch_in_near_equal_parts():
    assert part_rows(7, 2) == [slice(0, 3), slice(3, 7)]
    assert [s.stop - s.start for s in part_rows(10, 3)] == [3, 3, 4]

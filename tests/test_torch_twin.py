"""The PyTorch twin of a config (``benchmarks/torch_translate.py``) is the network nnctl
builds: with nnctl's weights copied in, one float64 training step gives the same loss,
gradients and running statistics, and evaluation the same outputs. The twin's crop and
flip produce only images nnctl's augmentation can produce. Skipped without torch."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from nnctl.config import load_config
from nnctl.config.build import build_network
from nnctl.data.augment import Flip, RandomCrop

torch = pytest.importorskip("torch")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import torch_translate

CONFIGS = ["fashion-mnist-resnet.yaml", "mnist-cnn.yaml"]


def twins(name: str):
    """(nnctl network, torch model with the same weights), float64, for a shipped config."""
    config = load_config(ROOT / "configs" / name, ["model.dtype=float64"])
    model = config.data["model"]
    net = build_network(config, SimpleNamespace(input_shape=(28, 28, 1), n_classes=10))
    twin = torch_translate.torch_model(model["layers"], (28, 28, 1), final_logits=True)
    twin = twin.double()
    params = list(twin.parameters())
    ours = list(net.param_grads())
    assert len(params) == len(ours)
    with torch.no_grad():
        for (key, p, _), t in zip(ours, params):
            if p.ndim == 4:  # HWIO -> OIHW
                value = p.transpose(3, 2, 0, 1)
            elif p.ndim == 2 and t.ndim == 2:  # (n_in, n_out) -> (out, in)
                value = p.T
            else:
                value = p.reshape(t.shape)
            assert value.shape == tuple(t.shape), key
            t.copy_(torch.from_numpy(np.ascontiguousarray(value)))
    return net, twin, model["loss"]


@pytest.mark.parametrize("name", CONFIGS)
def test_twin_step_matches_nnctl(name):
    net, twin, loss = twins(name)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 28, 28, 1))
    labels = np.array([0, 3, 9, 3, 1, 7])
    net.train()
    value = net.backward(np.eye(10)[labels], net.forward(X))
    twin.train()
    logits = twin(torch.from_numpy(X.transpose(0, 3, 1, 2).copy()))
    smoothing = loss.get("label_smoothing", 0.0) if isinstance(loss, dict) else 0.0
    loss_t = torch.nn.functional.cross_entropy(
        logits, torch.from_numpy(labels), label_smoothing=smoothing or 0.0
    )
    loss_t.backward()
    assert np.isclose(value, loss_t.item(), rtol=1e-10)
    for (key, p, grad), t in zip(net.param_grads(), twin.parameters()):
        expected = t.grad.numpy()
        if grad.ndim == 4:
            expected = expected.transpose(2, 3, 1, 0)
        elif grad.ndim == 2 and expected.ndim == 2:
            expected = expected.T
        np.testing.assert_allclose(
            grad, expected.reshape(grad.shape), rtol=1e-7, atol=1e-10, err_msg=key
        )
    buffers = [b for name, b in twin.named_buffers() if "running" in name]
    ours = _running(net)
    assert len(ours) == len(buffers)
    for mine, theirs in zip(ours, buffers):
        np.testing.assert_allclose(mine.reshape(-1), theirs.numpy(), rtol=1e-10, atol=1e-12)

    net.eval()
    twin.eval()
    probabilities = net.forward(X)
    with torch.no_grad():
        expected = torch.softmax(twin(torch.from_numpy(X.transpose(0, 3, 1, 2).copy())), 1)
    np.testing.assert_allclose(probabilities, expected.numpy(), rtol=1e-8, atol=1e-12)


def _running(net) -> list[np.ndarray]:
    """The running means and variances of every batch norm, in layer order."""
    return [
        value
        for key, value in net.state_dict().items()
        if key.endswith(("running_mean", "running_var"))
    ]


def mirrored_crops(X: np.ndarray, out: np.ndarray, pad: int, fill: float) -> int:
    """Check that every image of ``out`` is a crop of ``X`` padded by ``pad`` with ``fill``,
    mirrored left-right or not; return how many are mirrored."""
    padded = np.pad(X, ((0, 0), (pad, pad), (pad, pad), (0, 0)), constant_values=fill)
    rows, cols = X.shape[1:3]
    mirrored = 0
    for i, image in enumerate(out):
        crops = [
            padded[i, r : r + rows, c : c + cols]
            for r in range(2 * pad + 1)
            for c in range(2 * pad + 1)
        ]
        plain = any(np.array_equal(image, crop) for crop in crops)
        flipped = any(np.array_equal(image, crop[:, ::-1]) for crop in crops)
        assert plain or flipped, f"image {i} is no crop or mirrored crop"
        mirrored += flipped and not plain
    return mirrored


def test_twin_crop_and_flip_draw_what_nnctl_draws():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(32, 6, 5, 2)).astype(np.float32)
    pad, fill = 2, -0.5
    augment = torch_translate.augmenter(
        [
            {"type": "random_crop", "pad": pad, "padding_mode": "constant"},
            {"type": "flip", "horizontal": True, "vertical": False, "p": 0.5},
        ],
        fill,
        seed=0,
    )
    theirs = augment(torch.from_numpy(X.transpose(0, 3, 1, 2).copy()))
    theirs = theirs.numpy().transpose(0, 2, 3, 1)
    ours = Flip()(RandomCrop(pad, fill=fill)(X, rng), rng)
    for out in (theirs, ours):
        assert 0 < mirrored_crops(X, out, pad, fill) < len(X)
        assert not np.array_equal(out, X)

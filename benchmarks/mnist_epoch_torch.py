"""One training epoch of configs/mnist-cnn.yaml's network in PyTorch (2 threads), for the
per-epoch comparison with ``nnctl train configs/mnist-cnn.yaml``.

    python benchmarks/mnist_epoch_torch.py [--epochs 1]

Same data (MNIST, standardized, 55000 training images after a 5000 validation split),
batch 64, SGD lr 0.05 momentum 0.9, global gradient clipping at 5. PyTorch is optional and
never a dependency of nnctl (pip install torch==2.13.0).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nnctl.config import load_config
from nnctl.data import iterate_batches, load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    import torch
    from torch import nn

    torch.set_num_threads(2)
    torch.manual_seed(0)
    config = load_config(Path(__file__).resolve().parents[1] / "configs" / "mnist-cnn.yaml")
    splits = load(config.data["data"], seed=0)
    X = torch.from_numpy(np.ascontiguousarray(splits.train.X.transpose(0, 3, 1, 2)))  # NCHW
    y = torch.from_numpy(splits.train.y)
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10),
    )  # fmt: skip
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.default_rng(0)
    for epoch in range(args.epochs):
        started = time.perf_counter()
        for idx in iterate_batches(len(X), 64, rng):
            rows = torch.from_numpy(idx)
            optimizer.zero_grad()
            loss = loss_fn(model(X[rows]), y[rows])
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()
        seconds = time.perf_counter() - started
        print(f"torch epoch {epoch + 1}: {seconds:.1f}s, {len(X) / seconds:.0f} samples/s, "
              f"last loss {loss.item():.4f}")  # fmt: skip


if __name__ == "__main__":
    main()

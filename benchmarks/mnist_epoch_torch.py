"""Train a config's network in PyTorch with the recipe ``nnctl train`` uses, for the
whole-process comparison in ``benchmarks/epoch_benchmark.py``.

    python benchmarks/mnist_epoch_torch.py [--config configs/mnist-cnn.yaml]
        [--set KEY=VALUE ...] [--epochs 1] [--threads 2] [--json]

The recipe is read from the config (after ``--set`` overrides), as ``nnctl train`` reads it:
- data: ``nnctl.data.load`` (same set, validation split and preprocessing; for
  configs/mnist-cnn.yaml 55000 standardized training images and 5000 for validation);
  the batch order comes from ``iterate_batches`` with the trainer's generator
  (``default_rng([seed, 2])``) and ``data.batch_size``;
- the network: ``model.layers`` translated layer by layer (conv2d, pool2d, flatten,
  fully_connected; relu, sigmoid, tanh, linear activations; a softmax last layer with the
  cross-entropy loss becomes ``nn.CrossEntropyLoss`` on the logits), float32, PyTorch's
  default initialization;
- the optimizer: sgd (momentum, nesterov) or adam, weight decay, global gradient-norm
  clipping, the learning rate of nnctl's own schedule object set before every step;
- per epoch: training loss and accuracy summed as the trainer does, the validation set
  evaluated in batches of 500, a checkpoint of the model and optimizer written (and a
  best one when the validation loss improved); at the end the test set is evaluated with
  the best checkpoint.

``train.epochs`` is replaced by ``--epochs``. The timing lines go to stderr; ``--json`` prints
one JSON line on stdout: ``train_seconds`` (the training steps only, as nnctl's summary
counts them), ``process_seconds`` (the whole process, interpreter start included), the
per-epoch seconds and the test metrics. PyTorch is optional and never a dependency of nnctl
(``pip install torch==2.13.0``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import harness
import numpy as np

sys.path.insert(0, str(harness.ROOT))  # nnctl from this checkout, installed or not

from nnctl.config import load_config
from nnctl.core.schedules import SCHEDULES
from nnctl.data import iterate_batches, load

try:
    import torch
    from torch import nn
except ImportError:
    sys.exit("PyTorch is not installed: pip install torch==2.13.0")

EVAL_BATCH = 128  # as nnctl.train.evaluate


def plain_cross_entropy(loss) -> bool:
    """Whether the config's loss (a name or a resolved mapping) is cross-entropy without
    label smoothing or class weights, the loss this script trains with."""
    if isinstance(loss, dict):
        options = {k: v for k, v in loss.items() if k != "type"}
        plain = not options.get("label_smoothing") and options.get("class_weights") is None
        return loss.get("type") == "cross_entropy" and plain
    return loss == "cross_entropy"


def torch_model(layers: list[dict], input_shape, loss):
    """``nn.Sequential`` of the config's layers (NCHW), logits out."""
    activations = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "linear": None}
    modules = []
    for i, layer in enumerate(layers):
        kind, act = layer["type"], layer.get("activation", "linear")
        if kind == "conv2d":
            pad = {"valid": 0}.get(layer["pad"], layer["pad"])
            pad = tuple(pad) if isinstance(pad, list) else pad
            if pad == "same" and layer["stride"] not in (1, [1, 1]):
                sys.exit(f"model.layers[{i}]: pad 'same' with a stride is not translated here")
            modules.append(
                nn.LazyConv2d(
                    layer["n_out"],
                    tuple(layer["kernel_shape"]),
                    stride=layer["stride"],
                    padding=pad,
                )
            )
        elif kind == "pool2d" and layer["mode"] in ("max", "average"):
            pool = nn.MaxPool2d if layer["mode"] == "max" else nn.AvgPool2d
            modules.append(pool(tuple(layer["kernel_shape"]), layer["stride"], layer["pad"]))
        elif kind == "flatten":
            modules.append(nn.Flatten())
        elif kind == "fully_connected":
            modules.append(nn.LazyLinear(layer["n_out"]))
        else:
            sys.exit(f"model.layers[{i}]: {kind} is not translated to PyTorch here")
        last_softmax = act == "softmax" and i == len(layers) - 1 and plain_cross_entropy(loss)
        if not (last_softmax or isinstance(act, str) and act in activations):
            sys.exit(f"model.layers[{i}]: activation {act!r} is not translated to PyTorch here")
        if not last_softmax and activations[act] is not None:
            modules.append(activations[act]())
    model = nn.Sequential(*modules)
    channels_first = (input_shape[-1], *input_shape[:-1]) if len(input_shape) == 3 else input_shape
    model(torch.zeros((1, *channels_first)))  # creates the lazy layers' parameters
    return model


def torch_optimizer(spec: dict, params):
    if spec.get("clip_mode", "global") != "global":
        sys.exit("optimizer.clip_mode: only global clipping is translated to PyTorch here")
    if spec["type"] == "sgd":
        return torch.optim.SGD(
            params,
            lr=spec["lr"],
            momentum=spec["momentum"],
            nesterov=spec["nesterov"],
            weight_decay=spec["weight_decay"],
        )
    if spec["type"] == "adam":
        return torch.optim.Adam(
            params,
            lr=spec["lr"],
            betas=(spec["beta1"], spec["beta2"]),
            eps=spec["eps"],
            weight_decay=spec["weight_decay"],
        )
    sys.exit(f"optimizer.type: {spec['type']} is not translated to PyTorch here")


def as_tensors(split):
    """(X float32 NCHW or (N, features), y int64) tensors of a split, or None."""
    if split is None:
        return None
    X = split.X.transpose(0, 3, 1, 2) if split.X.ndim == 4 else split.X  # NHWC → NCHW
    return torch.from_numpy(np.ascontiguousarray(X)), torch.from_numpy(split.y)


def evaluate(model, data) -> dict:
    X, y = data
    total, correct = 0.0, 0
    model.eval()
    with torch.no_grad():
        for start in range(0, len(X), EVAL_BATCH):
            out = model(X[start : start + EVAL_BATCH])
            yb = y[start : start + EVAL_BATCH]
            total += torch.nn.functional.cross_entropy(out, yb, reduction="sum").item()
            correct += int((out.argmax(1) == yb).sum())
    return {"loss": total / len(X), "accuracy": correct / len(X)}


class Recipe:
    """The config's training recipe in PyTorch: model, optimizer, schedule, data."""

    def __init__(self, config) -> None:
        cfg = config.data
        torch.manual_seed(cfg["seed"])
        splits = load(cfg["data"], seed=cfg["seed"])
        self.train, self.val, self.test = map(
            as_tensors, (splits.train, splits.validation, splits.test)
        )
        self.model = torch_model(
            cfg["model"]["layers"], splits.train.X.shape[1:], cfg["model"]["loss"]
        )
        self.optimizer = torch_optimizer(cfg["optimizer"], self.model.parameters())
        self.clip_norm = cfg["optimizer"].get("clip_norm")
        self.base_lr = cfg["optimizer"]["lr"]
        spec = dict(cfg["schedule"] or {})
        self.schedule = SCHEDULES.get(spec.pop("type"))(**spec) if spec else None
        if self.schedule is not None and hasattr(self.schedule, "monitor"):
            sys.exit("schedule: a monitoring schedule is not translated to PyTorch here")
        self.batch_size, self.shuffle = cfg["data"]["batch_size"], cfg["data"]["shuffle"]
        self.rng = np.random.default_rng([cfg["seed"], 2])  # the trainer's batch order
        self.epoch = self.step = 0

    def lr(self) -> float:
        if self.schedule is None:
            return self.base_lr
        position = self.epoch if self.schedule.unit == "epoch" else self.step
        return self.schedule.lr_at(self.base_lr, position)

    def train_epoch(self) -> tuple[float, dict]:
        """Seconds spent in training steps, and the epoch's training loss and accuracy."""
        X, y = self.train
        seconds, loss_sum, correct = 0.0, 0.0, 0
        self.model.train()
        for idx in iterate_batches(len(X), self.batch_size, self.rng, shuffle=self.shuffle):
            started = time.perf_counter()
            rows = torch.from_numpy(idx)
            for group in self.optimizer.param_groups:
                group["lr"] = self.lr()
            self.optimizer.zero_grad(set_to_none=True)
            out = self.model(X[rows])
            loss = nn.functional.cross_entropy(out, y[rows])
            loss.backward()
            if self.clip_norm is not None:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_norm)
            self.optimizer.step()
            loss_sum += loss.item() * len(idx)
            correct += int((out.argmax(1) == y[rows]).sum())
            self.step += 1
            seconds += time.perf_counter() - started
        self.epoch += 1
        return seconds, {"loss": loss_sum / len(X), "accuracy": correct / len(X)}


def train(recipe: Recipe, epochs: int, checkpoints: Path) -> dict:
    best_loss, per_epoch = float("inf"), []
    for epoch in range(epochs):
        seconds, metrics = recipe.train_epoch()
        val = evaluate(recipe.model, recipe.val) if recipe.val is not None else None
        state = {"model": recipe.model.state_dict(), "optimizer": recipe.optimizer.state_dict()}
        torch.save(state, checkpoints / "last.pt")
        if val is not None and val["loss"] < best_loss:
            best_loss = val["loss"]
            torch.save(state, checkpoints / "best.pt")
        per_epoch.append(seconds)
        print(
            f"torch epoch {epoch + 1}: {seconds:.1f} s in training steps, "
            f"{len(recipe.train[0]) / seconds:.0f} samples/s, train loss "
            f"{metrics['loss']:.4f}, val {val}",
            file=sys.stderr,
        )
    best = checkpoints / ("best.pt" if (checkpoints / "best.pt").exists() else "last.pt")
    recipe.model.load_state_dict(torch.load(best)["model"])
    test = evaluate(recipe.model, recipe.test) if recipe.test is not None else None
    return {"train_seconds": sum(per_epoch), "epoch_seconds": per_epoch, "test": test}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=harness.ROOT / "configs" / "mnist-cnn.yaml")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = load_config(args.config, [*args.set, f"train.epochs={args.epochs}"])
    with tempfile.TemporaryDirectory() as tmp:
        summary = train(Recipe(config), args.epochs, Path(tmp))
    summary.update(
        threads=torch.get_num_threads(),
        torch=torch.__version__,
        process_seconds=harness.process_age_s(),
    )
    print(
        f"torch: {summary['process_seconds']:.1f} s whole process, test {summary['test']}",
        file=sys.stderr,
    )
    if args.json:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()

"""Train a config's network in PyTorch with the recipe ``nnctl train`` uses: the PyTorch
twin of a run, in its own process, for ``benchmarks/epoch_benchmark.py`` and for the
accuracy comparison of ``configs/fashion-mnist-resnet.yaml``.

    python benchmarks/torch_twin.py [--config configs/mnist-cnn.yaml]
        [--set KEY=VALUE ...] [--epochs N] [--threads 2] [--json]

The recipe is read from the config (after ``--set`` overrides), as ``nnctl train`` reads it:
- data: ``nnctl.data.load`` (same set, validation split and preprocessing); the batch
  order comes from ``iterate_batches`` with the trainer's generator (``default_rng([seed,
  2])``) and ``data.batch_size``; ``data.augment`` (random_crop, flip) is re-implemented in
  PyTorch (``torch_translate.augmenter``) and drawn from a ``torch.Generator``, so the
  augmentation is checked, not shared;
- the network: ``model.layers`` translated by ``torch_translate`` (conv2d, pool2d, flatten,
  fully_connected, dropout, batch_norm, layer_norm, global pools, activation, residual and
  concat blocks), float32, initialized as the config says; a softmax last layer with the
  cross-entropy loss gives logits to ``nn.functional.cross_entropy``, with the config's
  ``label_smoothing`` and ``class_weights``;
- the optimizer: sgd (momentum, nesterov) or adam, weight decay, global gradient-norm
  clipping, the learning rate of nnctl's own schedule object set before every step;
- per epoch: training loss and accuracy summed as the trainer does, the validation set
  evaluated in batches of 128, a checkpoint of the model and optimizer written (and a
  best one when ``train.checkpoint.monitor`` improved); at the end the test set is
  evaluated with the best checkpoint.

``train.epochs`` is replaced by ``--epochs`` (default: the config's). The timing lines go
to stderr; ``--json`` prints one JSON line on stdout: ``train_seconds`` (the training steps
only, as nnctl's summary counts them), ``process_seconds`` (the whole process, interpreter
start included), the per-epoch seconds and the test metrics. PyTorch is optional and never
a dependency of nnctl (``pip install torch==2.13.0``).
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
import torch_translate

sys.path.insert(0, str(harness.ROOT))  # nnctl from this checkout, installed or not

from nnctl.config import load_config
from nnctl.core.schedules import SCHEDULES
from nnctl.data import iterate_batches, load
from nnctl.monitor import improves

try:
    import torch
    from torch import nn
except ImportError:
    sys.exit("PyTorch is not installed: pip install torch==2.13.0")

EVAL_BATCH = 128  # as nnctl.train.evaluate


def cross_entropy_options(loss) -> dict:
    """Keyword arguments of ``nn.functional.cross_entropy`` for the config's loss (a name or a
    resolved mapping): label smoothing and class weights as nnctl defines them."""
    spec = loss if isinstance(loss, dict) else {"type": loss}
    if spec["type"] != "cross_entropy":
        sys.exit(f"model.loss: {spec['type']} is not translated to PyTorch here")
    weights = spec.get("class_weights")
    if isinstance(weights, str):
        sys.exit("model.loss.class_weights: 'balanced' is not translated to PyTorch here")
    options = {"label_smoothing": spec.get("label_smoothing") or 0.0}
    if weights is not None:
        options["weight"] = torch.tensor(weights, dtype=torch.float32)
    return options


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


def evaluate(model, data, loss_options: dict) -> dict:
    X, y = data
    total, correct = 0.0, 0
    model.eval()
    with torch.no_grad():
        for start in range(0, len(X), EVAL_BATCH):
            out = model(X[start : start + EVAL_BATCH])
            yb = y[start : start + EVAL_BATCH]
            loss = nn.functional.cross_entropy(out, yb, reduction="none", **loss_options)
            total += loss.sum().item()
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
        model = cfg["model"]
        self.loss_options = cross_entropy_options(model["loss"])
        sample_shape = splits.train.X.shape[1:]
        self.model = torch_translate.torch_model(model["layers"], sample_shape, final_logits=True)
        black = splits.preprocess.transform(np.zeros((1, *sample_shape), np.float32))
        self.augment = torch_translate.augmenter(
            cfg["data"].get("augment"), float(black.flat[0]), cfg["seed"]
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
        checkpoint = cfg["train"]["checkpoint"]
        self.monitor = checkpoint["monitor"].removeprefix("val_")
        self.mode = checkpoint["mode"]

    def lr(self) -> float:
        if self.schedule is None:
            return self.base_lr
        position = self.epoch if self.schedule.unit == "epoch" else self.step
        return self.schedule.lr_at(self.base_lr, position)

    def train_epoch(self) -> tuple[float, dict]:
        """Seconds spent in training steps (augmentation included), and the epoch's
        training loss and accuracy."""
        X, y = self.train
        seconds, loss_sum, correct = 0.0, 0.0, 0
        self.model.train()
        for idx in iterate_batches(len(X), self.batch_size, self.rng, shuffle=self.shuffle):
            started = time.perf_counter()
            rows = torch.from_numpy(idx)
            Xb, yb = X[rows], y[rows]
            if self.augment is not None:
                Xb = self.augment(Xb)
            for group in self.optimizer.param_groups:
                group["lr"] = self.lr()
            self.optimizer.zero_grad(set_to_none=True)
            out = self.model(Xb)
            loss = nn.functional.cross_entropy(out, yb, **self.loss_options)
            loss.backward()
            if self.clip_norm is not None:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_norm)
            self.optimizer.step()
            loss_sum += loss.item() * len(idx)
            correct += int((out.argmax(1) == yb).sum())
            self.step += 1
            seconds += time.perf_counter() - started
        self.epoch += 1
        return seconds, {"loss": loss_sum / len(X), "accuracy": correct / len(X)}


def train(recipe: Recipe, epochs: int, checkpoints: Path) -> dict:
    """Train ``epochs`` epochs, keeping the best checkpoint by the config's monitor, and
    evaluate the test set with it."""
    best, per_epoch = None, []
    for epoch in range(epochs):
        seconds, metrics = recipe.train_epoch()
        val = evaluate(recipe.model, recipe.val, recipe.loss_options) if recipe.val else None
        state = {"model": recipe.model.state_dict(), "optimizer": recipe.optimizer.state_dict()}
        torch.save(state, checkpoints / "last.pt")
        if val is not None and improves(val[recipe.monitor], best, recipe.mode):
            best = val[recipe.monitor]
            torch.save(state, checkpoints / "best.pt")
        per_epoch.append(seconds)
        print(
            f"torch epoch {epoch + 1}: {seconds:.1f} s in training steps, "
            f"{len(recipe.train[0]) / seconds:.0f} samples/s, train loss "
            f"{metrics['loss']:.4f}, val {val}",
            file=sys.stderr,
            flush=True,
        )
    chosen = checkpoints / ("best.pt" if (checkpoints / "best.pt").exists() else "last.pt")
    recipe.model.load_state_dict(torch.load(chosen)["model"])
    test = evaluate(recipe.model, recipe.test, recipe.loss_options) if recipe.test else None
    return {"train_seconds": sum(per_epoch), "epoch_seconds": per_epoch, "test": test}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=harness.ROOT / "configs" / "mnist-cnn.yaml")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--epochs", type=int, help="default: the config's train.epochs")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    epochs = [f"train.epochs={args.epochs}"] if args.epochs is not None else []
    config = load_config(args.config, [*args.set, *epochs])
    with tempfile.TemporaryDirectory() as tmp:
        summary = train(Recipe(config), config.data["train"]["epochs"], Path(tmp))
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

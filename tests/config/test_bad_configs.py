"""A table of bad configs, each with the message fragment it must produce."""

from __future__ import annotations

import functools

import pytest
import yaml
from config_helpers import (
    CNN_LAYERS,
    DELETE,
    config_dict,
    error_lines,
    regression_csv,
    write_config,
)


@pytest.fixture
def write(tmp_path):
    """``write(content, name="c.yaml")`` → the path of the written config."""
    return functools.partial(write_config, tmp_path)


FC = "fully_connected"
SOFTMAX_10 = {"type": FC, "n_out": 10, "activation": "softmax"}


def layers(*specs):
    return {"model": {"layers": list(specs)}}


# (id, patch onto BASE, fragment that one reported line must contain)
BAD = [
    (
        "unknown top key",
        {"optimiser": {"type": "sgd"}},
        "unknown key 'optimiser' in the config; did you mean 'optimizer'?",
    ),
    (
        "unknown layer key",
        layers(
            {"type": "conv2d", "n_out": 4, "kernal_shape": 3},
            {"type": FC, "n_out": 10, "activation": "softmax"},
        ),
        "model.layers[0]: unknown key 'kernal_shape' for conv2d; did you mean 'kernel_shape'?",
    ),
    (
        "unknown optimizer key",
        {"optimizer": {"lrr": 0.1}},
        "optimizer: unknown key 'lrr' for adam; did you mean 'lr'?",
    ),
    (
        "unknown key lists allowed",
        {"optimizer": {"learning_rate": 0.1}},
        "optimizer: unknown key 'learning_rate' for adam (allowed: lr, beta1, beta2, eps, ",
    ),
    (
        "unknown train key",
        {"train": {"epoch": 3}},
        "train: unknown key 'epoch' in train; did you mean 'epochs'?",
    ),
    (
        "unknown model key",
        {"model": {"los": "l2"}},
        "model: unknown key 'los' in model; did you mean 'loss'?",
    ),
    (
        "unknown layer type",
        layers({"type": "fully_conected", "n_out": 10}),
        "model.layers[0].type: unknown layer 'fully_conected'; did you mean 'fully_connected'?",
    ),
    (
        "unknown activation",
        layers({"type": FC, "n_out": 10, "activation": "relux"}),
        "model.layers[0].activation.type: unknown activation 'relux'; did you mean 'relu'?",
    ),
    (
        "unknown initializer",
        layers({"type": FC, "n_out": 10, "activation": "softmax", "weight_init": "he_unifrom"}),
        "unknown initializer 'he_unifrom'; did you mean 'he_uniform'?",
    ),
    (
        "unknown optimizer",
        {"optimizer": {"type": "adamm"}},
        "optimizer.type: unknown optimizer 'adamm'; did you mean 'adam'?",
    ),
    (
        "unknown loss",
        {"model": {"loss": "crossentropy"}},
        "model.loss.type: unknown loss 'crossentropy'; did you mean 'cross_entropy'?",
    ),
    (
        "unknown schedule",
        {"schedule": {"type": "cosin", "t_max": 3}},
        "schedule.type: unknown schedule 'cosin'; did you mean 'cosine'?",
    ),
    (
        "unknown dataset",
        {"data": {"dataset": "mnits"}},
        "data.dataset: unknown dataset 'mnits'; did you mean 'mnist'?",
    ),
    (
        "negative n_out",
        layers({"type": FC, "n_out": -3}),
        "model.layers[0].n_out: must be a positive integer; got -3",
    ),
    (
        "string n_out",
        layers({"type": FC, "n_out": "ten"}),
        "model.layers[0].n_out: must be a positive integer; got 'ten'",
    ),
    (
        "missing n_out",
        layers({"type": FC, "activation": "softmax"}),
        "model.layers[0]: missing required key 'n_out' for fully_connected",
    ),
    ("layer without type", layers({"n_out": 10}), "model.layers[0]: missing key 'type'"),
    (
        "layer is a number",
        layers(7),
        "model.layers[0]: must be a name or a mapping with 'type'; got 7",
    ),
    (
        "empty layers",
        {"model": {"layers": []}},
        "model.layers: must be a non-empty list of layers; got []",
    ),
    (
        "negative lr",
        {"optimizer": {"lr": -0.1}},
        "optimizer.lr: must be a positive number; got -0.1",
    ),
    (
        "lr as text",
        {"optimizer": {"lr": "fast"}},
        "optimizer.lr: must be a positive number; got 'fast'",
    ),
    (
        "sgd without lr",
        {"optimizer": {"type": "sgd", "lr": DELETE}},
        "optimizer: missing required key 'lr' for sgd",
    ),
    (
        "momentum 1",
        {"optimizer": {"type": "sgd", "lr": 0.1, "momentum": 1.0}},
        "optimizer.momentum: must be a number in [0, 1); got 1.0",
    ),
    (
        "zero batch size",
        {"data": {"batch_size": 0}},
        "data.batch_size: must be a positive integer; got 0",
    ),
    (
        "dropout rate 1",
        layers(
            {"type": "dropout", "rate": 1.0}, {"type": FC, "n_out": 10, "activation": "softmax"}
        ),
        "model.layers[0].rate: must be a number in [0, 1); got 1.0",
    ),
    (
        "validation 1.5",
        {"data": {"validation": 1.5}},
        "data.validation: must be a fraction in (0, 1)",
    ),
    (
        "kernel larger than input",
        {
            "model": {
                "layers": [
                    {"type": "conv2d", "n_out": 4, "kernel_shape": 3, "pad": "valid"},
                    {"type": "pool2d", "kernel_shape": 2, "stride": 2},
                    {"type": "conv2d", "n_out": 4, "kernel_shape": 5, "pad": "valid"},
                    {"type": FC, "n_out": 10, "activation": "softmax"},
                ]
            }
        },
        "model.layers[2]: Conv2D: kernel 5x5 is larger than its padded input 3x3 (input 3x3) at this depth",
    ),
    (
        "pool on flat input",
        {
            "data": {"dataset": "iris"},
            "model": {
                "layers": [{"type": "pool2d"}, {"type": FC, "n_out": 3, "activation": "softmax"}]
            },
        },
        "model.layers[0]: Pool2D: expects images",
    ),
    (
        "staircase on step",
        {"schedule": {"type": "step", "step_size": 2, "staircase": True}},
        "schedule: unknown key 'staircase' for step ('staircase' is an argument of exponential)",
    ),
    (
        "softmax not last",
        layers(
            {"type": FC, "n_out": 32, "activation": "softmax"},
            {"type": FC, "n_out": 10, "activation": "softmax"},
        ),
        "model.layers[0].activation: softmax is only allowed on the last layer",
    ),
    (
        "last width",
        layers({"type": FC, "n_out": 12, "activation": "softmax"}),
        "model.layers[0].n_out: the last layer's width must equal the number of classes of 'digits' (10); got 12",
    ),
    (
        "output not flat",
        {"model": {"layers": CNN_LAYERS[:2]}},
        "model.layers[1]: the model's output must be flat (10 class scores); got shape 4x4x8",
    ),
    (
        "cross entropy without softmax",
        layers({"type": FC, "n_out": 10, "activation": "relu"}),
        "model.layers[0].activation: cross_entropy needs probabilities: the last activation must be softmax; got relu",
    ),
    (
        "removed plateau schedule",
        {"schedule": {"type": "plateau", "patience": 3}},
        "schedule.type: schedule 'plateau' was removed; use train.reduce_lr_on_plateau instead",
    ),
    (
        "val monitor without validation",
        {"data": {"validation": 0}, "train": {"early_stopping": {"monitor": "val_accuracy"}}},
        "train.early_stopping.monitor: 'val_accuracy' needs validation data",
    ),
    (
        "bad monitor",
        {"train": {"checkpoint": {"monitor": "val_acc"}}},
        "train.checkpoint.monitor: must be one of val_loss, val_accuracy, train_loss, train_accuracy; got 'val_acc'",
    ),
    ("zero epochs", {"train": {"epochs": 0}}, "train.epochs: must be an integer >= 1; got 0"),
    ("float epochs", {"train": {"epochs": 2.5}}, "train.epochs: must be an integer >= 1; got 2.5"),
    (
        "factor 1",
        {"train": {"reduce_lr_on_plateau": {"factor": 1.0}}},
        "train.reduce_lr_on_plateau.factor: must be a number in (0, 1); got 1.0",
    ),
    (
        "negative cooldown",
        {"train": {"reduce_lr_on_plateau": {"cooldown": -1}}},
        "train.reduce_lr_on_plateau.cooldown: must be an integer >= 0; got -1",
    ),
    (
        "patience 0",
        {"train": {"early_stopping": {"patience": 0}}},
        "train.early_stopping.patience: must be an integer >= 1; got 0",
    ),
    (
        "negative min_delta",
        {"train": {"early_stopping": {"min_delta": -1}}},
        "train.early_stopping.min_delta: must be a number >= 0; got -1",
    ),
    (
        "bad keep",
        {"train": {"checkpoint": {"keep": "first"}}},
        "train.checkpoint.keep: must be one of last, best, all; got 'first'",
    ),
    (
        "bad test_checkpoint",
        {"train": {"test_checkpoint": "worst"}},
        "train.test_checkpoint: must be one of best, last; got 'worst'",
    ),
    (
        "bad dtype",
        {"model": {"dtype": "float16"}},
        "model.dtype: must be one of float32, float64; got 'float16'",
    ),
    ("negative seed", {"seed": -1}, "seed: must be a non-negative integer; got -1"),
    ("bool seed", {"seed": True}, "seed: must be a non-negative integer; got True"),
    ("train not a mapping", {"train": [1]}, "train: must be a mapping; got [1]"),
    ("missing optimizer", {"optimizer": DELETE}, "missing required section 'optimizer'"),
    ("missing data", {"data": DELETE}, "missing required section 'data'"),
    ("missing loss", {"model": {"loss": DELETE}}, "model: missing required key 'loss'"),
    (
        "gain is internal",
        layers(
            {
                "type": FC,
                "n_out": 10,
                "activation": "softmax",
                "weight_init": {"type": "he_uniform", "gain": 2},
            }
        ),
        "model.layers[0].weight_init: unknown key 'gain' for he_uniform",
    ),
    (
        "leaky alpha",
        layers({"type": FC, "n_out": 10, "activation": {"type": "leaky_relu", "alpha": 2}}),
        "model.layers[0].activation.alpha: must be a number in [0, 1); got 2",
    ),
    # --- blocks, repeat, new layers and losses -------------------------------------------
    (
        "nested negative n_out",
        layers(
            {"type": "conv2d", "n_out": 4},
            {"type": "residual", "layers": [{"type": "conv2d", "n_out": 4}]},
            {
                "type": "residual",
                "layers": [{"type": "conv2d", "n_out": 4}, {"type": "conv2d", "n_out": -3}],
            },
            "global_avg_pool",
            SOFTMAX_10,
        ),
        "model.layers[2].layers[1].n_out: must be a positive integer; got -3",
    ),
    (
        "unknown key in a block's child",
        layers(
            {"type": "residual", "layers": [{"type": "batch_norm", "momentun": 0.9}]}, SOFTMAX_10
        ),
        "model.layers[0].layers[0]: unknown key 'momentun' for batch_norm; did you mean 'momentum'?",
    ),
    (
        "unknown layer in a branch",
        layers({"type": "concat", "branches": [[], ["global_avg_pol"]]}, SOFTMAX_10),
        "model.layers[0].branches[1][0].type: unknown layer 'global_avg_pol'; did you mean 'global_avg_pool'?",
    ),
    (
        "block layers not a list",
        layers({"type": "residual", "layers": "conv2d"}, SOFTMAX_10),
        "model.layers[0].layers: must be a list of layers; got 'conv2d'",
    ),
    (
        "empty residual",
        layers({"type": "residual", "layers": []}, SOFTMAX_10),
        "model.layers[0].layers: must be a non-empty list of layers; got []",
    ),
    (
        "branch not a list",
        layers({"type": "concat", "branches": ["flatten"]}, SOFTMAX_10),
        "model.layers[0].branches[0]: must be a list of layers; got 'flatten'",
    ),
    (
        "repeat 0",
        layers({"type": FC, "n_out": 16, "repeat": 0}, SOFTMAX_10),
        "model.layers[0].repeat: must be a positive integer; got 0",
    ),
    (
        "identity shortcut that changes the shape",
        layers(
            {
                "type": "residual",
                "shortcut": "identity",
                "layers": [{"type": "conv2d", "n_out": 4, "stride": 2}],
            },
            SOFTMAX_10,
        ),
        (
            "model.layers[0]: residual: an identity shortcut needs the layers to keep the input "
            "shape (8, 8, 1); they give (4, 4, 4) (use shortcut: projection or auto) at this depth"
        ),
    ),
    (
        "concat of images with different sizes",
        layers(
            {"type": "conv2d", "n_out": 2},
            {
                "type": "concat",
                "branches": [[{"type": "pool2d"}], [{"type": "conv2d", "n_out": 3}]],
            },
            SOFTMAX_10,
        ),
        "model.layers[1]: concat: branch 1 gives (8, 8, 3) but branch 0 gives (4, 4, 2)",
    ),
    (
        "kernel too large inside a repeated block",
        layers(
            {
                "type": "residual",
                "repeat": 3,
                "layers": [{"type": "conv2d", "n_out": 4, "kernel_shape": 5, "pad": "valid"}],
            },
            SOFTMAX_10,
        ),
        (
            "model.layers[0].layers[0]: Conv2D: kernel 5x5 is larger than its padded input 4x4 "
            "(input 4x4) (in copy 2 of 3 of model.layers[0]) at this depth"
        ),
    ),
    (
        "repeated conv shrinks below its kernel",
        layers(
            {"type": "conv2d", "n_out": 2, "kernel_shape": 3, "pad": "valid", "repeat": 4},
            SOFTMAX_10,
        ),
        (
            "model.layers[0]: Conv2D: kernel 3x3 is larger than its padded input 2x2 (input 2x2) "
            "(copy 4 of 4) at this depth"
        ),
    ),
    (
        "softmax inside a block",
        layers(
            {"type": "residual", "layers": [{"type": FC, "n_out": 64, "activation": "softmax"}]},
            SOFTMAX_10,
        ),
        "model.layers[0].layers[0].activation: softmax is only allowed on the last layer",
    ),
    (
        "batch norm on vectors with batches of one",
        {
            "data": {"batch_size": 1},
            "model": {"layers": [{"type": FC, "n_out": 8}, "batch_norm", SOFTMAX_10]},
        },
        (
            "data.batch_size: batch_norm at model.layers[1] normalizes vectors over the batch: "
            "training needs batches of 2 or more; got 1"
        ),
    ),
    (
        "class_weights of the wrong length",
        {"model": {"loss": {"type": "cross_entropy", "class_weights": [1, 2, 3]}}},
        (
            "model.loss.class_weights: needs one weight per class: data 'digits' has 10 classes; "
            "got 3 weights"
        ),
    ),
    (
        "class_weights not numbers",
        {"model": {"loss": {"type": "cross_entropy", "class_weights": "uniform"}}},
        "model.loss.class_weights: must be a list of positive numbers, one per class; got 'uniform'",
    ),
    (
        "binary cross-entropy after softmax",
        {"model": {"loss": "binary_cross_entropy"}},
        (
            "model.layers[1].activation: binary_cross_entropy needs probabilities: the last "
            "activation must be sigmoid; got softmax (softmax makes the outputs compete"
        ),
    ),
    (
        "sigmoid before cross-entropy",
        layers({"type": FC, "n_out": 10, "activation": "sigmoid"}),
        (
            "model.layers[0].activation: cross_entropy needs probabilities: the last activation "
            "must be softmax; got sigmoid (sigmoid scores each class on its own: use softmax for "
            "one class per example, or binary_cross_entropy for multi-label targets)"
        ),
    ),
    (
        "huber on classification",
        {"model": {"loss": "huber"}},
        (
            "model.loss: huber needs a regression target; data 'digits' is classification "
            "(use cross_entropy)"
        ),
    ),
    (
        "l1 on classification",
        {"model": {"loss": {"type": "l1"}}},
        "model.loss: l1 needs a regression target; data 'digits' is classification",
    ),
    (
        "bias not a flag",
        layers({"type": FC, "n_out": 10, "activation": "softmax", "bias": "no"}),
        "model.layers[0].bias: must be true or false; got 'no'",
    ),
    (
        "nesterov without momentum",
        {"optimizer": {"type": "sgd", "lr": 0.1, "nesterov": True}},
        "optimizer.nesterov: requires momentum > 0",
    ),
]


@pytest.mark.parametrize("patch, fragment", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_config(write, patch, fragment):
    path = write(config_dict(patch))
    lines = error_lines(path)
    assert any(fragment in line for line in lines), "\n".join(lines) or "no error"
    assert all(line.startswith(str(path)) for line in lines)


def test_table_is_large_enough():
    assert len(BAD) >= 30


RAW = [
    ("malformed yaml", "model: [1, 2\nseed: 0\n", "c.yaml:2: invalid YAML"),
    (
        "bad indentation",
        "seed: 0\n  data: 1\n",
        "c.yaml:2: invalid YAML: mapping values are not allowed here",
    ),
    ("empty file", "", "c.yaml: file is empty"),
    ("only comments", "# nothing\n", "c.yaml: file is empty"),
    ("not a mapping", "- 1\n- 2\n", "c.yaml:1: top level must be a mapping of config keys"),
    (
        "a scalar",
        "hello\n",
        "top level must be a mapping of config keys (seed, data, model, ...); got 'hello'",
    ),
    (
        "python object",
        "seed: !!python/object/apply:os.system ['echo hi']\n",
        "c.yaml:1: YAML tag '!!python/object/apply:os.system' is not allowed",
    ),
    (
        "python name",
        "seed: !!python/name:os.system\n",
        "YAML tag '!!python/name:os.system' is not allowed",
    ),
    ("local tag", "seed: !custom 3\n", "YAML tag '!custom' is not allowed"),
    (
        "duplicate key",
        "seed: 0\nseed: 1\n",
        "c.yaml:2: seed: duplicate key 'seed' (first set on line 1)",
    ),
    ("integer key", "1: 2\n", "c.yaml:1: keys must be strings; got '1'"),
    (
        "two documents",
        "seed: 0\n---\nseed: 1\n",
        "c.yaml:2: invalid YAML: expected a single document in the stream, but found another",
    ),
    ("not utf-8", b"seed: \xff\xfe\n", "c.yaml: is not UTF-8 text"),
]


@pytest.mark.parametrize("text, fragment", [r[1:] for r in RAW], ids=[r[0] for r in RAW])
def test_bad_file(tmp_path, text, fragment):
    path = tmp_path / "c.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    lines = error_lines(path)
    assert len(lines) == 1 and fragment in lines[0], lines


def test_missing_file(tmp_path):
    assert error_lines(tmp_path / "nope.yaml") == [f"{tmp_path / 'nope.yaml'}: no such file"]


def test_directory(tmp_path):
    assert error_lines(tmp_path) == [f"{tmp_path}: is a directory, not a config file"]


def test_python_tag_never_runs(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "c.yaml"
    path.write_text(f"seed: !!python/object/apply:os.system ['touch {marker}']\n")
    assert error_lines(path)
    assert not marker.exists()


def test_alias_bomb_is_refused(tmp_path):
    lines = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, 9):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [{', '.join(['*' + prev] * 9)}]")
    path = tmp_path / "c.yaml"
    path.write_text("\n".join(lines) + "\n")
    assert "document too large" in error_lines(path)[0]


def test_regression_with_cross_entropy(write, tmp_path):
    csv = regression_csv(tmp_path)
    data = {"dataset": DELETE, "type": "csv", "path": str(csv), "label_column": "y",
            "task": "regression", "validation": 0.2}  # fmt: skip
    patch = {"data": data, "model": {"layers": [{"type": FC, "n_out": 1}]}}
    lines = error_lines(write(config_dict(patch)))
    assert any(
        "model.loss: cross_entropy needs a classification target; data 'reg.csv' is regression"
        in line
        for line in lines
    ), lines
    patch["model"]["loss"] = "l2"
    assert error_lines(write(config_dict(patch))) == []


def test_accuracy_monitor_on_regression(write, tmp_path):
    csv = regression_csv(tmp_path)
    data = {"dataset": DELETE, "type": "csv", "path": str(csv), "label_column": "y",
            "task": "regression"}  # fmt: skip
    patch = {"data": data, "model": {"layers": [{"type": FC, "n_out": 1}], "loss": "l2"},
             "train": {"checkpoint": {"monitor": "val_accuracy"}}}  # fmt: skip
    lines = error_lines(write(config_dict(patch)))
    assert any("'val_accuracy' needs a classification task" in line for line in lines), lines


def test_yaml_dump_of_table_entries_is_safe():
    # The table itself must be plain data (it is dumped with safe_dump).
    for _, patch, _ in BAD:
        config = config_dict(patch)
        assert yaml.safe_load(yaml.safe_dump(config)) == config, patch


def test_a_stray_label_is_out_of_range_not_more_classes(write, tmp_path):
    """Undeclared classes are counted from the labels: one label 99 among 0-2 with a
    3-wide last layer is a label out of range (as Keras reports it), not "100 classes"."""
    import numpy as np

    y = np.arange(30) % 3
    y[5] = 99
    np.savez(tmp_path / "d.npz", x=np.ones((30, 4)), y=y)
    data = {"dataset": DELETE, "type": "npz", "path": "d.npz"}
    patch = {"data": data, "model": {"layers": [{"type": FC, "n_out": 3, "activation": "softmax"}]}}
    (line,) = error_lines(write(config_dict(patch)))
    assert "data: label 99 in 'd.npz' is out of range for 3 classes" in line
    assert "set data.n_classes and model.layers[0].n_out to 100" in line
    patch["model"]["layers"][0]["n_out"] = 101  # wider than the labels: their count is wrong
    (line,) = error_lines(write(config_dict(patch)))
    assert "must equal the number of classes of 'd.npz' (100); got 101" in line

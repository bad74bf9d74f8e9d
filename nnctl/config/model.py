"""The ``model:`` section: layers, loss and dtype, checked against the data's shape.

Every layer is checked on its own first, the children of blocks included (each at its own
key path); then, if all of them are valid and the data is known, the layers' output shapes
are inferred from the data set's input shape alone (no data is loaded) so that cross-field
errors point at the layer where they arise, inside blocks too: a kernel larger than its
input at that depth, branches whose shapes disagree, a softmax that is not last, a last
width that is not the number of classes, a loss that does not fit the target or the last
activation, batch normalization of vectors with batches of one.
"""

from __future__ import annotations

from pathlib import Path

from nnctl.config.components import LAYER, LOSS, Origins, check_list, check_spec
from nnctl.config.paths import join
from nnctl.config.schema import MODEL_KEYS, unknown_keys
from nnctl.core import ACTIVATIONS, LOSSES
from nnctl.core.chain import named_layers, walk_layers
from nnctl.core.checks import is_int, show
from nnctl.core.network import DTYPES
from nnctl.errors import ConfigError, NnctlError, ShapeError
from nnctl.fileio import user_path
from nnctl.registry import compact, did_you_mean

#: ``class_weights: balanced`` is kept in the resolved config; training replaces it with
#: weights from the training labels (``nnctl.config.build.resolve_class_weights``).
BALANCED = "balanced"
#: The tasks a loss is for; losses not listed fit every task.
LOSS_TASKS = {
    "cross_entropy": ("classification",),
    "binary_cross_entropy": ("classification", "multilabel"),
    "huber": ("regression",),
    "l1": ("regression",),
}
#: What to use instead, per task of the data.
SUGGESTED_LOSS = {
    "classification": "cross_entropy",
    "regression": "l2",
    "multilabel": "binary_cross_entropy with a sigmoid output",
}
#: Hints for a loss after the wrong output activation.
OUTPUT_HINTS = {
    ("cross_entropy", "sigmoid"): (
        "sigmoid scores each class on its own: use softmax for one class per example, or "
        "binary_cross_entropy for multi-label targets"
    ),
    ("binary_cross_entropy", "softmax"): (
        "softmax makes the outputs compete: binary_cross_entropy scores each label on its "
        "own with sigmoid; for one class per example use cross_entropy with softmax"
    ),
}


def resolve_model(
    value, spec, errors: list[ConfigError], base_dir=None, batch_size=None
) -> tuple[dict, list]:
    """The resolved ``model:`` section and its layer objects (None where invalid).

    ``base_dir`` is the config file's folder: a relative ``init_from`` resolves against it.
    ``batch_size`` (``data.batch_size``) is checked against layers that need larger batches.
    """
    if not isinstance(value, dict):
        got = "nothing" if value is None else show(value)
        errors.append(
            ConfigError("model", f"must be a mapping with 'layers' and 'loss'; got {got}")
        )
        return {}, []
    errors += unknown_keys(value, MODEL_KEYS, "model", "model")
    origins = Origins()
    layers, specs = _check_layers(value.get("layers"), errors, origins)
    out = {
        "layers": specs,
        "loss": _check_loss(value, errors),
        "dtype": _check_dtype(value, errors),
        "init_from": _check_init_from(value.get("init_from"), base_dir, errors),
        "freeze": _check_freeze(value.get("freeze"), specs, errors),
    }
    if spec is not None and layers:
        shape = _check_shapes(layers, origins, spec, errors)
        if shape is not None:
            _check_output(layers, specs, origins, shape, out["loss"], spec, errors)
            _check_batch(layers, origins, spec, batch_size, errors)
    _check_softmax(layers, origins, errors)
    return out, layers


def _check_layers(layers, errors: list, origins: Origins) -> tuple[list, list]:
    if not isinstance(layers, list) or not layers:
        got = "nothing" if layers is None else show(layers)
        errors.append(ConfigError("model.layers", f"must be a non-empty list of layers; got {got}"))
        return [], []
    objects, specs = check_list(LAYER, layers, "model.layers", 1, errors, origins)
    return (objects, specs) if objects is not None else ([], [])


def _check_loss(model: dict, errors: list):
    """The resolved loss: its name when it has no arguments, else ``{type: ..., ...}``."""
    if "loss" not in model:
        errors.append(ConfigError("model", "missing required key 'loss' (cross_entropy or l2)"))
        return None
    loss = model["loss"]
    balanced = isinstance(loss, dict) and loss.get("class_weights") == BALANCED
    if balanced:  # checked without weights; resolved from the training labels when training
        loss = {**loss, "class_weights": None}
    _, resolved = check_spec(LOSS, loss, "model.loss", errors)
    if resolved and balanced:
        resolved["class_weights"] = BALANCED
    return compact(resolved) if resolved else None


def _check_dtype(model: dict, errors: list) -> str:
    dtype = model.get("dtype", "float32")
    if dtype not in DTYPES:
        errors.append(
            ConfigError("model.dtype", f"must be one of {', '.join(DTYPES)}; got {show(dtype)}")
        )
    return dtype


def _check_init_from(value, base_dir, errors: list) -> str | None:
    """An absolute path to a run directory or checkpoint, or None."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        errors.append(
            ConfigError(
                "model.init_from",
                f"must be the path of a run directory or checkpoint; got {show(value)}",
            )
        )
        return None
    try:
        path = user_path(value)
    except NnctlError as error:
        errors.append(ConfigError("model.init_from", str(error)))
        return None
    if not path.is_absolute():
        path = Path(base_dir if base_dir is not None else ".").absolute() / path
    return str(path)


def _check_freeze(value, specs: list, errors: list) -> list:
    """Layer indices (negative count from the end) or layer type names (matched inside
    blocks too) to keep fixed; the indices count every copy of a repeated layer. Checked
    against the layers when they are valid (``specs`` not empty)."""
    if value is None:
        return []
    if not isinstance(value, list):
        value = [value]
    n, types = len(specs), set(_nested_types(specs))
    for position, item in enumerate(value):
        path = f"model.freeze[{position}]"
        if is_int(item):
            if specs and not -n <= item < n:
                errors.append(
                    ConfigError(path, f"layer index {item} is out of range for {n} layers")
                )
        elif isinstance(item, str):
            if specs and item not in types:
                hint = did_you_mean(item, sorted(t for t in types if t))
                errors.append(ConfigError(path, f"no layer of type '{item}' in the model{hint}"))
        else:
            errors.append(
                ConfigError(path, f"must be a layer index or a layer type name; got {show(item)}")
            )
    return list(value)


def frozen_layers(freeze: list, layers: list) -> set[str]:
    """The dotted names (``3``, ``4.0``) of the layers ``freeze`` names among the built
    ``layers``: each index (negative from the end) and every layer of each named type, inside
    blocks too (a frozen block freezes all it holds)."""
    n, names = len(layers), set()
    for item in freeze:
        if isinstance(item, str):
            for index, top in enumerate(layers):
                names.update(
                    name
                    for name, layer, _ in named_layers(top, str(index))
                    if layer.type_name == item
                )
        else:
            names.add(str(item % n))
    return names


def _nested_types(specs: list):
    """The type of every layer spec in ``specs``, and of those inside blocks."""
    for spec in specs:
        yield _type(spec)
        if isinstance(spec, dict):
            yield from _nested_types(spec.get("layers") or [])
            for branch in spec.get("branches") or []:
                yield from _nested_types(branch)


def _type(component) -> str | None:
    """The name of a resolved component, written as a name or as ``{type: ...}``."""
    return component.get("type") if isinstance(component, dict) else component


def _activation(layer) -> str | None:
    """The registered name of a layer object's activation (None if it has none)."""
    activation = getattr(layer, "activation", None)
    return None if activation is None else ACTIVATIONS.name_of(activation)


def _check_softmax(layers: list, origins: Origins, errors: list) -> None:
    reported = set()
    for index, top in enumerate(layers[:-1]):
        for _, layer, _ in named_layers(top):
            path = origins.of(layer, f"model.layers[{index}]").path
            if _activation(layer) == "softmax" and path not in reported:
                reported.add(path)
                errors.append(
                    ConfigError(
                        join(path, "activation"),
                        f"softmax is only allowed on the last layer; this is layer {index} of "
                        f"{len(layers)} (use relu, tanh, ... here)",
                    )
                )


def _check_shapes(layers: list, origins: Origins, spec, errors: list) -> tuple | None:
    """The model's output shape, or None after reporting the first layer that does not fit
    (inside a block: the child, or the block whose branches disagree)."""
    shape = tuple(spec.input_shape)
    for index, layer in enumerate(layers):
        try:
            shape = layer.output_shape(shape)
        except ShapeError as error:
            where = origins.of(getattr(error, "layer", layer), f"model.layers[{index}]")
            reason = getattr(error, "reason", str(error))
            errors.append(
                ConfigError(
                    where.path,
                    f"{reason}{where.note()} at this depth (data '{spec.name}' has input "
                    f"shape {format_shape(spec.input_shape)})",
                )
            )
            return None
    return shape


def _check_output(layers, specs, origins, shape, loss, spec, errors: list) -> None:
    name = _type(loss)
    if not _check_task(name, spec, errors) or spec.task == "regression":
        return
    last = layers[-1]
    path = origins.of(last, f"model.layers[{len(layers) - 1}]").path
    width = shape[0] if len(shape) == 1 else None
    one, what = ("label", "labels") if spec.task == "multilabel" else ("class", "classes")
    if width is None:
        errors.append(
            ConfigError(
                path,
                f"the model's output must be flat ({spec.n_classes} {one} scores); got "
                f"shape {format_shape(shape)} (end with a fully_connected layer)",
            )
        )
    elif spec.classes_from_labels and width < spec.n_classes:
        errors.append(_label_out_of_range(spec, width, path))
    elif spec.n_classes is not None and width != spec.n_classes:
        errors.append(
            ConfigError(
                join(path, "n_out") if "n_out" in specs[-1] else path,
                f"the last layer's width must equal the number of {what} of '{spec.name}' "
                f"({spec.n_classes}); got {width}",
            )
        )
    _check_output_activation(name, last, path, errors)
    _check_class_weights(loss, spec, errors)


def _check_task(loss: str | None, spec, errors: list) -> bool:
    """False after reporting a loss that is not for the data's task."""
    tasks = LOSS_TASKS.get(loss)
    if tasks is None or spec.task in tasks:
        return True
    hint = SUGGESTED_LOSS.get(spec.task, "another loss")
    if loss == "binary_cross_entropy" and spec.task == "regression":
        hint += "; for 0/1 label columns set data.task: multilabel"
    errors.append(
        ConfigError(
            "model.loss",
            f"{loss} needs a {' or '.join(tasks)} target; data '{spec.name}' is {spec.task} "
            f"(use {hint})",
        )
    )
    return False


def _check_output_activation(loss: str | None, last, path: str, errors: list) -> None:
    """A loss that works on probabilities needs its own output activation last."""
    wanted = getattr(LOSSES.get(loss), "fused_activation", None) if loss in LOSSES else None
    activation = _activation(last)
    if wanted is None or activation == ACTIVATIONS.name_of(wanted):
        return
    hint = OUTPUT_HINTS.get((loss, activation))
    errors.append(
        ConfigError(
            join(path, "activation"),
            f"{loss} needs probabilities: the last activation must be "
            f"{ACTIVATIONS.name_of(wanted)}; got {activation or 'none'}"
            + (f" ({hint})" if hint else ""),
        )
    )


def _check_class_weights(loss, spec, errors: list) -> None:
    weights = loss.get("class_weights") if isinstance(loss, dict) else None
    if not isinstance(weights, list) or spec.n_classes is None:
        return
    if len(weights) != spec.n_classes:
        errors.append(
            ConfigError(
                "model.loss.class_weights",
                f"needs one weight per class: data '{spec.name}' has {spec.n_classes} classes; "
                f"got {len(weights)} weights (or write class_weights: balanced)",
            )
        )


def _label_out_of_range(spec, width: int, path: str) -> ConfigError:
    """Undeclared classes are counted from the labels, so one stray label (99 among 0-2)
    would otherwise read as 100 classes: report the label against the model's width."""
    return ConfigError(
        "data",
        f"label {spec.n_classes - 1} in '{spec.name}' is out of range for {width} classes "
        f"(the width of {path}; labels are 0..{width - 1}); if there are "
        f"{spec.n_classes} classes, set data.n_classes and {path}.n_out to {spec.n_classes}",
    )


def _check_batch(layers: list, origins: Origins, spec, batch_size, errors: list) -> None:
    """Batch normalization of vectors cannot train on batches of one example."""
    if not isinstance(batch_size, int) or batch_size < 1:
        return
    shape = tuple(spec.input_shape)
    for index, top in enumerate(layers):
        for _, layer, in_shape, _ in walk_layers(top, shape, str(index)):
            if layer.min_training_batch(in_shape) > batch_size and not layer.walk(in_shape):
                where = origins.of(layer, f"model.layers[{index}]").path
                errors.append(
                    ConfigError(
                        "data.batch_size",
                        f"{layer.type_name} at {where} normalizes vectors over the batch: "
                        f"training needs batches of {layer.min_training_batch(in_shape)} or "
                        f"more; got {batch_size}",
                    )
                )
                return
        shape = top.output_shape(shape)


def format_shape(shape) -> str:
    """``(8, 8, 1)`` → ``"8x8x1"``."""
    return "x".join(str(d) for d in shape)

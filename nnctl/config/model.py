"""The ``model:`` section: layers, loss and dtype, checked against the data's shape.

Every layer is checked on its own first; then, if all of them are valid and the data is
known, the layers' output shapes are inferred from the data set's input shape alone (no
data is loaded) so that cross-field errors point at the layer where they arise: a kernel
larger than its input at that depth, a softmax that is not last, a last width that is not
the number of classes, cross-entropy on a regression target.
"""

from __future__ import annotations

from pathlib import Path

from nnctl.config.components import LAYER, LOSS, check_spec
from nnctl.config.paths import join
from nnctl.config.schema import MODEL_KEYS, unknown_keys
from nnctl.core.checks import is_int
from nnctl.core.network import DTYPES
from nnctl.errors import ConfigError, ShapeError
from nnctl.registry import compact, did_you_mean

PROBABILITY_OUTPUTS = ("softmax", "sigmoid")


def resolve_model(value, spec, errors: list[ConfigError], base_dir=None) -> tuple[dict, list]:
    """The resolved ``model:`` section and its layer objects (None where invalid).

    ``base_dir`` is the config file's folder: a relative ``init_from`` resolves against it.
    """
    if not isinstance(value, dict):
        got = "nothing" if value is None else repr(value)
        errors.append(
            ConfigError("model", f"must be a mapping with 'layers' and 'loss'; got {got}")
        )
        return {}, []
    errors += unknown_keys(value, MODEL_KEYS, "model", "model")
    layers, specs = _check_layers(value.get("layers"), errors)
    out = {
        "layers": specs,
        "loss": _check_loss(value, errors),
        "dtype": _check_dtype(value, errors),
        "init_from": _check_init_from(value.get("init_from"), base_dir, errors),
        "freeze": _check_freeze(value.get("freeze"), specs, errors),
    }
    if spec is not None and layers and all(layer is not None for layer in layers):
        shape = _check_shapes(layers, spec, errors)
        if shape is not None:
            _check_output(specs, shape, _type(out["loss"]), spec, errors)
    _check_softmax(specs, errors)
    return out, layers


def _check_layers(layers, errors: list) -> tuple[list, list]:
    if not isinstance(layers, list) or not layers:
        got = "nothing" if layers is None else repr(layers)
        errors.append(ConfigError("model.layers", f"must be a non-empty list of layers; got {got}"))
        return [], []
    objects, specs = [], []
    for index, layer_spec in enumerate(layers):
        obj, resolved = check_spec(LAYER, layer_spec, f"model.layers[{index}]", errors)
        objects.append(obj)
        specs.append(resolved)
    return objects, specs


def _check_loss(model: dict, errors: list):
    """The resolved loss: its name when it has no arguments, else ``{type: ..., ...}``."""
    if "loss" not in model:
        errors.append(ConfigError("model", "missing required key 'loss' (cross_entropy or l2)"))
        return None
    _, resolved = check_spec(LOSS, model["loss"], "model.loss", errors)
    return compact(resolved) if resolved else None


def _check_dtype(model: dict, errors: list) -> str:
    dtype = model.get("dtype", "float32")
    if dtype not in DTYPES:
        errors.append(
            ConfigError("model.dtype", f"must be one of {', '.join(DTYPES)}; got {dtype!r}")
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
                f"must be the path of a run directory or checkpoint; got {value!r}",
            )
        )
        return None
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = Path(base_dir if base_dir is not None else ".").absolute() / path
    return str(path)


def _check_freeze(value, specs: list, errors: list) -> list:
    """Layer indices (negative count from the end) or layer type names to keep fixed."""
    if value is None:
        return []
    if not isinstance(value, list):
        value = [value]
    n, types = len(specs), {_type(spec) for spec in specs}
    for position, item in enumerate(value):
        path = f"model.freeze[{position}]"
        if is_int(item):
            if not -n <= item < n:
                errors.append(
                    ConfigError(path, f"layer index {item} is out of range for {n} layers")
                )
        elif isinstance(item, str):
            if item not in types:
                hint = did_you_mean(item, sorted(t for t in types if t))
                errors.append(ConfigError(path, f"no layer of type '{item}' in the model{hint}"))
        else:
            errors.append(
                ConfigError(path, f"must be a layer index or a layer type name; got {item!r}")
            )
    return list(value)


def frozen_indices(freeze: list, specs: list) -> set[int]:
    """The indices ``freeze`` names: each index (negative from the end) and every layer of
    each named type."""
    n, indices = len(specs), set()
    for item in freeze:
        if isinstance(item, str):
            indices.update(i for i, spec in enumerate(specs) if _type(spec) == item)
        else:
            indices.add(item % n)
    return indices


def _type(component) -> str | None:
    """The name of a resolved component, written as a name or as ``{type: ...}``."""
    return component.get("type") if isinstance(component, dict) else component


def _activation(layer_spec) -> str | None:
    return _type((layer_spec or {}).get("activation"))


def _check_softmax(specs: list, errors: list) -> None:
    for index, layer_spec in enumerate(specs[:-1]):
        if _activation(layer_spec) == "softmax":
            errors.append(
                ConfigError(
                    f"model.layers[{index}].activation",
                    f"softmax is only allowed on the last layer; this is layer {index} of "
                    f"{len(specs)} (use relu, tanh, ... here)",
                )
            )


def _check_shapes(layers: list, spec, errors: list) -> tuple | None:
    """The model's output shape, or None after reporting the first layer that does not fit."""
    shape = tuple(spec.input_shape)
    for index, layer in enumerate(layers):
        try:
            shape = layer.output_shape(shape)
        except ShapeError as error:
            errors.append(
                ConfigError(
                    f"model.layers[{index}]",
                    f"{error} at this depth (data '{spec.name}' has input shape "
                    f"{format_shape(spec.input_shape)})",
                )
            )
            return None
    return shape


def _check_output(specs: list, shape: tuple, loss, spec, errors: list) -> None:
    last = len(specs) - 1
    path = f"model.layers[{last}]"
    if spec.task == "regression":
        if loss == "cross_entropy":
            errors.append(
                ConfigError(
                    "model.loss",
                    f"cross_entropy needs a classification target; data '{spec.name}' is "
                    "regression (use l2)",
                )
            )
        return
    width = shape[0] if len(shape) == 1 else None
    if width is None:
        errors.append(
            ConfigError(
                path,
                f"the model's output must be flat ({spec.n_classes} class scores); got shape "
                f"{format_shape(shape)} (end with a fully_connected layer)",
            )
        )
    elif spec.n_classes is not None and width != spec.n_classes:
        errors.append(
            ConfigError(
                join(path, "n_out") if "n_out" in specs[last] else path,
                f"the last layer's width must equal the number of classes of '{spec.name}' "
                f"({spec.n_classes}); got {width}",
            )
        )
    activation = _activation(specs[last])
    if loss == "cross_entropy" and activation not in PROBABILITY_OUTPUTS:
        errors.append(
            ConfigError(
                join(path, "activation"),
                f"cross_entropy needs probabilities: the last activation must be softmax; "
                f"got {activation}",
            )
        )


def format_shape(shape) -> str:
    """``(8, 8, 1)`` → ``"8x8x1"``."""
    return "x".join(str(d) for d in shape)

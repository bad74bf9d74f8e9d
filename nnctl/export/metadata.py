"""What an exported file says about its model: input layout and shape, task, class names,
normalization, nnctl version and config hash, as string pairs (ONNX ``metadata_props``,
the safetensors header's ``__metadata__``)."""

from __future__ import annotations

import json

from nnctl import __version__

INPUT_LAYOUTS = {3: "NHWC", 1: "NC"}  # rank of one raw example → layout of the input


def class_names(model) -> list[str] | None:
    """The run's class names (saved in the checkpoint, else those of its data set), else
    the class indices as strings; None for regression."""
    spec = model.config.spec
    if spec.task != "classification":
        return None
    names = model.meta.get("class_names") or spec.class_names
    if not names or len(names) != spec.n_classes:
        names = range(spec.n_classes)
    return [str(name) for name in names]


def input_layout(sample_shape) -> str:
    """``NHWC`` for images, ``NC`` for feature vectors."""
    return INPUT_LAYOUTS[len(sample_shape)]


def export_metadata(model) -> dict[str, str]:
    """String metadata of a ``TrainedModel`` (``nnctl.train.run.open_model``)."""
    prep, spec = model.preprocess, model.config.spec
    metadata = {
        "input_layout": input_layout(prep.sample_shape),
        "input_shape": json.dumps(list(prep.sample_shape)),
        "input_dtype": "float32",
        "task": spec.task,
        "normalization": prep.mode,
        "nnctl_version": __version__,
        "config_hash": model.meta.get("config_hash") or model.config.hash(),
        "checkpoint": model.checkpoint.name,
        "epoch": str(model.meta.get("progress", {}).get("epoch", "")),
        "config": model.config.canonical_json(),
    }
    names = class_names(model)
    if names is not None:
        metadata["class_names"] = json.dumps(names)
    return metadata

"""Export of trained models for other tools: ``onnx`` (the whole network in evaluation mode,
preprocessing included) and ``safetensors`` (the weights).

Both need the optional extra (``pip install 'nnctl[onnx]'``); a format's module is imported
only when it is used, so nnctl runs without it. ``FORMATS`` maps ``--format`` names to
``Format`` records; ``export_model`` writes one.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from nnctl.errors import ExportError
from nnctl.registry import Registry

EXTRA_HINT = "pip install 'nnctl[onnx]'"


@dataclass(frozen=True)
class Format:
    """An export format: the file suffix, the module with its ``write(model, path)`` and
    the third-party packages that module imports."""

    suffix: str
    module: str
    packages: tuple[str, ...]


FORMATS = Registry("export format")
FORMATS.register("onnx")(Format(".onnx", "nnctl.export.onnx", ("onnx",)))
FORMATS.register("safetensors")(
    Format(".safetensors", "nnctl.export.safetensors", ("safetensors",))
)


def get_format(name: str) -> Format:
    """The format called ``name``; ConfigError (``--format``) listing the formats if none."""
    return FORMATS.get(name, "--format")


def _writer(name: str, fmt: Format):
    try:
        module = importlib.import_module(fmt.module)
    except ImportError as error:
        missing = (error.name or "").split(".")[0]
        if missing not in fmt.packages:
            raise
        raise ExportError(f"--format {name} needs the '{missing}' package: {EXTRA_HINT}") from None
    return module.write


def export_model(model, name: str, path: Path) -> None:
    """Write ``model`` (a ``TrainedModel``) to ``path`` in the format called ``name``."""
    _writer(name, get_format(name))(model, Path(path))


__all__ = ["FORMATS", "Format", "export_model", "get_format"]

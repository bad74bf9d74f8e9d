"""``nnctl export``: a trained model as ONNX or safetensors (``nnctl.export``)."""

from __future__ import annotations

from pathlib import Path

import click

from nnctl import layout
from nnctl.commands.options import PATH
from nnctl.errors import NnctlError
from nnctl.export import FORMATS, export_model, get_format
from nnctl.fileio import user_path
from nnctl.train import run


def _output_path(target: str, model, suffix: str, output: str | None) -> Path:
    """``output``, else RUN_DIR/model.<suffix>, else the checkpoint's name with ``suffix``;
    NnctlError when its folder does not exist."""
    if output is not None:
        out = user_path(output)
    elif user_path(target).is_dir():
        out = user_path(target) / f"{layout.EXPORT_STEM}{suffix}"
    else:
        out = model.checkpoint.with_suffix(suffix)
    if not out.parent.is_dir():
        raise NnctlError(f"{out}: cannot write, the folder {out.parent} does not exist")
    return out


@click.command("export")
@click.argument("target", metavar="RUN_DIR|CHECKPOINT", type=PATH)
@click.option("--format", "format_name", default="onnx", show_default=True,
              help=f"One of {', '.join(FORMATS.names())}.")  # fmt: skip
@click.option("--output", "-o", type=PATH,
              help=f"File to write (default: RUN_DIR/{layout.EXPORT_STEM}.onnx, or the "
                   "checkpoint's name with the format's suffix).")  # fmt: skip
def export_command(target, format_name, output):
    """Export a trained model for other tools. Needs pip install 'nnctl[onnx]'.

    onnx: the whole network in evaluation mode with the run's normalization, so raw
    float32 inputs (images NHWC) go in and probabilities (or regression outputs) come out;
    class names, input layout, nnctl version and config hash are in the metadata.
    safetensors: every weight and running statistic under its checkpoint name and shape.
    On a run directory, the checkpoint its summary reports (as eval and predict use).

    \b
    Examples:
      nnctl export runs/digits-mlp-20261130-221500 -o digits.onnx
      nnctl export runs/x/checkpoints/best.npz --format safetensors
    """
    fmt = get_format(format_name)
    model = run.open_model(target)
    out = _output_path(target, model, fmt.suffix, output)
    export_model(model, format_name, out)
    click.echo(f"wrote {out} ({format_name}, from {model.checkpoint})", err=True)


COMMANDS = [export_command]

"""``nnctl time``: per-layer forward and backward milliseconds (``nnctl.train.timing``)."""

from __future__ import annotations

import json

import click

from nnctl.commands.options import config_argument, positive_int
from nnctl.commands.table import format_table
from nnctl.config import build, load_config
from nnctl.config.memory import require_memory
from nnctl.train.timing import TimingReport, time_network


@click.command("time")
@config_argument()
@click.option("--iterations", "-n", type=int, default=20, show_default=True,
              callback=positive_int, help="Timed passes (after 2 warm-up passes).")  # fmt: skip
@click.option("--batch-size", "-b", type=int, callback=positive_int,
              help="Batch size (default: the config's data.batch_size).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the timings as JSON.")
def time_command(config: str, overrides: tuple[str, ...], iterations: int,
                 batch_size: int | None, as_json: bool) -> None:  # fmt: skip
    """Time each layer's forward and backward pass on synthetic input (like `caffe time`).

    Layers are timed one by one (median milliseconds over the iterations), the layers inside
    blocks indented below them (a block's time includes theirs); the step row is
    a whole training step as the network runs it, including its fused conv→pool stages,
    and gives the samples per second. Nothing is read from disk but the config.

    \b
    Example:
      nnctl time configs/mnist-cnn.yaml --iterations 50 --batch-size 128
    """
    cfg = load_config(config, overrides)
    batch = batch_size or cfg.data["data"]["batch_size"]
    require_memory(cfg, batch, "--batch-size" if batch_size else "data.batch_size")
    experiment = build(cfg)
    report = time_network(experiment.network, experiment.spec, batch, iterations)
    if as_json:
        click.echo(json.dumps(report.to_dict()))
        return
    click.echo(f"{cfg.name}: batch {batch}, median of {iterations} iterations "
               f"({experiment.network.dtype})")  # fmt: skip
    click.echo(format_table(_rows(report), right={3, 4}))
    click.echo(f"step: {report.step_ms:.3f} ms, {report.samples_per_s:,.0f} samples/s")


def _rows(report: TimingReport) -> list[tuple[str, ...]]:
    rows = [("#", "layer", "output", "forward ms", "backward ms")]
    for t in report.layers:
        shape, kind = "x".join(map(str, t.output_shape)), "  " * t.depth + t.layer
        rows.append((t.name, kind, shape, f"{t.forward_ms:.3f}", f"{t.backward_ms:.3f}"))
    layer_fwd = sum(t.forward_ms for t in report.layers if t.depth == 0)
    layer_bwd = sum(t.backward_ms for t in report.layers if t.depth == 0)
    rows.append(("", "sum of layers", "", f"{layer_fwd:.3f}", f"{layer_bwd:.3f}"))
    rows.append(("", "network step", "", f"{report.forward_ms:.3f}", f"{report.backward_ms:.3f}"))
    return rows


COMMANDS = [time_command]

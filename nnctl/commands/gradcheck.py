"""``nnctl gradcheck``: the built network's gradients against central differences
(``nnctl.core.gradcheck``)."""

from __future__ import annotations

import json
from dataclasses import asdict

import click
import numpy as np

from nnctl.commands.options import config_argument, positive_int
from nnctl.commands.table import format_table
from nnctl.config import build, load_config
from nnctl.config.memory import require_memory
from nnctl.core.gradcheck import ParameterCheck, check_network
from nnctl.core.synthetic import synthetic_batch
from nnctl.errors import NnctlError


@click.command("gradcheck")
@config_argument()
@click.option("--batch-size", "-b", type=int, default=4, show_default=True,
              callback=positive_int, help="Synthetic batch size.")  # fmt: skip
@click.option("--samples", "-k", type=int, default=30, show_default=True, callback=positive_int,
              help="Entries checked per parameter; smaller tensors are checked entirely.")  # fmt: skip
@click.option("--tol", type=float, default=1e-5, show_default=True,
              help="Largest accepted relative error.")  # fmt: skip
@click.option("--eps", type=float, default=1e-6, show_default=True,
              help="Step of the central differences.")  # fmt: skip
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the synthetic batch and of the checked entries.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def gradcheck_command(config: str, overrides: tuple[str, ...], batch_size: int, samples: int,
                      tol: float, eps: float, seed: int, as_json: bool) -> None:  # fmt: skip
    """Check backward's gradients against central differences, in float64.

    Builds the network of CONFIG with model.dtype=float64 and its configured weights, and
    compares the gradient of every parameter with (L(p + eps) - L(p - eps)) / (2 eps) on a
    synthetic batch (random normal inputs; random one-hot targets for classification,
    random normal targets for regression). A block's parameters are checked per child (row
    3.0 is the first layer inside layer 3). The network is in training mode; dropout draws
    the same mask in every evaluation (its generator is reset before each forward). The
    error of a parameter is the largest |analytic - numeric| over the checked entries
    divided by the largest |analytic| or |numeric| (the gradient's scale). Exits 1 if any
    error is above --tol, unless |analytic - numeric| is within the noise of the central
    differences (32 units in the last place of the loss over 2 eps): a gradient that is
    zero up to rounding, such as a conv bias right before a batch norm, passes as "zero
    within noise".

    \b
    Example:
      nnctl gradcheck configs/mnist-cnn.yaml --samples 50
    """
    cfg = load_config(config, (*overrides, "model.dtype=float64"))
    require_memory(cfg, batch_size, "--batch-size")
    experiment = build(cfg)
    network, spec = experiment.network, experiment.spec
    rng = np.random.default_rng(seed)  # the batch, then the checked entries
    X, Y = synthetic_batch(network, spec.input_shape, spec.task, batch_size, rng)
    results = check_network(network, X, Y, samples, eps=eps, rng=rng)
    failed = [r for r in results if not r.passes(tol)]
    if as_json:
        rows = [{**asdict(r), "ok": r not in failed} for r in results]
        click.echo(json.dumps({"tol": tol, "eps": eps, "ok": not failed, "parameters": rows}))
    else:
        click.echo(format_table(_rows(results, failed, tol), right={4, 5}))
    if failed:
        names = ", ".join(r.key for r in failed)
        raise NnctlError(f"gradient check failed (tol {tol:g}) for {names}")
    if not as_json:
        click.echo(f"ok: {len(results)} parameters within {tol:g}")


def _rows(results: list[ParameterCheck], failed: list[ParameterCheck], tol: float):
    rows = [("#", "layer", "param", "shape", "checked", "max rel error", "")]
    for r in results:
        shape = "x".join(map(str, r.shape))
        noise_only = r.max_relative_error > tol and r not in failed
        mark = "FAIL" if r in failed else "ok (zero within noise)" if noise_only else "ok"
        where = f"{r.index}.{r.child}" if r.child else str(r.index)
        rows.append((where, r.layer, r.parameter, shape, str(r.checked),
                     f"{r.max_relative_error:.2e}", mark))  # fmt: skip
    return rows


COMMANDS = [gradcheck_command]

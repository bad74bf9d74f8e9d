"""``nnctl sweep``: many runs of one config, a grid or a random search, locally or on Ray."""

from __future__ import annotations

import json

import click

from nnctl import layout
from nnctl.commands.options import PATH, config_argument, positive_int
from nnctl.errors import Interrupted, NnctlError
from nnctl.sweep import runner
from nnctl.sweep.spec import is_sweep_file, parse_grid_option, spec_from_config, spec_from_file


def _check_grid(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]):
    keys = set()
    for value in values:
        try:
            key, _ = parse_grid_option(value)
        except (ValueError, NnctlError) as error:
            raise click.BadParameter(str(error), ctx=ctx, param=param) from None
        if key in keys:
            raise click.BadParameter(f"{key} is swept twice", ctx=ctx, param=param)
        keys.add(key)
    return tuple(values)


@click.command("sweep")
@config_argument()
@click.option("--grid", "grid", metavar="KEY=V1,V2,...", multiple=True, callback=_check_grid,
              help="Sweep KEY over the values (read as YAML); several --grid make a "
                   "cartesian product. Repeatable.")  # fmt: skip
@click.option("--out", type=PATH,
              help="Sweep folder (default runs/<name>-sweep-<hash of the sweep>).")  # fmt: skip
@click.option("--jobs", "-j", type=int, callback=positive_int,
              help="Trials at a time (local default: the number of CPUs; "
                   "ray default: as many as the cluster's CPUs allow).")  # fmt: skip
@click.option("--backend", type=click.Choice(runner.BACKENDS),
              help="Where trials run (default local; ray with --address).")  # fmt: skip
@click.option("--address", metavar="ADDR",
              help="Ray cluster to use (e.g. 127.0.0.1:6379 or auto); default: start a "
                   "local Ray for the sweep.")  # fmt: skip
@click.option("--cpus-per-trial", type=int, default=1, show_default=True, callback=positive_int,
              help="Ray: CPUs reserved by each trial (and its BLAS threads).")  # fmt: skip
@click.option("--retry-failed", is_flag=True,
              help="Run failed and diverged trials again, from scratch.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the table as a JSON list.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output (errors are still shown).")
def sweep_command(config, overrides, grid, out, jobs, backend, address, cpus_per_trial,
                  retry_failed, as_json, quiet):  # fmt: skip
    """Train CONFIG once per combination of --grid values, or run the sweep file CONFIG.

    Every trial's config is checked before the first one starts. Each trial is a run
    directory OUT/<index>-<key=value,...>/; OUT/sweep.csv and OUT/sweep.jsonl hold one row
    per trial (overrides, status, best validation and test metrics, epochs, wall time,
    error), updated as trials finish; one line per finished trial goes to stderr (none
    with --quiet).
    Running the same sweep again skips completed trials and resumes interrupted ones;
    failed ones run again only with --retry-failed. Exits 1 if any trial did not complete.

    A sweep file has base: (a config, relative to the file), optional set: [KEY=VALUE],
    grid: {KEY: [values]} and/or random: {trials: N, seed: S, space: {KEY: {uniform:
    [a, b]} | {loguniform: [a, b]} | {choice: [values]}}}; random samples are crossed with
    the grid. Or search: {type: grid | random | tpe, trials: N, seed: S} with space: {KEY:
    [values] | {uniform | loguniform | int: [a, b]} | {choice: [values]}}, and optionally
    early_stopping: {type: asha | median, metric, mode, grace_period, reduction_factor}
    (pip install 'nnctl[search]'): tpe learns from the finished trials, the scheduler
    stops trials that fall behind (status pruned); rerunning continues the study.

    \b
    Examples:
      nnctl sweep configs/digits-mlp.yaml --grid optimizer.lr=0.01,0.001 \\
          --grid model.layers[0].n_out=32,64 --jobs 2 --out runs/lr-width
      nnctl sweep configs/sweeps/digits-lr-width.yaml
      nnctl sweep configs/sweeps/digits-random.yaml --backend ray --address auto
      nnctl sweep configs/sweeps/digits-tpe.yaml --jobs 2
      nnctl runs runs/lr-width --sort val_accuracy
    """
    if backend == "local" and address:
        raise click.UsageError("--address needs --backend ray")
    options = runner.SweepOptions(out=out, backend=backend or ("ray" if address else "local"),
                                  jobs=jobs, address=address, cpus_per_trial=cpus_per_trial,
                                  retry_failed=retry_failed)  # fmt: skip
    if is_sweep_file(config):
        spec = spec_from_file(config, overrides, grid)
    else:
        spec = spec_from_config(config, overrides, grid)
    echo = _silent if quiet else lambda line: click.echo(line, err=True)
    result = runner.run_sweep(spec, options, echo=echo)
    if as_json:
        click.echo(json.dumps(result.rows))
    _finish(result, echo)


def _silent(line: str) -> None:
    pass


def _finish(result: runner.SweepResult, echo) -> None:
    table = result.out / layout.SWEEP_CSV
    if result.stopped:
        raise Interrupted(f"sweep stopped; run the same command again to continue ({table})",
                          result.stopped)  # fmt: skip
    counts: dict[str, int] = {}
    for row in result.rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in counts.items())
    if result.unfinished:
        names = ", ".join(row["name"] for row in result.unfinished[:5])
        more = f" and {len(result.unfinished) - 5} more" if len(result.unfinished) > 5 else ""
        raise NnctlError(f"{len(result.unfinished)} of {len(result.rows)} trials did not "
                         f"complete ({summary}): {names}{more}; see {table}")  # fmt: skip
    echo(f"sweep done: {summary}; table {table}")


COMMANDS = [sweep_command]

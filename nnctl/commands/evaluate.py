"""``nnctl eval`` and ``nnctl predict``: use a trained model, never change it."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import click
import numpy as np

from nnctl import data as datamod
from nnctl.commands.options import PATH
from nnctl.commands.output import check_output
from nnctl.data import Split
from nnctl.data.inputs import prepare, read_labelled, read_prediction_input
from nnctl.data.sources import first_nonfinite_row
from nnctl.errors import CheckpointError, DataError, NnctlError
from nnctl.fileio import atomic_write_bytes
from nnctl.train import run
from nnctl.train.evaluate import evaluate, predict_outputs

OUTPUT_SUFFIXES = (".csv", ".npz")


def _split_to_evaluate(model, split_name: str, data_file: str | None):
    spec = model.config.spec
    if data_file:
        X, y = read_labelled(data_file, model.config.data["data"], spec)
        return Split(prepare(X, model.preprocess, data_file), y), spec
    splits = datamod.load(model.data_to_load(), seed=model.config.data.get("seed", 0))
    if not run.same_preprocessing(splits.preprocess, model.preprocess):
        raise CheckpointError(
            f"{model.checkpoint}: the data set no longer matches the one the model was "
            "trained on (its normalization statistics differ)"
        )
    split = getattr(splits, split_name)
    if split is None:
        raise NnctlError(f"this run's data has no {split_name} split")
    return split, splits.spec


def _print_report(result: dict, split: str, checkpoint: Path, names=None) -> None:
    click.echo(f"{checkpoint} on {split} ({result['samples']} examples)")
    click.echo(f"loss      {result['loss']:.6f}")
    if "accuracy" not in result:
        click.echo(f"mse       {result['mse']:.6g}\nmae       {result['mae']:.6g}")
        return
    click.echo(f"accuracy  {result['accuracy']:.4f}")
    if "exact_match" in result:  # multi-label: accuracy per label, then every label right
        click.echo(f"exact     {result['exact_match']:.4f}")
        return
    labels = [str(i) if names is None else f"{i} {names[i]}" for i in range(len(result["recall"]))]
    width = max(5, *map(len, labels))
    click.echo(f"{'class':<{width}}  precision  recall")
    for label, p, r in zip(labels, result["precision"], result["recall"]):
        click.echo(f"{label:<{width}}  {p:9.4f}  {r:6.4f}")
    click.echo("confusion matrix (rows: true class, columns: predicted)")
    for row in result["confusion_matrix"]:
        click.echo(" ".join(f"{v:5d}" for v in row))


@click.command("eval")
@click.argument("target", metavar="RUN_DIR|CHECKPOINT", type=PATH)
@click.option("--split", "split_name", type=click.Choice(["test", "validation", "train"]),
              default="test", show_default=True, help="Which split of the run's data.")  # fmt: skip
@click.option("--data", "data_file", type=PATH, help="Evaluate on this .npz/.csv file instead.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
def eval_command(target, split_name, data_file, as_json):
    """Loss, accuracy, per-class precision/recall and confusion matrix (MSE and MAE for
    regression) of a trained model. On a run directory, the checkpoint its summary
    reports, so the numbers agree with summary.json exactly. Never changes the model.

    A checkpoint file given alone opens no data file named inside it: for a model trained
    on your own data, pass --data FILE (or evaluate its run directory).

    \b
    Examples:
      nnctl eval runs/digits-mlp-20261130-221500
      nnctl eval runs/x/checkpoints/last.npz --split validation --json
      nnctl eval model.npz --data holdout.csv
    """
    model = run.open_model(target)
    split, spec = _split_to_evaluate(model, split_name, data_file)
    with np.errstate(all="ignore"):
        result = evaluate(model.network, split, spec, detailed=True)
    if not math.isfinite(result["loss"]):
        raise NnctlError(
            f"{model.checkpoint}: the loss on {data_file or split_name} is not finite "
            "(the inputs are far outside what the model can compute with)"
        )
    result = {"checkpoint": str(model.checkpoint), "split": data_file or split_name, **result}
    names = spec.class_names if "precision" in result else None
    if names is not None:
        result["class_names"] = list(names)
    if as_json:
        click.echo(json.dumps(result))
    else:
        _print_report(result, data_file or split_name, model.checkpoint, names)


def _prediction_table(outputs: np.ndarray, spec) -> dict[str, np.ndarray]:
    """Columns of the predictions: ``class`` (index) and ``class_name`` (when the data set
    has names) and ``probabilities``; ``prediction`` for regression."""
    outputs, task = outputs.reshape(len(outputs), -1), spec.task
    if task == "classification":
        table = {"class": outputs.argmax(axis=1)}
        if spec.class_names is not None:
            table["class_name"] = np.asarray(spec.class_names)[table["class"]]
        return {**table, "probabilities": outputs}
    if task == "multilabel":
        return {"probabilities": outputs}
    return {"prediction": outputs}


def _as_csv(table: dict[str, np.ndarray]) -> str:
    values = table.get("probabilities", table.get("prediction"))
    prefix = "p" if "probabilities" in table else "y"
    labels = [key for key in ("class", "class_name") if key in table]
    header = labels + [f"{prefix}{i}" for i in range(values.shape[1])]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for index, row in enumerate(values):
        cells = [str(table[key][index]) for key in labels]
        writer.writerow(cells + [f"{v:.6g}" for v in row])
    return buffer.getvalue()


def _as_npz(table: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **table)
    return buffer.getvalue()


def _predict(model, input_file: str) -> tuple[dict[str, np.ndarray], float | None]:
    """The prediction table of every row of ``input_file`` and, when the file still holds
    its labels (the training file format), the accuracy; DataError for a row the model
    cannot compute (its output is not finite)."""
    spec = model.config.spec
    X, y = read_prediction_input(input_file, model.config.data["data"], spec)
    X = prepare(X, model.preprocess, input_file)
    with np.errstate(all="ignore"):
        outputs = predict_outputs(model.network, X)
    row = first_nonfinite_row(outputs)
    if row is not None:
        raise DataError(
            f"{input_file}: the model's output for row {row} is not finite (its values are "
            "far outside what the model can compute with)"
        )
    table = _prediction_table(outputs, spec)
    accuracy = None
    if y is not None and "class" in table:
        accuracy = float(np.mean(table["class"] == np.asarray(y).reshape(-1)))
    return table, accuracy


def _summary(model, input_file, out, table: dict[str, np.ndarray]) -> dict:
    """What ``predict --json`` prints: where from and to, how many rows, and the predicted
    class counts; the predictions themselves when they went nowhere else."""
    spec = model.config.spec
    summary = {
        "checkpoint": str(model.checkpoint),
        "input": str(input_file),
        "output": None if out is None else str(out),
        "rows": len(next(iter(table.values()))),
        "task": spec.task,
    }
    if "class" in table:
        summary["n_classes"] = spec.n_classes
        summary["class_counts"] = np.bincount(table["class"], minlength=spec.n_classes).tolist()
        if spec.class_names is not None:
            summary["class_names"] = list(spec.class_names)
    if out is None:
        summary.update({key: values.tolist() for key, values in table.items()})
    return summary


@click.command("predict")
@click.argument("target", metavar="RUN_DIR|CHECKPOINT", type=PATH)
@click.option("--input", "input_file", type=PATH, required=True,
              help="Features: .npy, .npz, .csv or IDX.")  # fmt: skip
@click.option("--output", "output_file", type=PATH,
              help="Write .csv or .npz here (default: CSV on stdout).")  # fmt: skip
@click.option("--force", is_flag=True, help="Replace an existing --output file.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object on stdout (the predictions too without --output).")  # fmt: skip
@click.option("--quiet", "-q", is_flag=True, help="No message on stderr.")
def predict_command(target, input_file, output_file, force, as_json, quiet):
    """Predict classes and probabilities (or regression outputs) for new inputs, with the
    run's own preprocessing.

    --output never replaces the input or the checkpoint, never writes inside a run
    directory or sweep folder, and replaces another existing file only with --force.

    \b
    Examples:
      nnctl predict runs/mnist-cnn-20261130 --input t10k-images-idx3-ubyte.gz --output p.csv
      nnctl predict runs/iris/checkpoints/best.npz --input flowers.csv
      nnctl predict runs/iris --input flowers.csv --json | jq .class
    """
    out = None
    if output_file is not None:
        out = check_output(output_file, [input_file, target], force, OUTPUT_SUFFIXES)
    model = run.open_model(target)
    table, accuracy = _predict(model, input_file)
    if out is not None:
        atomic_write_bytes(out, _as_npz(table) if out.suffix == ".npz" else _as_csv(table).encode())
    if as_json:
        summary = _summary(model, input_file, out, table)
        if accuracy is not None:
            summary["accuracy"] = accuracy
        click.echo(json.dumps(summary))
    elif out is None:
        click.echo(_as_csv(table), nl=False)
    if out is not None and not quiet:
        click.echo(f"wrote {len(next(iter(table.values())))} predictions to {out}", err=True)
    if accuracy is not None and not quiet:
        click.echo(f"accuracy {accuracy:.4f} (the input holds its labels)", err=True)


COMMANDS = [eval_command, predict_command]

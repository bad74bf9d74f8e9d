"""``nnctl plot`` with many runs: colours by a hyperparameter, mean ± std over seeds, a
metric against a hyperparameter (run folders written by hand: no training)."""

from __future__ import annotations

import json
import statistics

import pytest
import yaml
from click.testing import CliRunner

from nnctl.cli import main
from nnctl.train.plots import mean_curve
from nnctl.train.plotstyle import short, wants_log

matplotlib = pytest.importorskip("matplotlib")

from nnctl.train.plotstyle import Palette

PNG = b"\x89PNG\r\n\x1a\n"


def make_sweep(root, lrs, seeds=(0,), pruned=()):
    """A sweep folder of hand-written runs: lr x seed, val accuracy rising with lr."""
    root.mkdir(parents=True, exist_ok=True)
    for i, (lr, seed) in enumerate((lr, seed) for lr in lrs for seed in seeds):
        run = root / f"{i:03d}-optimizer.lr={lr},seed={seed}"
        run.mkdir()
        config = {"seed": seed, "optimizer": {"type": "sgd", "lr": lr}, "data": {"x": "a"}}
        (run / "config.yaml").write_text(yaml.safe_dump(config))
        status = "pruned" if i in pruned else "completed"
        (run / "meta.json").write_text(json.dumps({"status": status}))
        (run / "trial.json").write_text(json.dumps({"params": {"optimizer.lr": lr,
                                                               "seed": seed}}))  # fmt: skip
        epochs = 1 if i in pruned else 3
        rows = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e + seed / 10,
                 "train_accuracy": 0.5 + lr, "val_accuracy": 0.4 + lr + seed / 100}
                for e in range(1, epochs + 1)]  # fmt: skip
        (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def plot(*args):
    result = CliRunner().invoke(main, ["plot", *map(str, args)])
    return result.exit_code, result.output


def test_mean_curve_averages_each_epoch_over_the_runs_that_logged_it():
    runs = [
        [{"epoch": 1, "val_loss": 1.0}, {"epoch": 2, "val_loss": 0.5}],
        [{"epoch": 1, "val_loss": 3.0}],
    ]  # fmt: skip  (the second was pruned after 1)
    curve = mean_curve("lr=0.1", runs, 0.1)
    assert curve.rows == [{"epoch": 1, "val_loss": 2.0}, {"epoch": 2, "val_loss": 0.5}]
    assert curve.spread == [{"epoch": 1, "val_loss": statistics.stdev([1.0, 3.0])},
                            {"epoch": 2, "val_loss": 0.0}]  # fmt: skip


def test_palettes():
    scale = Palette([0.001, 0.01, 0.1], "optimizer.lr", log=True)
    assert scale.numeric and type(scale.norm).__name__ == "LogNorm"
    assert len({tuple(c) for c in scale.colours}) == 3
    values = ["adam", "sgd", "adam", "sgd"]
    by_value = Palette(values, "optimizer.type")
    assert not by_value.numeric and by_value.distinct == ["adam", "sgd"]
    assert by_value.colours[0] == by_value.colours[2] != by_value.colours[1]
    many = Palette([f"run-{i}" for i in range(30)], "run")
    assert len({tuple(c) for c in many.colours}) == 30  # no colour repeats
    assert wants_log([0.001, 0.1]) and not wants_log([16, 64]) and not wants_log([-1, 100])
    assert len(short("x" * 100)) == 40


@pytest.mark.parametrize("count", [1, 4, 12, 30])
def test_plots_of_1_4_12_and_30_runs(tmp_path, count):
    lrs = [round(0.001 * 1.3**i, 6) for i in range(count)]
    sweep = make_sweep(tmp_path / "sweep", lrs)
    out = tmp_path / "curves.png"
    code, output = plot(sweep, "-o", out)
    assert code == 0, output
    assert out.read_bytes().startswith(PNG)


def test_group_by_and_vs(tmp_path):
    sweep = make_sweep(tmp_path / "sweep", [0.001, 0.01, 0.1], seeds=(0, 1, 2), pruned=(1,))
    for args in (["--group-by", "optimizer.lr"], ["--color-by", "seed"],
                 ["--vs", "optimizer.lr"], ["--vs", "seed", "--color-by", "optimizer.lr"],
                 ["--group-by", "optimizer.lr,seed", "--metric", "loss"]):  # fmt: skip
        out = tmp_path / "plot.png"
        out.unlink(missing_ok=True)
        code, output = plot(sweep, "-o", out, *args)
        assert code == 0, (args, output)
        assert out.read_bytes().startswith(PNG)


def test_a_key_no_run_has_is_one_line(tmp_path):
    sweep = make_sweep(tmp_path / "sweep", [0.1, 0.2])
    code, output = plot(sweep, "-o", tmp_path / "x.png", "--color-by", "optimizer.momentum")
    assert code == 1
    assert output.startswith("error: ") and "has no 'optimizer.momentum'" in output
    assert len(output.splitlines()) == 1


def test_many_trials_are_coloured_by_the_swept_key(tmp_path, monkeypatch):
    from nnctl.commands import plot as command

    seen = {}
    monkeypatch.setattr(command, "plot_curves", lambda curves, metrics, out, title, log:
                        seen.update(title=title, log=log, values=[c.value for c in curves]))  # fmt: skip
    sweep = make_sweep(tmp_path / "sweep", [0.001, 0.003, 0.01, 0.03, 0.1], seeds=(0, 1))
    assert plot(sweep, "-o", tmp_path / "x.png")[0] == 0
    assert seen["title"] == "optimizer.lr" and seen["log"] is True  # not seed: fewer values
    assert seen["values"][:2] == [0.001, 0.001]
    few = make_sweep(tmp_path / "few", [0.001, 0.003])
    assert plot(few, "-o", tmp_path / "y.png")[0] == 0
    assert seen["title"] is None  # a few runs: one colour and legend entry each

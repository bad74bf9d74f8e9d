"""``nnctl runs --group-by``: mean ± std and n over the runs that share config values
(run folders written by hand, so the expected numbers are known)."""

from __future__ import annotations

import json
import statistics

import pytest
import yaml
from click.testing import CliRunner

from nnctl.cli import main
from nnctl.rungroups import parse_keys

# (lr, seed, best val accuracy, status)
RUNS = [(0.1, 0, 0.90, "completed"), (0.1, 1, 0.92, "completed"), (0.1, 2, 0.97, "completed"),
        (0.01, 0, 0.80, "completed"), (0.01, 1, 0.70, "pruned"), (0.001, 0, 0.50, "completed")]  # fmt: skip


@pytest.fixture
def runs(tmp_path):
    for i, (lr, seed, accuracy, status) in enumerate(RUNS):
        run = tmp_path / f"{i:03d}-lr={lr},seed={seed}"
        run.mkdir()
        config = {"seed": seed, "optimizer": {"type": "sgd", "lr": lr},
                  "model": {"layers": [{"type": "fully_connected", "n_out": 8}]},
                  "train": {"epochs": 3}}  # fmt: skip
        (run / "config.yaml").write_text(yaml.safe_dump(config))
        (run / "meta.json").write_text(json.dumps({"status": status}))
        rows = [{"epoch": e, "val_accuracy": accuracy - 0.1 * (3 - e), "seconds": 1.0}
                for e in (1, 2, 3)]  # fmt: skip
        (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path


def invoke(*args):
    result = CliRunner().invoke(main, ["runs", *map(str, args)])
    return result.exit_code, result.output


def test_group_by_a_key_averages_over_the_others(runs):
    code, output = invoke(runs, "--group-by", "optimizer.lr", "--json")
    assert code == 0, output
    groups = json.loads(output)
    assert [g["group"] for g in groups] == [{"optimizer.lr": 0.001}, {"optimizer.lr": 0.01},
                                            {"optimizer.lr": 0.1}]  # fmt: skip
    assert [g["n"] for g in groups] == [1, 2, 3]
    top = groups[2]["val_accuracy"]
    assert top["mean"] == pytest.approx(0.93) and top["n"] == 3
    assert top["std"] == pytest.approx(statistics.stdev([0.90, 0.92, 0.97]))
    assert groups[0]["val_accuracy"]["std"] is None  # one run: no spread
    assert groups[1]["statuses"] == {"completed": 1, "pruned": 1}
    assert groups[1]["epochs"] == {"mean": 3.0, "std": 0.0, "n": 2}


def test_group_by_table(runs):
    code, output = invoke(runs, "--group-by", "optimizer.lr")
    assert code == 0, output
    lines = output.splitlines()
    assert lines[0].split()[:4] == ["optimizer.lr", "n", "best", "val"]
    assert lines[3].startswith("0.1 ") and "0.9300 ± 0.0361" in lines[3]
    assert "1 completed, 1 pruned" in lines[2]


def test_group_by_several_keys_and_list_paths(runs):
    code, output = invoke(runs, "--group-by", "optimizer.lr,model.layers.0.n_out", "--json")
    assert code == 0
    assert json.loads(output)[2]["group"] == {"optimizer.lr": 0.1, "model.layers[0].n_out": 8}


def test_an_unknown_key_is_one_line_with_a_hint(runs):
    code, output = invoke(runs, "--group-by", "optimizr.lr")
    assert code == 1
    assert (
        output == "error: --group-by: no run's config has 'optimizr.lr'; did you mean "
        "'optimizer.lr'?\n"
    )


def test_parse_keys():
    assert parse_keys("optimizer.lr, model.layers.0.n_out") == ["optimizer.lr",
                                                                 "model.layers[0].n_out"]  # fmt: skip
    with pytest.raises(Exception, match="--group-by"):
        parse_keys(",")

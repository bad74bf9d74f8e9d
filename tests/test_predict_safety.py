"""``predict --output`` never destroys work, inputs are checked before they become NaN, and
``predict --json`` / ``-q`` behave like the other commands' (issue 10, items 6, 9, 10, 13)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from checkpoint_helpers import assert_one_line_error, nnctl, train, user_data_run

ROOT_USER = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory) -> Path:
    return train(tmp_path_factory.mktemp("iris") / "run")


@pytest.fixture
def features(tmp_path) -> Path:
    path = tmp_path / "x.npy"
    np.save(path, np.random.default_rng(0).normal(size=(5, 4)))
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def copy_run(iris_run: Path, tmp_path: Path) -> Path:
    run_dir = tmp_path / "run"
    shutil.copytree(iris_run, run_dir)
    return run_dir


@pytest.mark.parametrize("force", [False, True], ids=["plain", "force"])
@pytest.mark.parametrize(
    "where,fragment",
    [
        ("checkpoints/best.npz", "whose files only nnctl writes"),
        ("checkpoints/new.npz", "whose files only nnctl writes"),
        ("metrics.csv", "whose files only nnctl writes"),
        ("predictions.csv", "whose files only nnctl writes"),
    ],
)
def test_nothing_is_written_inside_a_run_directory(
    iris_run, tmp_path, features, where, fragment, force
):
    run_dir = copy_run(iris_run, tmp_path)
    before = snapshot(run_dir)
    flags = ["--force"] if force else []
    result = nnctl("predict", run_dir, "--input", features, "--output", run_dir / where, *flags)
    assert_one_line_error(result, str(run_dir / where), fragment)
    assert snapshot(run_dir) == before


def test_nothing_is_written_inside_a_sweep_folder(iris_run, tmp_path, features):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "sweep.json").write_text("{}")
    (sweep / "sweep.csv").write_text("index\n")
    result = nnctl(
        "predict", iris_run, "--input", features, "--output", sweep / "sweep.csv", "--force"
    )
    assert_one_line_error(result, "whose files only nnctl writes")
    assert (sweep / "sweep.csv").read_text() == "index\n"


def test_a_project_folder_with_a_config_is_no_run(iris_run, tmp_path, features):
    (tmp_path / "config.yaml").write_text("seed: 0\n")
    (tmp_path / "out").mkdir()
    result = nnctl("predict", iris_run, "--input", features, "--output", tmp_path / "out" / "p.csv")
    assert result.returncode == 0, result.stderr


def test_the_output_suffix_is_a_usage_error(iris_run, tmp_path, features):
    result = nnctl("predict", iris_run, "--input", features, "--output", tmp_path / "p.txt")
    assert result.returncode == 2 and "--output must end in .csv or .npz" in result.stderr
    assert not (tmp_path / "p.txt").exists()


@pytest.mark.parametrize("force", [False, True], ids=["plain", "force"])
def test_an_input_is_never_overwritten(iris_run, tmp_path, force):
    flags = ["--force"] if force else []
    table = tmp_path / "x.csv"
    table.write_text("1,2,3,4\n5,6,7,8\n")
    link = tmp_path / "link.csv"
    link.symlink_to(table)
    hard = tmp_path / "hard.csv"
    os.link(table, hard)
    alone = Path(shutil.copy(iris_run / "checkpoints" / "best.npz", tmp_path / "alone.npz"))
    checkpoint = alone.read_bytes()
    for output in (table, link, hard):
        result = nnctl("predict", iris_run, "--input", table, "--output", output, *flags)
        assert_one_line_error(result, f"{output}: is an input of this command")
    result = nnctl("predict", alone, "--input", table, "--output", alone, *flags)
    assert_one_line_error(result, f"{alone}: is an input of this command")
    assert table.read_text() == "1,2,3,4\n5,6,7,8\n" and alone.read_bytes() == checkpoint


def test_an_existing_file_is_replaced_only_with_force(iris_run, tmp_path, features):
    out = tmp_path / "p.csv"
    out.write_text("precious\n")
    result = nnctl("predict", iris_run, "--input", features, "--output", out)
    assert_one_line_error(result, f"{out}: already exists; use --force")
    assert out.read_text() == "precious\n"
    result = nnctl("predict", iris_run, "--input", features, "--output", out, "--force")
    assert result.returncode == 0, result.stderr
    assert out.read_text().startswith("class,class_name,p0,p1,p2\n")


@pytest.mark.parametrize(
    "make,fragment",
    [
        (lambda t: t / "missing" / "p.csv", "missing does not exist"),
        (
            lambda t: (t / "file.txt").write_text("x") and t / "file.txt" / "p.csv",
            "is not a folder",
        ),
        (lambda t: (t / "d.csv").mkdir() or t / "d.csv", "is a folder; give a file name"),
        (lambda t: t, "is a folder; give a file name"),
    ],
)
def test_output_places_that_cannot_be_written(iris_run, tmp_path, features, make, fragment):
    out = make(tmp_path)
    result = nnctl("predict", iris_run, "--input", features, "--output", out)
    assert_one_line_error(result, str(out), fragment)


@pytest.mark.skipif(ROOT_USER, reason="root writes into read-only folders")
def test_a_read_only_folder_is_one_line(iris_run, tmp_path, features):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        result = nnctl("predict", iris_run, "--input", features, "--output", folder / "p.csv")
    finally:
        folder.chmod(0o755)
    assert_one_line_error(result, "ro is not writable")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")
def test_a_failed_write_is_one_line(iris_run, features):
    """/proc takes no new files, not even from root: the write itself fails."""
    result = nnctl("predict", iris_run, "--input", features, "--output", "/proc/nnctl-p.csv")
    assert_one_line_error(result, "cannot write /proc/nnctl-p.csv")


def test_predict_json_and_quiet(iris_run, tmp_path, features):
    csv = nnctl("predict", iris_run, "--input", features)
    rows = [line.split(",") for line in csv.stdout.splitlines()[1:]]
    inline = nnctl("predict", iris_run, "--input", features, "--json")
    assert inline.returncode == 0 and inline.stderr == ""
    got = json.loads(inline.stdout)  # one JSON object and nothing else
    assert got["output"] is None and got["rows"] == 5 and got["task"] == "classification"
    assert got["class"] == [int(row[0]) for row in rows]
    assert got["class_name"] == [row[1] for row in rows] != [row[0] for row in rows]
    assert np.allclose(
        got["probabilities"], [[float(v) for v in row[2:]] for row in rows], atol=1e-6
    )
    assert got["class_counts"] == np.bincount(got["class"], minlength=3).tolist()
    out = tmp_path / "p.npz"
    written = nnctl("predict", iris_run, "--input", features, "--output", out, "--json", "-q")
    assert written.returncode == 0 and written.stderr == ""
    described = json.loads(written.stdout)
    assert described["output"] == str(out) and described["rows"] == 5
    assert "class" not in described and described["class_counts"] == got["class_counts"]
    with np.load(out) as archive:
        assert archive["class"].tolist() == got["class"]
    noisy = nnctl("predict", iris_run, "--input", features, "--output", out, "--force")
    assert noisy.stdout == "" and noisy.stderr == f"wrote 5 predictions to {out}\n"


BAD_INPUTS = [
    ("big.npy", lambda p: np.save(p, np.full((3, 4), 1e300)), "row 0 holds values too large"),
    ("late.npy", lambda p: np.save(p, np.r_[np.ones((2, 4)), np.full((1, 4), -1e39)]), "row 2"),
    ("c.npy", lambda p: np.save(p, np.ones((3, 4)) + 1j), "must be numbers; got dtype complex"),
    ("n.npy", lambda p: np.save(p, np.full((3, 4), np.nan)), "NaN or infinite values"),
    ("c.csv", lambda p: p.write_text("a,b,c,d\n1,2,3,4+1j\n"), "4+1j"),
]


@pytest.mark.parametrize("name,make,fragment", BAD_INPUTS)
def test_predict_refuses_inputs_it_cannot_compute_with(iris_run, tmp_path, name, make, fragment):
    make(tmp_path / name)
    result = nnctl("predict", iris_run, "--input", tmp_path / name)
    assert_one_line_error(result, f"{tmp_path / name}", fragment)
    assert result.stdout == ""


@pytest.mark.parametrize(
    "x,fragment",
    [
        (np.full((6, 4), 1e300), "row 0 holds values too large"),
        (np.ones((6, 4)) + 2j, "must be numbers; got dtype complex"),
        (np.full((6, 4), np.inf), "NaN or infinite values"),
    ],
)
def test_eval_data_refuses_what_training_would(tmp_path, x, fragment):
    run_dir = user_data_run(tmp_path / "project")
    np.savez(tmp_path / "held.npz", x=x, y=np.arange(6) % 3)
    result = nnctl("eval", run_dir, "--data", tmp_path / "held.npz")
    assert_one_line_error(result, str(tmp_path / "held.npz"), fragment)

"""nnctl data list / info / fetch through click's CliRunner and as a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from nnctl.cli import main
from nnctl.data.builtin import FashionMnist

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_fashion(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("NNCTL_DATA", raising=False)
    monkeypatch.setattr(FashionMnist, "system_dir", tmp_path / "nowhere")


def run(*args):
    return CliRunner().invoke(main, ["data", *args])


def test_list_shows_every_data_set(no_fashion):
    result = run("list")
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line.split() for line in result.output.splitlines()[1:]}
    assert set(lines) == {"digits", "iris", "mnist", "fashion_mnist"}
    assert lines["mnist"][1:4] == ["28x28x1", "10", "60000/10000"]
    assert lines["digits"][3] == "1438/359" and lines["digits"][-1] == "yes"
    assert lines["fashion_mnist"][-1] == "no"


def test_info_shows_balance_range_and_moments():
    result = run("info", "iris")
    assert result.exit_code == 0, result.output
    assert "all: 150 examples; values 0.1..7.9" in result.output
    assert "setosa 50 (33.3%)" in result.output and "mean 3.464" in result.output


def test_info_unknown_name_is_a_clean_error():
    result = run("info", "mnits")
    assert result.exit_code == 1
    assert "error: unknown dataset 'mnits'; did you mean 'mnist'?" in result.output


def test_info_fashion_absent_says_how_to_get_it(no_fashion):
    result = run("info", "fashion_mnist")
    assert result.exit_code == 1
    assert "apt-get install dataset-fashion-mnist" in result.output
    assert "Traceback" not in result.output


def test_fetch_shipped_set_is_a_no_op():
    result = run("fetch", "digits")
    assert result.exit_code == 0 and "shipped with nnctl" in result.output


def test_fetch_network_failure_is_a_clean_error(tmp_path, monkeypatch):
    monkeypatch.setenv("NNCTL_FETCH_BASE_URL", "http://127.0.0.1:9/")  # discard port: refused
    result = run("fetch", "fashion_mnist", "--data-dir", str(tmp_path))
    assert (
        result.exit_code == 1 and "error:" in result.output and "download failed" in result.output
    )
    assert list((tmp_path / "fashion_mnist").iterdir()) == []


@pytest.mark.parametrize(
    "args", [["--help"], ["list", "--help"], ["info", "--help"], ["fetch", "--help"]]
)
def test_help_has_an_example(args):
    result = run(*args)
    assert result.exit_code == 0 and "Example:" in result.output


def test_subprocess_exit_code_and_stderr():
    code = "from nnctl.cli import main; main()"
    proc = subprocess.run(
        [sys.executable, "-c", code, "data", "info", "nope"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1 and proc.stderr.startswith("error: unknown dataset 'nope'")


# --- nnctl data preview ---------------------------------------------------------------------

AUGMENTED = """\
seed: 0
data:
  dataset: digits
  augment:
    - {type: random_crop, pad: 1}
    - {type: random_erasing, p: 1.0}
model:
  layers: [{type: fully_connected, n_out: 10, activation: softmax}]
  loss: cross_entropy
optimizer: adam
"""


@pytest.fixture
def augmented(tmp_path):
    path = tmp_path / "aug.yaml"
    path.write_text(AUGMENTED)
    return path


def test_preview_writes_a_grid_of_originals_and_draws(augmented, tmp_path):
    image = pytest.importorskip("matplotlib.image")
    out = tmp_path / "grid.png"
    result = run("preview", str(augmented), "-o", str(out), "--n", "3", "--draws", "4")
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width = image.imread(out).shape[:2]
    wider = tmp_path / "wider.png"
    assert (
        run("preview", str(augmented), "-o", str(wider), "-n", "3", "--draws", "8").exit_code == 0
    )
    taller = tmp_path / "taller.png"
    assert (
        run("preview", str(augmented), "-o", str(taller), "-n", "6", "--draws", "4").exit_code == 0
    )
    assert image.imread(wider).shape[1] > 1.5 * width  # columns: original + draws
    assert image.imread(taller).shape[0] > 1.5 * height  # rows: examples


def test_preview_grid_holds_originals_then_augmented_draws(augmented):
    from nnctl.config import load_config
    from nnctl.data import load
    from nnctl.data.preview import preview_grid

    config = load_config(augmented)
    splits = load(config.data["data"], seed=0)
    grid = preview_grid(splits, n=5, draws=3, seed=2)
    assert grid.images.shape == (5, 4, 8, 8, 1)
    originals = grid.images[:, 0]
    assert any(np.array_equal(originals[0], x) for x in splits.train.X)  # training examples
    for column in range(1, 4):  # erasing with p = 1: every draw differs from its original
        assert not np.any(np.all(grid.images[:, column] == originals, axis=(1, 2, 3)))
    names = [str(c) for c in range(10)]
    assert all(title in names for title in grid.titles)
    again = preview_grid(splits, n=5, draws=3, seed=2)
    assert np.array_equal(again.images, grid.images) and again.titles == grid.titles


def test_preview_without_augment_is_a_one_line_error(tmp_path):
    result = run(
        "preview", str(ROOT / "configs" / "digits-mlp.yaml"), "-o", str(tmp_path / "x.png")
    )
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "data.augment is empty" in result.output
    assert not (tmp_path / "x.png").exists()


def test_preview_of_non_image_data_names_the_key(tmp_path):
    config = ROOT / "configs" / "iris-mlp.yaml"
    result = run("preview", str(config), "--set", "data.augment=[flip]")
    assert result.exit_code == 1
    assert "data.augment: augmentation needs image data" in result.output


def test_preview_without_matplotlib_says_how_to_install_it(augmented, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` fails
    result = run("preview", str(augmented), "-o", str(tmp_path / "x.png"))
    assert result.exit_code == 1
    assert result.output == (
        "error: nnctl data preview needs matplotlib: pip install 'nnctl[plot]'\n"
    )


def test_preview_help_has_examples():
    result = run("preview", "--help")
    assert result.exit_code == 0 and "Examples:" in result.output

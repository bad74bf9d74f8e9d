"""nnctl data list / info / fetch through click's CliRunner and as a subprocess."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from nnctl.cli import main
from nnctl.data.builtin import FashionMnist


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

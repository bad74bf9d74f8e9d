"""Limits on what a config may cost: every YAML parse is bounded in depth and in values
(aliases expanded), extends chains in length and files, and a config whose training cannot
fit in memory is refused before anything allocates."""

from __future__ import annotations

import time

import pytest
import yaml
from config_helpers import BASE, config_dict, error_lines, write_config

from nnctl.config import load, memory, yamlio
from nnctl.config.memory import memory_error
from nnctl.data import DataSpec
from nnctl.layout import read_file

BOMB = (
    "[&a [x,x,x,x,x,x,x,x,x]"
    + "".join(f", &{b} [{','.join(['*' + a] * 9)}]" for a, b in zip("abcdefgh", "bcdefghi"))
    + "]"
)
GIB = 1 << 30


def test_set_value_bomb_is_refused_before_it_expands():
    started = time.monotonic()
    with pytest.raises(yamlio.LimitError, match="more than 200,000 values"):
        yamlio.parse_scalar(BOMB)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("text", ["[" * 500 + "]" * 500, "{a: " * 500 + "1" + "}" * 500])
def test_set_value_nested_too_deep_is_refused(text):
    with pytest.raises(yamlio.LimitError, match="nested more than 100 levels deep"):
        yamlio.parse_scalar(text)


def test_a_self_referencing_value_is_refused():
    with pytest.raises(yamlio.LimitError, match="document too large"):
        yamlio.parse_scalar("&a [1, *a]")


def test_set_value_bomb_through_load_config(tmp_path):
    path = write_config(tmp_path, config_dict())
    (line,) = error_lines(path, [f"train.epochs={BOMB}"])
    assert "more than 200,000 values" in line and len(line) < 500


def test_deep_file_names_its_line(tmp_path):
    path = write_config(tmp_path, "seed: 0\nx:\n  y: " + "[" * 200 + "]" * 200 + "\n")
    assert error_lines(path) == [f"{path}:3: nested more than 100 levels deep"]


def test_run_files_are_parsed_with_the_same_limits(tmp_path):
    (tmp_path / "config.yaml").write_text(f"seed: {BOMB}\n")
    with pytest.raises(ValueError, match="document too large"):
        read_file(tmp_path / "config.yaml")
    (tmp_path / "meta.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="nested too deeply"):
        read_file(tmp_path / "meta.json")


def _chain(tmp_path, length: int):
    write_config(tmp_path, config_dict(), f"c{length}.yaml")
    for i in range(length):
        write_config(tmp_path, f"extends: c{i + 1}.yaml\n", f"c{i}.yaml")
    return tmp_path / "c0.yaml"


def test_extends_chain_length(tmp_path):
    assert error_lines(_chain(tmp_path, load.MAX_EXTENDS_DEPTH - 1)) == []
    (line,) = error_lines(_chain(tmp_path, 1000))
    assert f"extends: extends chain longer than {load.MAX_EXTENDS_DEPTH} files" in line


def test_extends_fan_out_is_bounded(tmp_path):
    write_config(tmp_path, config_dict(), "f4.yaml")
    for i in range(4):  # 8**4 = 4096 reads of f4.yaml
        write_config(tmp_path, f"extends: [{', '.join([f'f{i + 1}.yaml'] * 8)}]\n", f"f{i}.yaml")
    (line,) = error_lines(tmp_path / "f0.yaml")
    assert f"more than {load.MAX_FILES} files to read through extends" in line


def test_the_value_budget_is_shared_by_a_config_and_what_it_extends(tmp_path):
    block = "&a [" + ", ".join(["1"] * 1000) + "]"
    many = "[" + ", ".join(["*a"] * 120) + "]"  # 120,000 values
    write_config(tmp_path, yaml.safe_dump(config_dict()) + f"x: {block}\ny: {many}\n", "b.yaml")
    assert any("unknown key" in line for line in error_lines(tmp_path / "b.yaml"))
    top = write_config(tmp_path, f"extends: b.yaml\nz: {block}\nw: {many}\n", "t.yaml")
    (line,) = error_lines(top)
    assert "document too large" in line


@pytest.mark.parametrize(
    "key, shown",
    [("[a, b]", "a list [a, b]"), ("{a: 1}", "a mapping {a: 1}"), ("1", "'1'")],
)
def test_non_string_key_is_shown_as_written(tmp_path, key, shown):
    path = write_config(tmp_path, f"seed: 0\n? {key}\n: 1\n")
    (line,) = error_lines(path)
    assert f"keys must be strings; got {shown} (quote it)" in line and "Node" not in line


def test_a_long_value_in_a_message_is_cut(tmp_path):
    path = write_config(tmp_path, config_dict({"seed": "s" * 100_000}))
    (line,) = error_lines(path)
    assert "seed: must be a non-negative integer; got 'sss" in line
    assert line.endswith("(100,000 characters)") and len(line) < 300


# --- memory --------------------------------------------------------------------------

MLP = {
    "layers": [
        {"type": "fully_connected", "n_out": 1000, "activation": "relu"},
        {"type": "fully_connected", "n_out": 10, "activation": "softmax"},
    ],
    "loss": "cross_entropy",
    "dtype": "float32",
}
SPEC = DataSpec("d", (1000,), 10, "classification", 1000, 0, 0)


@pytest.fixture
def machine(monkeypatch):
    """Pretend this machine has ``machine(bytes)`` of memory."""
    return lambda size: monkeypatch.setattr(memory, "machine_memory", lambda: size)


def test_a_config_that_fits_passes(machine):
    machine(GIB)
    assert memory_error(MLP, SPEC, 32, "data.batch_size") is None


def test_a_too_large_layer_is_named(machine):
    machine(GIB)
    wide = {**MLP, "layers": [{**MLP["layers"][0], "n_out": 10**8}, MLP["layers"][1]]}
    error = memory_error(wide, SPEC, 32, "data.batch_size")
    assert error.path == "model.layers[0]"
    assert (
        "training needs at least" in error.message and "more than this machine's" in error.message
    )
    assert "model.layers[0] (fully_connected, 100,100,000,000 parameters" in error.message


def test_a_too_large_batch_is_named_with_what_fits(machine):
    machine(GIB)
    error = memory_error(MLP, SPEC, 10**7, "--batch-size")
    assert error.path == "--batch-size"
    assert "training with a batch of 10,000,000 needs" in error.message
    fitting = int(error.message.split("at most about ")[1].split(" ")[0].replace(",", ""))
    assert memory_error(MLP, SPEC, fitting, "b") is None
    assert memory_error(MLP, SPEC, fitting + 1, "b") is not None


def test_too_much_data_is_named(machine):
    machine(GIB)
    spec = DataSpec("d", (2**31, 2**31, 1), 10, "classification", 30, 0, 0)
    error = memory_error(MLP, spec, 32, "data.batch_size")
    assert error.path == "data" and "the data set (30 examples of 2147483648x2147483648x1" in (
        error.message
    )


def test_check_refuses_and_names_the_line(tmp_path, machine):
    machine(GIB)
    layers = [{"type": "fully_connected", "n_out": 10**9}, BASE["model"]["layers"][1]]
    patch = {"model": {"layers": layers}}
    path = write_config(tmp_path, config_dict(patch))
    (line,) = error_lines(path)
    assert line.startswith(f"{path}:") and "model.layers[0]: training needs at least" in line


def test_the_training_batch_is_at_most_the_training_part(tmp_path, machine):
    machine(GIB)
    path = write_config(tmp_path, config_dict({"data": {"batch_size": 10**12}}))
    assert error_lines(path) == []  # digits has 1437 training examples: batches are smaller


def test_a_blocks_parameters_are_counted_once():
    """A block's row includes its children's parameters: the estimate counts them at the
    block, and every output (the block's and its children's) per example."""
    inner = {"type": "fully_connected", "n_out": 1000, "activation": "relu"}
    block = {**MLP, "layers": [{"type": "residual", "layers": [inner]}, MLP["layers"][1]]}
    flat = {**MLP, "layers": [inner, MLP["layers"][1]]}
    (_, _, *block_layers), (_, _, *flat_layers) = (
        memory.training_needs(model, SPEC) for model in (block, flat)
    )
    assert sum(n.fixed for n in block_layers) == sum(n.fixed for n in flat_layers)
    block_outputs, flat_outputs = (
        sum(n.per_example for n in ls) for ls in (block_layers, flat_layers)
    )
    assert block_outputs == flat_outputs + 2 * 1000 * 4  # the block's own output, kept too
    assert "layer 0.0 inside model.layers[0] (fully_connected" in block_layers[1].what

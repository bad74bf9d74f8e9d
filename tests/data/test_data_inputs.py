"""Input files for predict and eval --data: every format, and each bad file's message."""

from __future__ import annotations

import numpy as np
import pytest
from data_helpers import write_idx

from nnctl.data import DataSpec
from nnctl.data.inputs import read_features, read_labelled
from nnctl.errors import DataError

CLASSES = DataSpec("d", (2,), 3, "classification")


def text_file(tmp_path, text, name="x.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1,2\n3,4.5\n", [[1, 2], [3, 4.5]]),
        ("a,b\n1,2\n\n3,4.5\n", [[1, 2], [3, 4.5]]),
        (" 1 , 2\n1e3,-2.5E-1\n", [[1, 2], [1000, -0.25]]),
        ("7\n8\n", [[7], [8]]),
    ],
    ids=["plain", "header and blank line", "spaces and exponents", "one column"],
)
def test_csv_features_with_or_without_header(tmp_path, text, expected):
    X = read_features(text_file(tmp_path, text))
    assert X.dtype == np.float64 and X.tolist() == expected


def test_npy_npz_and_idx_features(tmp_path):
    X = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.save(tmp_path / "x.npy", X)
    np.savez(tmp_path / "one.npz", features=X)
    np.savez(tmp_path / "named.npz", x=X, y=np.arange(3))
    write_idx(tmp_path / "images-idx3-ubyte.gz", np.arange(24).reshape(2, 3, 4))
    for name in ("x.npy", "one.npz", "named.npz"):
        assert np.array_equal(read_features(tmp_path / name), X), name
    images = read_features(tmp_path / "images-idx3-ubyte.gz")
    assert images.shape == (2, 3, 4) and images[1, 2, 3] == 23


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("x.txt", "1,2\n", "unknown input format (use .npy, .npz, .csv or an IDX file)"),
        ("x.csv", "", "no examples"),
        ("x.csv", "a,b\n", "no examples"),
        ("x.csv", "a,b\n1,2\n3\n", "line 3 has 1 cells; the header has 2"),
        ("x.csv", "1,2\n3\n", "line 2 has 1 cells; the first row has 2"),
        ("x.csv", "a,b\n1,x\n", "line 2, column 2 ('b'): not a number: 'x'"),
        ("x.csv", "1,2\n\n3,x\n", "line 3, column 2: not a number: 'x'"),
        ("x.csv", "1,nan\n", "features contain NaN or infinite values"),
        ("x.npy", "not numpy", "not a readable .npy file ("),
    ],
)
def test_bad_input_names_file_and_problem(tmp_path, name, content, message):
    path = text_file(tmp_path, content, name)
    with pytest.raises(DataError) as err:
        read_features(path)
    assert str(err.value).startswith(f"{path}: {message}")


def test_missing_file_and_ambiguous_npz(tmp_path):
    with pytest.raises(DataError, match=r"nothere\.csv: file not found"):
        read_features(tmp_path / "nothere.csv")
    np.savez(tmp_path / "two.npz", a=np.ones(2), b=np.ones(2))
    with pytest.raises(DataError, match="holds arrays a, b; expected one array or 'x'"):
        read_features(tmp_path / "two.npz")


def test_labelled_csv_uses_the_runs_label_column(tmp_path):
    path = text_file(tmp_path, "cls,f1,f2\n2,0.5,1\n0,1.5,2\n")
    X, y = read_labelled(path, {"type": "csv", "label_column": "cls"}, CLASSES)
    assert X.tolist() == [[0.5, 1], [1.5, 2]] and y.tolist() == [2, 0]
    X, y = read_labelled(text_file(tmp_path, "f1,f2,cls\n0.5,1,1\n"), {"dataset": "iris"}, CLASSES)
    assert X.tolist() == [[0.5, 1]] and y.tolist() == [1]


def test_labelled_npz_uses_the_runs_array_names(tmp_path):
    np.savez(tmp_path / "d.npz", feats=np.ones((4, 2)), labels=np.arange(4) % 3)
    X, y = read_labelled(tmp_path / "d.npz", {"type": "npz", "x": "feats", "y": "labels"}, CLASSES)
    assert X.shape == (4, 2) and y.tolist() == [0, 1, 2, 0]
    with pytest.raises(DataError, match="--data takes an .npz or .csv file with labels"):
        read_labelled(tmp_path / "x.npy", {}, CLASSES)


def test_features_are_checked_like_training_data(tmp_path):
    np.save(tmp_path / "c.npy", np.ones((2, 3), dtype=complex))
    with pytest.raises(DataError, match="c.npy: features must be numbers; got dtype complex128"):
        read_features(tmp_path / "c.npy")
    np.save(tmp_path / "n.npy", np.array([[1.0, 2.0], [3.0, np.inf]]))
    with pytest.raises(DataError, match=r"n.npy: features contain NaN .* \(first in row 1\)"):
        read_features(tmp_path / "n.npy")

"""User data (npz, csv, idx): good files load, each bad input gives its one-line message."""

from __future__ import annotations

import numpy as np
import pytest
from data_helpers import write_idx

from nnctl.data import describe, load
from nnctl.errors import DataError


def npz(tmp_path, name="d.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return str(path)


def csv(tmp_path, text, name="d.csv"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_npz_images_get_a_channel_and_describe_matches(tmp_path):
    rng = np.random.default_rng(0)
    path = npz(tmp_path, x=rng.integers(0, 256, (40, 6, 5), dtype=np.uint8), y=np.arange(40) % 4)
    cfg = {"type": "npz", "path": path, "validation": 8}
    spec = describe(cfg)
    s = load(cfg, seed=0)
    assert spec == s.spec and spec.input_shape == (6, 5, 1) and spec.n_classes == 4
    assert (len(s.train), len(s.validation), s.test) == (32, 8, None)


def test_npz_one_hot_labels_become_integers(tmp_path):
    y = np.eye(3)[np.arange(30) % 3]
    path = npz(tmp_path, features=np.ones((30, 2)), onehot=y)
    s = load({"type": "npz", "path": path, "x": "features", "y": "onehot", "validation": 0}, 0)
    assert s.train.y.dtype == np.int64 and s.train.y.tolist()[:4] == [0, 1, 2, 0]


def test_npz_regression_targets_and_separate_test(tmp_path):
    X = np.random.default_rng(0).normal(size=(20, 3))
    train = npz(tmp_path, "a.npz", x=X, y=X @ [1.0, 2.0, 3.0])
    test = npz(tmp_path, "b.npz", x=X[:5], y=X[:5] @ [1.0, 2.0, 3.0])
    s = load(
        {
            "type": "npz",
            "path": train,
            "test": {"path": test},
            "validation": 0,
            "normalize": "minmax",
        },
        0,
    )
    assert s.spec.task == "regression" and s.spec.n_classes is None
    assert s.train.y.shape == (20, 1) and s.train.y.dtype == np.float32
    assert s.test.X.shape == (5, 3)
    np.testing.assert_allclose(s.test.X.min(axis=0), (X[:5].min(0) - X.min(0)) / np.ptp(X, 0), 1e-5)


def test_csv_with_named_classes(tmp_path):
    rows = "\n".join(f"{i},{i * 2.5},{'ab'[i % 2]}" for i in range(10))
    path = csv(tmp_path, "a,b,kind\n" + rows + "\n")
    s = load({"type": "csv", "path": path, "label_column": "kind", "validation": 0}, 0)
    assert s.spec.class_names == ("a", "b") and s.spec.input_shape == (2,)
    assert s.train.y.tolist()[:3] == [0, 1, 0]


def test_csv_label_column_defaults_to_last(tmp_path):
    path = csv(tmp_path, "f1,f2,label\n1,2,0\n3,4,1\n5,6,1\n")
    assert describe({"type": "csv", "path": path, "validation": 0}).n_classes == 2


def test_idx_user_data_raw_and_gzip(tmp_path):
    write_idx(tmp_path / "im.gz", np.zeros((12, 4, 4)))
    write_idx(tmp_path / "lab", np.arange(12) % 3, compress=False)
    cfg = {"type": "idx", "images": str(tmp_path / "im.gz"), "labels": str(tmp_path / "lab")}
    assert load({**cfg, "validation": 0}, 0).train.X.shape == (12, 4, 4, 1)


def _bad_cases(tmp_path):
    p = tmp_path
    write_idx(p / "short.gz", np.zeros((10, 4, 4)))
    raw = (p / "short.gz").read_bytes()
    import gzip

    (p / "short.gz").write_bytes(gzip.compress(gzip.decompress(raw)[:-5]))
    write_idx(p / "lab.gz", np.arange(10) % 2)
    write_idx(p / "lab9.gz", np.arange(9) % 2)
    write_idx(p / "im.gz", np.zeros((10, 4, 4)))
    write_idx(p / "huge.idx", np.zeros((10, 4, 4)), compress=False)
    with open(p / "huge.idx", "r+b") as fh:  # the header claims 10 x 65536 x 65536
        fh.seek(8)
        fh.write((65536).to_bytes(4, "big") * 2)
    np.save(p / "obj.npy", np.array([1]))
    np.savez(p / "pickled.npz", x=np.array([{"a": 1}], dtype=object), y=np.array([0]))
    return {
        "missing file": ({"type": "npz", "path": str(p / "nope.npz")}, "nope.npz: file not found"),
        "not npz": ({"type": "npz", "path": csv(p, "a,b\n1,2\n", "t.npz")}, "not an .npz file"),
        "npz names": (
            {"type": "npz", "path": npz(p, "n.npz", feats=np.ones((3, 2)), y=np.zeros(3))},
            "n.npz: no array named 'x' (the file has: feats, y)",
        ),
        "pickle": ({"type": "npz", "path": str(p / "pickled.npz")}, "needs pickle"),
        "csv cell": (
            {"type": "csv", "path": csv(p, "a,b,y\n1,2,0\n3,oops,1\n")},
            "line 3, column 2 ('b'): not a number: 'oops'",
        ),
        "csv ragged": (
            {"type": "csv", "path": csv(p, "a,y\n1,0\n2\n", "r.csv")},
            "line 3 has 1 cells",
        ),
        "csv column": (
            {"type": "csv", "path": csv(p, "a,label\n1,0\n", "c.csv"), "label_column": "lable"},
            "no column named 'lable'; did you mean 'label'?",
        ),
        "negative label": (
            {"type": "npz", "path": npz(p, "neg.npz", x=np.ones((3, 2)), y=np.array([0, -1, 1]))},
            "neg.npz: label -1 is out of range; class labels are 0, 1, ..., n_classes-1",
        ),
        "label >= n_classes": (
            {
                "type": "npz",
                "path": npz(p, "big.npz", x=np.ones((3, 2)), y=np.array([0, 5, 1])),
                "n_classes": 3,
            },
            "big.npz: label 5 is out of range for 3 classes (labels are 0..2)",
        ),
        "wrong length": (
            {"type": "npz", "path": npz(p, "len.npz", x=np.ones((4, 2)), y=np.array([0, 1, 1]))},
            "3 labels for 4 examples",
        ),
        "nan": (
            {
                "type": "npz",
                "path": npz(
                    p, "nan.npz", x=np.array([[1.0], [np.nan], [2.0]]), y=np.array([0, 1, 0])
                ),
            },
            "NaN or infinite values (first in row 1)",
        ),
        "inf csv": (
            {"type": "csv", "path": csv(p, "a,y\n1,0\ninf,1\n", "i.csv")},
            "NaN or infinite",
        ),
        "idx size": (
            {"type": "idx", "images": str(p / "short.gz"), "labels": str(p / "lab.gz")},
            "IDX header says shape (10, 4, 4) (160 bytes) but the file holds 155 data bytes",
        ),
        "idx magic": (
            {"type": "idx", "images": str(p / "obj.npy"), "labels": str(p / "lab.gz")},
            "obj.npy: not an IDX file",
        ),
        "idx labels": (
            {"type": "idx", "images": str(p / "im.gz"), "labels": str(p / "lab9.gz")},
            "lab9.gz: 9 labels for 10 examples",
        ),
        "no examples": (
            {"type": "npz", "path": npz(p, "e.npz", x=np.zeros((0, 4)), y=np.zeros(0, int))},
            "e.npz: no examples",
        ),
        "no features": (
            {"type": "npz", "path": npz(p, "f.npz", x=np.zeros((3, 0)), y=np.arange(3))},
            "f.npz: examples have no features",
        ),
        "csv only labels": (
            {"type": "csv", "path": csv(p, "label\n0\n1\n", "l.csv")},
            "l.csv: no feature columns, only the label column(s) 'label'",
        ),
        "one class": (
            {"type": "npz", "path": npz(p, "one.npz", x=np.ones((4, 2)), y=np.zeros(4, int))},
            "one.npz: classification needs at least 2 classes; every label is 0",
        ),
        "label 2**63": (
            {
                "type": "npz",
                "path": npz(p, "u.npz", x=np.ones((2, 2)), y=np.array([0, 2**63], dtype=np.uint64)),
            },
            "u.npz: label 9223372036854775808 is out of range for a class label",
        ),
        "huge float label": (
            {"type": "npz", "path": npz(p, "h.npz", x=np.ones((2, 2)), y=np.array([0.0, 1e19]))},
            "h.npz: label 10000000000000000000 is out of range for a class label",
        ),
        "complex features": (
            {"type": "npz", "path": npz(p, "c.npz", x=np.ones((2, 2)) + 1j, y=np.arange(2))},
            "c.npz: features must be numbers; got dtype complex128",
        ),
        "text features": (
            {"type": "npz", "path": npz(p, "txt.npz", x=np.array([["a"], ["b"]]), y=np.arange(2))},
            "txt.npz: features must be numbers; got dtype <U1",
        ),
        "idx header larger than the file": (
            {"type": "idx", "images": str(p / "huge.idx"), "labels": str(p / "lab.gz")},
            "IDX header says shape (10, 65536, 65536) (42949672960 bytes) but the file holds 160",
        ),
    }


CASES = [
    "missing file", "not npz", "npz names", "pickle", "csv cell", "csv ragged", "csv column",
    "negative label", "label >= n_classes", "wrong length", "nan", "inf csv", "idx size",
    "idx magic", "idx labels", "no examples", "no features", "csv only labels", "one class",
    "label 2**63", "huge float label", "complex features", "text features",
    "idx header larger than the file",
]  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_bad_input_gives_one_line_error_naming_the_file(tmp_path, case):
    cfg, message = _bad_cases(tmp_path)[case]
    with pytest.raises(DataError) as err:
        load({**cfg, "validation": 0}, seed=0)
    text = str(err.value)
    assert message in text and "\n" not in text
    assert str(tmp_path) in text


# What describe (and so ``nnctl check``) finds without loading the features.
DESCRIBED = [
    "missing file", "npz names", "csv ragged", "csv column", "negative label",
    "label >= n_classes", "wrong length", "idx magic", "idx labels", "no examples",
    "no features", "csv only labels", "one class", "label 2**63", "huge float label",
    "idx header larger than the file", "complex features", "text features",
]  # fmt: skip


@pytest.mark.parametrize("case", DESCRIBED)
def test_describe_finds_what_headers_and_labels_show(tmp_path, case):
    cfg, message = _bad_cases(tmp_path)[case]
    with pytest.raises(DataError) as err:
        describe({**cfg, "validation": 0})
    assert message in str(err.value)


def test_text_labels_in_an_npz_name_the_classes(tmp_path):
    y = np.array(["cat", "dog", "cat", "bird"])
    for labels in (y, y.astype("S")):
        path = npz(tmp_path, x=np.arange(8.0).reshape(4, 2), y=labels)
        s = load({"type": "npz", "path": path, "validation": 0}, 0)
        assert s.spec.class_names == ("bird", "cat", "dog")
        assert s.train.y.tolist() == [1, 2, 1, 0]


def test_classes_counted_from_labels_are_marked(tmp_path):
    path = npz(tmp_path, x=np.ones((4, 2)), y=np.array([0, 1, 2, 1]))
    assert describe({"type": "npz", "path": path}).classes_from_labels
    assert not describe({"type": "npz", "path": path, "n_classes": 3}).classes_from_labels


# --- multi-label targets ------------------------------------------------------------------


def test_multilabel_npz_targets_are_0_1_columns(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=(30, 3))
    path = npz(tmp_path, x=rng.normal(size=(30, 4)), y=y)
    cfg = {"type": "npz", "path": path, "task": "multilabel", "validation": 6}
    spec = describe(cfg)
    assert (spec.task, spec.n_classes) == ("multilabel", 3)
    s = load(cfg, seed=0)
    assert s.train.y.dtype == np.float32 and s.train.y.shape == (24, 3)
    assert sorted(np.unique(s.train.y).tolist()) == [0.0, 1.0]
    # without task: multilabel the same file is a regression target (never guessed)
    assert describe({"type": "npz", "path": path}).task == "regression"


def test_multilabel_csv_reads_several_label_columns(tmp_path):
    rows = ["a,b,cat,dog"] + [f"{i},{i % 3},{i % 2},{int(i % 3 == 0)}" for i in range(20)]
    path = csv(tmp_path, "\n".join(rows) + "\n")
    columns = ["cat", "dog"]
    cfg = {"type": "csv", "path": path, "label_column": columns, "task": "multilabel"}
    cfg["validation"] = 0
    s = load(cfg, seed=0)
    assert s.spec.n_classes == 2 and s.spec.input_shape == (2,)
    assert s.train.y[:4].tolist() == [[0, 1], [1, 0], [0, 0], [1, 1]]


@pytest.mark.parametrize(
    "y, message",
    [
        (np.full((10, 2), 2), "multi-label targets must be 0 or 1; got 2 in row 0, label 0"),
        (np.array([[0, 1]] * 9 + [[0.5, 1]]), "got 0.5 in row 9, label 0"),
    ],
)
def test_multilabel_targets_must_be_0_or_1(tmp_path, y, message):
    path = npz(tmp_path, x=np.ones((10, 2)), y=y)
    with pytest.raises(DataError, match=message.replace("(", r"\(")):
        describe({"type": "npz", "path": path, "task": "multilabel"})

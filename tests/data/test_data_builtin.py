"""Built-in data sets: counts, shapes, checksums, splits, normalization."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
from data_helpers import declare_checksums, write_idx

from nnctl.data import DATASETS, describe, files, load
from nnctl.data.builtin import FashionMnist
from nnctl.errors import DataError


@pytest.fixture(scope="module")
def mnist():
    return load({"dataset": "mnist", "normalize": "minmax"}, seed=0)


def test_digits_counts_shapes_and_types():
    s = load({"dataset": "digits"}, seed=0)
    assert len(s.train) + len(s.validation) + len(s.test) == 1797
    assert len(s.test) == 359 and len(s.validation) == 144
    assert s.train.X.shape == (1294, 8, 8, 1) and s.train.X.dtype == np.float32
    assert s.train.y.dtype == np.int64 and s.train.y.shape == (1294,)
    assert s.spec.input_shape == (8, 8, 1) and s.spec.n_classes == 10


def test_iris_counts_and_feature_shape():
    s = load({"dataset": "iris", "validation": 0}, seed=3)
    assert (len(s.train), s.validation, len(s.test)) == (120, None, 30)
    assert s.train.X.shape == (120, 4)
    assert s.spec.class_names == ("setosa", "versicolor", "virginica")


def test_mnist_official_split(mnist):
    assert len(mnist.train) + len(mnist.validation) == 60000
    assert len(mnist.test) == 10000 and len(mnist.validation) == 6000
    assert mnist.train.X.shape[1:] == (28, 28, 1) and mnist.train.X.dtype == np.float32
    assert mnist.test.X.min() >= 0 and mnist.test.X.max() <= 1
    assert np.bincount(mnist.test.y).tolist()[:3] == [980, 1135, 1032]


@pytest.mark.parametrize("name", ["digits", "iris", "mnist"])
def test_describe_matches_load_without_loading(name, monkeypatch):
    spec = describe({"dataset": name})
    loaded = load({"dataset": name}, seed=1).spec
    assert spec == loaded


def test_describe_does_not_read_files(monkeypatch):
    monkeypatch.setattr(files, "shipped_root", lambda: pytest.fail("read a file"))
    assert describe({"dataset": "mnist", "flatten": True}).input_shape == (784,)


def test_validation_is_stratified_and_deterministic():
    a = load({"dataset": "digits", "validation": 0.25, "normalize": "minmax"}, seed=7)
    b = load({"dataset": "digits", "validation": 0.25, "normalize": "minmax"}, seed=7)
    c = load({"dataset": "digits", "validation": 0.25, "normalize": "minmax"}, seed=8)
    np.testing.assert_array_equal(a.validation.X, b.validation.X)
    assert not np.array_equal(a.validation.y, c.validation.y)
    train_p = np.bincount(a.train.y, minlength=10) / len(a.train)
    val_p = np.bincount(a.validation.y, minlength=10) / len(a.validation)
    assert np.abs(train_p - val_p).max() < 0.02
    np.testing.assert_array_equal(a.test.X, c.test.X)  # test split does not depend on seed


def test_test_split_is_stratified():
    s = load({"dataset": "iris", "validation": 0}, seed=0)
    assert np.bincount(s.test.y).tolist() == [10, 10, 10]


def test_splits_are_disjoint():
    s = load({"dataset": "digits", "normalize": "none", "validation": 100}, seed=0)
    rows = [
        set(map(bytes, part.X.reshape(len(part), -1))) for part in (s.train, s.validation, s.test)
    ]
    assert len(s.validation) == 100
    # digits has a few duplicate images; allow them but no more
    assert len(rows[0] & rows[1]) + len(rows[0] & rows[2]) + len(rows[1] & rows[2]) <= 3


def test_minmax_statistics_come_from_train_only():
    s = load({"dataset": "iris", "normalize": "minmax"}, seed=0)
    assert np.allclose(s.train.X.min(axis=0), 0) and np.allclose(s.train.X.max(axis=0), 1)
    assert s.preprocess.shift.shape == (4,)  # per feature for tabular data


def test_standard_image_statistics_are_scalar_and_from_train(mnist):
    s = load({"dataset": "digits", "normalize": "standard"}, seed=0)
    assert s.preprocess.shift.shape == ()
    assert abs(float(s.train.X.mean())) < 1e-4 and abs(float(s.train.X.std()) - 1) < 1e-3
    assert abs(float(s.validation.X.mean())) > 1e-4  # not re-fitted on validation
    assert mnist.preprocess.shift == 0 and mnist.preprocess.scale == 255


def test_flatten_gives_flat_examples():
    s = load({"dataset": "digits", "flatten": True}, seed=0)
    assert s.train.X.shape[1:] == (64,) and s.spec.input_shape == (64,)


def test_checksums_recorded_for_every_shipped_file_and_in_notice():
    root = files.shipped_root()
    shipped = {
        p.relative_to(root).as_posix() for p in root.rglob("*") if p.suffix in (".npz", ".gz")
    }
    declared = {n: d for _, cls in DATASETS.items() for n, d in cls.shipped.items()}
    assert shipped == set(declared)
    notice = (root / "NOTICE.md").read_text()
    for name, digest in declared.items():
        assert files.sha256_of(root / name) == digest
        assert re.search(rf"{digest}\s+{re.escape(name)}", notice)


def test_checksum_mismatch_names_the_file(tmp_path, monkeypatch):
    shutil.copytree(files.shipped_root(), tmp_path / "datasets")
    bad = tmp_path / "datasets" / "digits.npz"
    data = bytearray(bad.read_bytes())
    data[-100] ^= 0xFF
    bad.write_bytes(bytes(data))
    monkeypatch.setattr(files, "shipped_root", lambda: tmp_path / "datasets")
    with pytest.raises(DataError, match=r"digits\.npz: checksum mismatch"):
        load({"dataset": "digits"}, seed=0)
    load({"dataset": "iris"}, seed=0)  # the other files are fine


def test_fashion_mnist_absent_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("NNCTL_DATA", raising=False)
    monkeypatch.setattr(FashionMnist, "system_dir", tmp_path / "nowhere")
    with pytest.raises(DataError) as err:
        load({"dataset": "fashion_mnist"}, seed=0)
    message = str(err.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert "nnctl data fetch fashion_mnist" in message and "\n" not in message


def test_fashion_mnist_found_in_data_dir_and_checked(fake_mnist, monkeypatch):
    declare_checksums(monkeypatch, fake_mnist)
    s = load({"dataset": "fashion_mnist", "data_dir": str(fake_mnist), "validation": 0}, seed=0)
    assert (len(s.train), len(s.test)) == (30, 10)
    bad = {n: "0" * 64 for n in FashionMnist.content_sha256}
    monkeypatch.setattr(FashionMnist, "content_sha256", bad)
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz: checksum mismatch"):
        load({"dataset": "fashion_mnist", "data_dir": str(fake_mnist)}, seed=0)


def test_fashion_mnist_images_and_labels_of_different_counts(fake_mnist, monkeypatch):
    write_idx(fake_mnist / "t10k-labels-idx1-ubyte.gz", np.arange(9) % 9)
    declare_checksums(monkeypatch, fake_mnist)
    with pytest.raises(
        DataError, match=r"^fashion_mnist: t10k images \(10\) and labels \(9\) differ$"
    ):
        load({"dataset": "fashion_mnist", "data_dir": str(fake_mnist)}, seed=0)


def test_data_root_falls_back_to_repository(monkeypatch):
    import importlib.resources

    monkeypatch.setattr(
        importlib.resources, "files", lambda name: (_ for _ in ()).throw(ImportError)
    )
    assert (files.shipped_root() / "digits.npz").is_file()

"""Built-in data sets (``data.dataset: NAME``), registered in ``DATASETS``.

digits and iris have no official test set: a stratified 20 % is held out with a fixed seed
(0), so every run is evaluated on the same examples. mnist and fashion_mnist keep their
official 60000/10000 split.
"""

from __future__ import annotations

from pathlib import Path

from nnctl.data import files
from nnctl.data.idx import read_idx
from nnctl.data.npz import read_npz_array
from nnctl.errors import DataError
from nnctl.registry import Registry

DATASETS = Registry("dataset")

IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


class Builtin:
    """A built-in data set: known shapes, where it comes from, how to read it raw.

    ``read`` returns ``(X, y, X_test, y_test)`` with X of shape (N, *input_shape) in its
    stored dtype (uint8 pixels, float64 features) and y (N,) integer labels; the test
    arrays are None when the set has no official test split.
    """

    input_shape: tuple[int, ...] = ()
    n_classes = 10
    n_examples = 0  # train + test
    n_official_test = 0
    test_fraction = 0.0
    class_names: tuple[str, ...] | None = tuple(str(i) for i in range(10))
    source = ""
    license = ""
    fetchable = False
    shipped: tuple[str, ...] = ()  # files under datasets/

    def present(self, data_dir=None) -> bool:
        return self.where(data_dir) is not None

    def where(self, data_dir=None) -> Path | None:
        root = files.shipped_root()
        return root if all((root / f).is_file() for f in self.shipped) else None

    def read(self, data_dir=None):
        raise NotImplementedError


@DATASETS.register("digits")
class Digits(Builtin):
    input_shape = (8, 8, 1)
    n_examples = 1797
    test_fraction = 0.2
    source = "UCI optical digits 8x8 (shipped)"
    license = "CC BY 4.0"
    shipped = ("digits.npz",)

    def read(self, data_dir=None):
        path = files.shipped_file("digits.npz")
        images = read_npz_array(path, "images")
        return images[..., None], read_npz_array(path, "labels"), None, None  # (N, 8, 8, 1)


@DATASETS.register("iris")
class Iris(Builtin):
    input_shape = (4,)
    n_classes = 3
    n_examples = 150
    test_fraction = 0.2
    class_names = ("setosa", "versicolor", "virginica")
    source = "Fisher's Iris, UCI (shipped)"
    license = "CC BY 4.0"
    shipped = ("iris.npz",)

    def read(self, data_dir=None):
        path = files.shipped_file("iris.npz")
        return read_npz_array(path, "features"), read_npz_array(path, "labels"), None, None


class _Idx(Builtin):
    input_shape = (28, 28, 1)
    n_examples = 70000
    n_official_test = 10000

    def paths(self, data_dir=None) -> list[Path]:
        raise NotImplementedError

    def read(self, data_dir=None):
        images, labels, test_images, test_labels = (read_idx(p) for p in self.paths(data_dir))
        for x, y, p in ((images, labels, "train"), (test_images, test_labels, "t10k")):
            if len(x) != len(y):
                raise DataError(f"{self.type_name}: {p} images ({len(x)}) and labels ({len(y)}) differ")
        return images[..., None], labels, test_images[..., None], test_labels  # NHWC


@DATASETS.register("mnist")
class Mnist(_Idx):
    source = "MNIST, LeCun & Cortes (shipped)"
    license = "CC BY-SA 3.0"
    shipped = tuple(f"mnist/{name}" for name in IDX_FILES)

    def paths(self, data_dir=None) -> list[Path]:
        return [files.shipped_file(f"mnist/{name}") for name in IDX_FILES]


@DATASETS.register("fashion_mnist")
class FashionMnist(_Idx):
    class_names = (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    )  # fmt: skip
    source = "Fashion-MNIST, Zalando (download or Debian package)"
    license = "MIT"
    fetchable = True

    def where(self, data_dir=None) -> Path | None:
        candidates = [d for r in files.data_roots(data_dir) for d in (r / "fashion_mnist", r)]
        for folder in [*candidates, files.DEBIAN_FASHION_DIR]:
            if all((folder / name).is_file() for name in IDX_FILES):
                return folder
        return None

    def paths(self, data_dir=None) -> list[Path]:
        folder = self.where(data_dir)
        if folder is None:
            searched = ", ".join(str(r / "fashion_mnist") for r in files.data_roots(data_dir))
            raise DataError(
                "fashion_mnist is not on this machine (looked in "
                f"{searched}, {files.DEBIAN_FASHION_DIR}); get it with "
                "'sudo apt-get install dataset-fashion-mnist' or 'nnctl data fetch fashion_mnist'"
            )
        for name in IDX_FILES:
            files.verify_raw_sha256(folder / name, files.FASHION_RAW_SHA256[name])
        return [folder / name for name in IDX_FILES]


def get_builtin(name: str, path: str = "data.dataset") -> Builtin:
    """An instance of the built-in data set ``name``; ConfigError listing names if none."""
    return DATASETS.get(name, path)()


def builtin_counts(ds: Builtin) -> tuple[int, int]:
    """Examples in the training part and the test part of a built-in data set."""
    if ds.n_official_test:
        return ds.n_examples - ds.n_official_test, ds.n_official_test
    from nnctl.data.splits import split_count

    n_test = split_count(ds.n_examples, ds.test_fraction)
    return ds.n_examples - n_test, n_test

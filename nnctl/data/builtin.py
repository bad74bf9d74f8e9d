"""Built-in data sets (``data.dataset: NAME``), registered in ``DATASETS``.

Each data set declares all there is to know about it: shapes, source and license, its
files with their SHA-256 and, for one that is downloaded, where from and the checksums its
publisher lists. ``files`` finds and checks the files; ``fetch`` downloads what a data set
declares.

digits and iris have no official test set: a stratified 20 % is held out with a fixed seed
(0), so every run is evaluated on the same examples. mnist and fashion_mnist keep their
official 60000/10000 split.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from nnctl.data import files
from nnctl.data.idx import read_idx
from nnctl.data.npz import read_npz_array
from nnctl.data.splits import split_count
from nnctl.errors import DataError
from nnctl.registry import Registry

DATASETS = Registry("dataset")

#: The files of an MNIST-like data set, in the order ``_Idx.paths`` returns them.
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

    type_name = ""  # set by DATASETS.register
    input_shape: tuple[int, ...] = ()
    n_classes = 10
    n_examples = 0  # train + test
    n_official_test = 0
    test_fraction = 0.0
    class_names: tuple[str, ...] | None = tuple(str(i) for i in range(10))
    source = ""
    license = ""
    #: Files under datasets/ and the SHA-256 of each (also listed in datasets/NOTICE.md).
    shipped: ClassVar[dict[str, str]] = {}
    #: Where ``nnctl data fetch`` downloads ``downloads`` from.
    base_url = ""
    #: Files to download and the checksums their publisher lists for them.
    downloads: ClassVar[dict[str, files.Checksums]] = {}

    @property
    def fetchable(self) -> bool:
        return bool(self.downloads)

    def present(self, data_dir=None) -> bool:
        return self.where(data_dir) is not None

    def where(self, data_dir=None) -> Path | None:
        root = files.shipped_root()
        return root if all((root / f).is_file() for f in self.shipped) else None

    def shipped_path(self, name: str) -> Path:
        """A shipped file, checked against its SHA-256."""
        return files.shipped_file(name, self.shipped[name])

    def read(self, data_dir=None):
        raise NotImplementedError


class _ShippedNpz(Builtin):
    """One shipped .npz holding the features under ``x_key`` and the labels as ``labels``."""

    x_key = ""

    def read(self, data_dir=None):
        (name,) = self.shipped
        path = self.shipped_path(name)
        X = read_npz_array(path, self.x_key)
        labels = read_npz_array(path, "labels")
        return X.reshape((len(X), *self.input_shape)), labels, None, None  # digits: + channel axis


@DATASETS.register("digits")
class Digits(_ShippedNpz):
    input_shape = (8, 8, 1)
    n_examples = 1797
    test_fraction = 0.2
    source = "UCI optical digits 8x8 (shipped)"
    license = "CC BY 4.0"
    shipped: ClassVar[dict[str, str]] = {
        "digits.npz": "b2dab7b501728c22e9119ad76740b2e17c77a231e42d1e592380d90886f1a05e",
    }
    x_key = "images"


@DATASETS.register("iris")
class Iris(_ShippedNpz):
    input_shape = (4,)
    n_classes = 3
    n_examples = 150
    test_fraction = 0.2
    class_names = ("setosa", "versicolor", "virginica")
    source = "Fisher's Iris, UCI (shipped)"
    license = "CC BY 4.0"
    shipped: ClassVar[dict[str, str]] = {
        "iris.npz": "a285219f025db3dbb13946bb3792a18bd06561963e377225d6eb048c6fff8724",
    }
    x_key = "features"


class _Idx(Builtin):
    input_shape = (28, 28, 1)
    n_examples = 70000
    n_official_test = 10000

    def paths(self, data_dir=None) -> list[Path]:
        """The four checked IDX files, in the order of ``IDX_FILES``."""
        raise NotImplementedError

    def read(self, data_dir=None):
        images, labels, test_images, test_labels = (read_idx(p) for p in self.paths(data_dir))
        for x, y, part in ((images, labels, "train"), (test_images, test_labels, "t10k")):
            if len(x) != len(y):
                raise DataError(
                    f"{self.type_name}: {part} images ({len(x)}) and labels ({len(y)}) differ"
                )
        return images[..., None], labels, test_images[..., None], test_labels  # NHWC


@DATASETS.register("mnist")
class Mnist(_Idx):
    source = "MNIST, LeCun & Cortes (shipped)"
    license = "CC BY-SA 3.0"
    shipped: ClassVar[dict[str, str]] = {
        "mnist/train-images-idx3-ubyte.gz": (
            "0b367032e93c5d0cea0925647cfdb18614af8ee15f83e6f2fc2ad904a6835971"
        ),
        "mnist/train-labels-idx1-ubyte.gz": (
            "1787548bbe0bff1ec2ecdc0ef292b02df999e2d1a6002d27500982c652b17203"
        ),
        "mnist/t10k-images-idx3-ubyte.gz": (
            "1a1a05eab793c14bb050b398624a11b0ffd1a2953baed553b1b9bd079e2a20be"
        ),
        "mnist/t10k-labels-idx1-ubyte.gz": (
            "b91679a0acfe4ba0e50a2437a903084cba1f5f92592b016a25a7dfd00455798b"
        ),
    }

    def paths(self, data_dir=None) -> list[Path]:
        return [self.shipped_path(f"mnist/{name}") for name in IDX_FILES]


@DATASETS.register("fashion_mnist")
class FashionMnist(_Idx):
    class_names = (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    )  # fmt: skip
    source = "Fashion-MNIST, Zalando (download or Debian package)"
    license = "MIT"
    base_url = (
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"
    )
    #: SHA-256 of the official .gz files, and the MD5s the Fashion-MNIST README publishes.
    downloads: ClassVar[dict[str, files.Checksums]] = {
        "train-images-idx3-ubyte.gz": files.Checksums(
            "08dc20ab1689590a0bcd66e874647b6ee8464e2d501b5a3f1f78831db19a3fdc",
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        ),
        "train-labels-idx1-ubyte.gz": files.Checksums(
            "b0197879cbda89f3dc7b894f9fd52b858e68ea4182b6947c9d8c2b67e5f18dcc",
            "25c81989df183df01b3e8a0aad5dffbe",
        ),
        "t10k-images-idx3-ubyte.gz": files.Checksums(
            "78dcbbfb5a27efaf1b6c1d616caca68560be8766c5bffcb2791df9273a534229",
            "bef4ecab320f06d8554ea6380940ec79",
        ),
        "t10k-labels-idx1-ubyte.gz": files.Checksums(
            "42bd18137a62d5998cdeae52bf3a0676ac6b706f5cf8439b47bb5b151ae3dccf",
            "bb300cfdad3c16e7a12a480ee83cd310",
        ),
    }
    #: SHA-256 of the *uncompressed* IDX files, checked on load. The official .gz files and
    #: Debian's re-compressed ones differ byte for byte but hold the same IDX content, whose
    #: MD5s the Fashion-MNIST project also lists.
    content_sha256: ClassVar[dict[str, str]] = {
        "train-images-idx3-ubyte.gz": (
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"
        ),
        "train-labels-idx1-ubyte.gz": (
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"
        ),
        "t10k-images-idx3-ubyte.gz": (
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"
        ),
    }
    #: Where Debian's package dataset-fashion-mnist installs the files.
    system_dir = Path("/usr/share/datasets/fashion-mnist")

    def where(self, data_dir=None) -> Path | None:
        roots = files.data_roots(data_dir)
        candidates = [d for r in roots for d in (r / self.type_name, r)]
        for folder in [*candidates, self.system_dir]:
            if all((folder / name).is_file() for name in IDX_FILES):
                return folder
        return None

    def paths(self, data_dir=None) -> list[Path]:
        folder = self.where(data_dir)
        if folder is None:
            searched = ", ".join(str(r / self.type_name) for r in files.data_roots(data_dir))
            raise DataError(
                f"fashion_mnist is not on this machine (looked in {searched}, {self.system_dir}); "
                "get it with 'sudo apt-get install dataset-fashion-mnist' or "
                "'nnctl data fetch fashion_mnist'"
            )
        for name in IDX_FILES:
            files.verify_sha256(folder / name, self.content_sha256[name], content=True)
        return [folder / name for name in IDX_FILES]


def get_builtin(name: str, path: str = "data.dataset") -> Builtin:
    """An instance of the built-in data set ``name``; ConfigError listing names if none."""
    return DATASETS.get(name, path)()


def builtin_counts(ds: Builtin) -> tuple[int, int]:
    """Examples in the training part and the test part of a built-in data set."""
    if ds.n_official_test:
        return ds.n_examples - ds.n_official_test, ds.n_official_test
    n_test = split_count(ds.n_examples, ds.test_fraction)
    return ds.n_examples - n_test, n_test

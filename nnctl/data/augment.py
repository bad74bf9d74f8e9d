"""Random augmentations of training batches (``data.augment``), vectorized over the batch.

An augmentation maps a batch ``X`` of shape (batch, rows, cols, channels) (NHWC, as the
conv layers) and a ``numpy.random.Generator`` to a new batch of the same shape and dtype.
Each draws everything it needs for the whole batch at once (one array of offsets, flags or
angles) and applies it with masks, broadcasting and fancy indexing: there is no Python loop
over examples. A list of them (``Augmenter``) runs in order.

The trainer augments training batches only (never validation, test, ``eval`` or
``predict``), after preprocessing, with a generator seeded from the run's seed and the
global step: a resumed run draws exactly what the uninterrupted one drew.

Values are in the units of the preprocessed input: with ``normalize: standard``, a
``gaussian_noise`` of ``std: 0.1`` is a tenth of the training data's standard deviation and
``random_erasing``'s ``value: 0`` is the training mean (torchvision applies
``RandomErasing`` after ``Normalize`` too). The border that ``random_crop`` pads and the
corners that ``random_rotation`` uncovers are filled with ``fill``, which configs do not
set: the data layer passes the preprocessed value of a raw 0 pixel, so a black background
stays black, as when the raw image is padded before normalizing (torchvision's order).
"""

from __future__ import annotations

import inspect

import numpy as np

from nnctl.core import checks
from nnctl.core.checks import ArgumentError
from nnctl.data.warp import rotate
from nnctl.registry import Registry

AUGMENTATIONS = Registry("augmentation")

PADDING_MODES = ("constant", "edge", "reflect")
ERASE_TRIES = 10  # rectangles drawn per example before giving up, as torchvision


class Augmentation:
    """Base class: ``augmentation(X, rng)`` returns a new, augmented batch.

    Subclasses implement ``__call__`` and ``get_config``.
    """

    type_name: str

    def __call__(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "type")
        return f"{type(self).__name__}({args})"


def _chosen(n: int, p: float, rng: np.random.Generator) -> np.ndarray:
    """Which of ``n`` examples an augmentation with probability ``p`` applies to.

    Returns
    -------
    ndarray of shape (n,), bool
    """
    return rng.random(n) < p


@AUGMENTATIONS.register("random_crop")
class RandomCrop(Augmentation):
    """Pad every side by ``pad`` pixels, then crop the original size at a random offset: a
    random shift by up to ``pad`` pixels along each axis. ``padding_mode``: ``constant``
    (black), ``edge`` (repeat the outermost pixels) or ``reflect`` (mirror, edge not repeated).

    Parameters
    ----------
    pad : int
        Pixels added on each side, >= 1.
    padding_mode : {"constant", "edge", "reflect"}
    fill : float
        The border value of ``constant`` padding (set by the data layer, not by configs).
    """

    def __init__(self, pad: int = 4, padding_mode: str = "constant", fill: float = 0.0):
        self.pad = checks.positive_int("pad", pad)
        self.padding_mode = checks.choice("padding_mode", padding_mode, PADDING_MODES)
        self.fill = checks.number("fill", fill)

    def __call__(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Crop ``X`` of shape (batch, rows, cols, channels); same shape out."""
        n, rows, cols, _ = X.shape
        p = self.pad
        width = ((0, 0), (p, p), (p, p), (0, 0))
        if self.padding_mode == "constant":
            padded = np.pad(X, width, constant_values=np.asarray(self.fill, X.dtype))
        else:
            padded = np.pad(X, width, mode=self.padding_mode)  # (batch, rows+2p, cols+2p, ch)
        top, left = rng.integers(0, 2 * p + 1, size=(2, n))
        r = top[:, None] + np.arange(rows)  # (batch, rows): source row of each output row
        c = left[:, None] + np.arange(cols)  # (batch, cols)
        return padded[np.arange(n)[:, None, None], r[:, :, None], c[:, None, :]]

    def get_config(self) -> dict:
        return {"type": self.type_name, "pad": self.pad, "padding_mode": self.padding_mode}


@AUGMENTATIONS.register("flip")
class Flip(Augmentation):
    """Mirror examples left-right (``horizontal``) and/or upside down (``vertical``): each
    enabled direction with probability ``p``, drawn independently per example.

    Parameters
    ----------
    horizontal : bool
        Flip the columns (left-right).
    vertical : bool
        Flip the rows (upside down).
    p : float
        Probability of each enabled flip, in [0, 1].
    """

    def __init__(self, horizontal: bool = True, vertical: bool = False, p: float = 0.5):
        self.horizontal = checks.flag("horizontal", horizontal)
        self.vertical = checks.flag("vertical", vertical)
        self.p = checks.probability("p", p)
        if not (self.horizontal or self.vertical):
            raise ArgumentError(
                "horizontal", "must be true when vertical is false (nothing would be flipped)"
            )

    def __call__(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Flip examples of ``X`` of shape (batch, rows, cols, channels); same shape out."""
        out = X
        for axis, enabled in ((2, self.horizontal), (1, self.vertical)):
            if enabled:
                flip = _chosen(len(X), self.p, rng)[:, None, None, None]  # (batch, 1, 1, 1)
                out = np.where(flip, np.flip(out, axis), out)
        return out

    def get_config(self) -> dict:
        return {
            "type": self.type_name,
            "horizontal": self.horizontal,
            "vertical": self.vertical,
            "p": self.p,
        }


@AUGMENTATIONS.register("random_erasing")
class RandomErasing(Augmentation):
    """With probability ``p``, replace a random rectangle of an example by ``value`` (a
    number, or ``random`` for standard normal noise): its area a fraction of the image drawn
    from ``scale``, its height/width drawn log-uniformly from ``ratio``. As torchvision's
    ``RandomErasing`` (Zhong et al., 2020); cutout is ``scale: [a, a], ratio: [1, 1], p: 1``.

    Up to 10 rectangles are drawn per example and the first that fits inside the image is
    erased; an example none of whose rectangles fits is left as it is (torchvision's rule).

    Parameters
    ----------
    p : float
        Probability that an example is erased, in [0, 1].
    scale : (float, float)
        Range of the erased area as a fraction of the image, ``0 < low <= high <= 1``.
    ratio : (float, float)
        Range of the rectangle's height / width, ``0 < low <= high``.
    value : float or "random"
        The value written into the rectangle (0 is the training mean with standard
        normalization), or ``random`` for standard normal noise.
    """

    def __init__(self, p: float = 0.5, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0.0):
        self.p = checks.probability("p", p)
        self.scale = checks.positive_range("scale", scale, upper=1.0)
        self.ratio = checks.positive_range("ratio", ratio)
        if value != "random":
            if not checks.is_real(value):
                raise ArgumentError("value", f"must be a number or 'random'; got {value!r}")
            value = float(value)
        self.value = value

    def __call__(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Erase rectangles of ``X`` of shape (batch, rows, cols, channels); same shape out."""
        n, rows, cols, _ = X.shape
        erase = _chosen(n, self.p, rng)
        top, left, height, width = self.rectangles(n, rows, cols, rng)
        r, c = np.arange(rows), np.arange(cols)
        in_rows = (r >= top[:, None]) & (r < (top + height)[:, None])  # (batch, rows)
        in_cols = (c >= left[:, None]) & (c < (left + width)[:, None])  # (batch, cols)
        inside = in_rows[:, :, None] & in_cols[:, None, :]  # (batch, rows, cols)
        mask = (inside & erase[:, None, None])[..., None]  # (batch, rows, cols, 1)
        if self.value == "random":
            fill = rng.standard_normal(X.shape, dtype=_float_dtype(X))
        else:
            fill = np.asarray(self.value, dtype=X.dtype)
        return np.where(mask, fill, X).astype(X.dtype, copy=False)

    def rectangles(self, n: int, rows: int, cols: int, rng: np.random.Generator):
        """Per-example rectangles ``(top, left, height, width)``, each of shape (n,), int64.

        Height and width are 0 for an example none of whose tries fits inside the image.
        """
        tries = (n, ERASE_TRIES)
        area = rows * cols * rng.uniform(*self.scale, size=tries)
        aspect = np.exp(rng.uniform(*np.log(self.ratio), size=tries))
        height = np.rint(np.sqrt(area * aspect)).astype(np.int64)  # (n, tries)
        width = np.rint(np.sqrt(area / aspect)).astype(np.int64)
        fits = (height < rows) & (width < cols)
        first = fits.argmax(axis=1)  # the first try that fits (0 when none does)
        found = fits[np.arange(n), first]
        height = np.where(found, height[np.arange(n), first], 0)
        width = np.where(found, width[np.arange(n), first], 0)
        top = (rng.random(n) * (rows - height + 1)).astype(np.int64)  # 0 .. rows - height
        left = (rng.random(n) * (cols - width + 1)).astype(np.int64)
        return top, left, height, width

    def get_config(self) -> dict:
        return {
            "type": self.type_name,
            "p": self.p,
            "scale": list(self.scale),
            "ratio": list(self.ratio),
            "value": self.value,
        }


@AUGMENTATIONS.register("gaussian_noise")
class GaussianNoise(Augmentation):
    """With probability ``p``, add independent normal noise of standard deviation ``std``
    (in normalized units) to every value of an example.

    Parameters
    ----------
    std : float
        Standard deviation of the noise, > 0, in preprocessed units.
    p : float
        Probability that an example gets noise, in [0, 1].
    """

    def __init__(self, std: float = 0.1, p: float = 1.0):
        self.std = checks.positive("std", std)
        self.p = checks.probability("p", p)

    def __call__(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Noisy copy of ``X`` of shape (batch, rows, cols, channels)."""
        noisy = _chosen(len(X), self.p, rng).astype(X.dtype)[:, None, None, None]
        noise = rng.standard_normal(X.shape, dtype=_float_dtype(X))
        return (X + noise * (self.std * noisy)).astype(X.dtype, copy=False)

    def get_config(self) -> dict:
        return {"type": self.type_name, "std": self.std, "p": self.p}


@AUGMENTATIONS.register("random_rotation")
class RandomRotation(Augmentation):
    """With probability ``p``, rotate an example about its centre by an angle drawn
    uniformly from [-degrees, degrees]: bilinear interpolation, the uncovered corners black.

    Parameters
    ----------
    degrees : float
        Largest rotation either way, in (0, 180].
    p : float
        Probability that an example is rotated, in [0, 1].
    fill : float
        Value of the uncovered corners (set by the data layer, not by configs).
    """

    def __init__(self, degrees: float = 10.0, p: float = 1.0, fill: float = 0.0):
        self.degrees = checks.positive("degrees", degrees)
        if self.degrees > 180:
            raise ArgumentError("degrees", f"must be at most 180; got {degrees}")
        self.p = checks.probability("p", p)
        self.fill = checks.number("fill", fill)

    def __call__(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Rotated copy of ``X`` of shape (batch, rows, cols, channels)."""
        angles = rng.uniform(-self.degrees, self.degrees, size=len(X))
        angles *= _chosen(len(X), self.p, rng)
        return rotate(X, np.deg2rad(angles), self.fill)

    def get_config(self) -> dict:
        return {"type": self.type_name, "degrees": self.degrees, "p": self.p}


def _float_dtype(X: np.ndarray):
    """The dtype noise is drawn in: X's for float32/float64, else float64."""
    return X.dtype if X.dtype in (np.float32, np.float64) else np.float64


class Augmenter:
    """The ``data.augment`` list: every augmentation in order, on one generator.

    Parameters
    ----------
    augmentations : list of Augmentation
    """

    def __init__(self, augmentations):
        self.augmentations = list(augmentations)

    def __call__(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Augment ``X`` of shape (batch, rows, cols, channels); same shape and dtype out."""
        for augmentation in self.augmentations:
            X = augmentation(X, rng)
        return X

    def __len__(self) -> int:
        return len(self.augmentations)

    def get_config(self) -> list[dict]:
        return [augmentation.get_config() for augmentation in self.augmentations]

    @classmethod
    def from_config(cls, specs, fill: float = 0.0) -> Augmenter:
        """Build resolved ``specs`` (``[{type: flip, ...}, ...]``); ``fill`` goes to every
        augmentation that takes it."""
        made = []
        for spec in specs:
            kwargs = {"type": spec} if isinstance(spec, str) else dict(spec)
            factory = AUGMENTATIONS.get(kwargs.pop("type"))
            if "fill" in inspect.signature(factory).parameters:
                kwargs["fill"] = fill
            made.append(factory(**kwargs))
        return cls(made)


def black_value(preprocess) -> float:
    """The preprocessed value of a raw 0 pixel (``fill`` for image data).

    Parameters
    ----------
    preprocess : nnctl.data.Preprocessor
        Fitted on image data (one scalar statistic for all pixels).
    """
    zero = np.zeros((1, *preprocess.sample_shape), dtype=np.float32)
    return float(preprocess.transform(zero).flat[0])

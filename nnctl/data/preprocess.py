"""Feature scaling fitted on the training part and re-applied to any data.

``minmax`` maps the training range to [0, 1]; ``standard`` to zero mean, unit variance;
``none`` only converts to float32. Image data (examples of rank >= 2) uses one scalar
statistic for all pixels; tabular data (rank 1) uses one per feature. A zero range or
zero variance is replaced by 1 so constant features stay finite.
"""

from __future__ import annotations

import numpy as np

from nnctl.errors import DataError

MODES = ("standard", "minmax", "none")
_CHUNK = 8192  # rows per chunk: statistics and conversion never copy the whole set


def output_shape(sample_shape: tuple[int, ...], flatten: bool) -> tuple[int, ...]:
    """Shape of one preprocessed example: ``sample_shape``, or (prod(sample_shape),) flat."""
    return (int(np.prod(sample_shape)),) if flatten else tuple(sample_shape)


class Preprocessor:
    """``(X - shift) / scale`` as float32, then an optional flatten.

    Parameters
    ----------
    mode : {"standard", "minmax", "none"}
    sample_shape : tuple of int
        Shape of one raw example, e.g. (28, 28, 1) or (4,).
    shift, scale : ndarray
        Shape () for image data, (n_features,) for tabular data.
    flatten : bool
        Reshape each example to (prod(sample_shape),) after scaling.
    """

    def __init__(self, mode, sample_shape, shift=0.0, scale=1.0, flatten=False):
        self.mode = str(mode)
        self.sample_shape = tuple(int(s) for s in sample_shape)
        self.shift = np.asarray(shift, dtype=np.float32)
        self.scale = np.asarray(scale, dtype=np.float32)
        self.flatten = bool(flatten)

    @classmethod
    def fit(cls, X: np.ndarray, mode: str = "minmax", flatten: bool = False) -> Preprocessor:
        """Statistics of ``X`` of shape (N, *sample_shape), the training part only."""
        axis = None if X.ndim > 2 else 0
        if mode == "minmax":
            low, high = X.min(axis=axis), X.max(axis=axis)
            shift, scale = low, high.astype(np.float64) - low
        elif mode == "standard":
            shift, scale = _chunked_moments(X, axis)
        else:
            shift, scale = 0.0, 1.0
        scale = np.where(np.asarray(scale) > 0, scale, 1.0)
        return cls(mode, X.shape[1:], shift, scale, flatten)

    @property
    def output_shape(self) -> tuple[int, ...]:
        """Shape of one transformed example."""
        return output_shape(self.sample_shape, self.flatten)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Scale ``X`` of shape (N, *sample_shape) into a new float32 array.

        Returns
        -------
        ndarray of shape (N, *output_shape), float32
        """
        X = self._conform(np.asarray(X))
        out = np.empty(X.shape, dtype=np.float32)
        for begin in range(0, len(X), _CHUNK):
            chunk = out[begin : begin + _CHUNK]
            chunk[...] = X[begin : begin + _CHUNK]
            if self.mode != "none":
                chunk -= self.shift
                chunk /= self.scale
        return out.reshape(len(out), -1) if self.flatten else out  # (N, prod) view

    def _conform(self, X: np.ndarray) -> np.ndarray:
        if X.shape[1:] == self.sample_shape:
            return X
        if X.ndim >= 2 and int(np.prod(X.shape[1:])) == int(np.prod(self.sample_shape)):
            return X.reshape((len(X), *self.sample_shape))  # e.g. (N, 28, 28) → (N, 28, 28, 1)
        if len(self.sample_shape) == 1 and X.ndim == 2:
            raise DataError(
                f"input has {X.shape[1]} features per example; the model takes "
                f"{self.sample_shape[0]}"
            )
        raise DataError(
            f"input of shape {X.shape[1:]} per example does not match the data the "
            f"preprocessing was fitted on, {self.sample_shape}"
        )

    def state_dict(self) -> dict[str, np.ndarray]:
        """Arrays that :meth:`from_state_dict` restores (savable with ``np.savez``)."""
        return {
            "mode": np.array(self.mode),
            "sample_shape": np.array(self.sample_shape, dtype=np.int64),
            "shift": self.shift,
            "scale": self.scale,
            "flatten": np.array(self.flatten),
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, np.ndarray]) -> Preprocessor:
        """Rebuild a fitted preprocessor from :meth:`state_dict` output."""
        return cls(
            str(state["mode"]),
            tuple(np.asarray(state["sample_shape"]).tolist()),
            state["shift"],
            state["scale"],
            bool(state["flatten"]),
        )

    def get_config(self) -> dict:
        return {"normalize": self.mode, "flatten": self.flatten}


def _chunked_moments(X: np.ndarray, axis: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation in float64, combining chunks (Chan et al.)."""
    count, mean, m2 = 0, 0.0, 0.0
    for begin in range(0, len(X), _CHUNK):
        chunk = X[begin : begin + _CHUNK].astype(np.float64)
        if axis is None:
            chunk = chunk.reshape(-1)
        n = chunk.shape[0]
        c_mean = chunk.mean(axis=0)
        c_m2 = ((chunk - c_mean) ** 2).sum(axis=0)
        delta = c_mean - mean
        total = count + n
        mean = mean + delta * n / total
        m2 = m2 + c_m2 + delta**2 * count * n / total
        count = total
    return np.asarray(mean), np.sqrt(np.asarray(m2) / max(count, 1))

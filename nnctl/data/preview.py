"""``nnctl data preview``: training examples next to augmented draws of them, as a PNG.

``preview_grid`` picks the examples and augments them (NumPy only); ``draw_preview``
draws the grid with matplotlib, an optional extra imported only here, when drawing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnctl.data.spec import Splits


@dataclass
class PreviewGrid:
    """Examples (rows) and their augmented draws (columns).

    Attributes
    ----------
    images : ndarray of shape (examples, 1 + draws, rows, cols, channels)
        Column 0 is the original; preprocessed units, as the network sees them.
    titles : list of str
        One per example: its class name (or label).
    """

    images: np.ndarray
    titles: list[str]


def preview_grid(splits: Splits, n: int, draws: int, seed: int) -> PreviewGrid:
    """``n`` random training examples, each with ``draws`` augmentations of it.

    Parameters
    ----------
    splits : Splits
        With ``augment`` set (``data.augment``) and image data.
    n, draws : int
        Examples (at most the training set) and augmented draws per example, >= 1.
    seed : int
        Picks the examples and seeds the draws.
    """
    rng = np.random.default_rng(seed)
    train = splits.train
    chosen = np.sort(rng.choice(len(train), size=min(n, len(train)), replace=False))
    X = train.X[chosen]  # (examples, rows, cols, channels)
    columns = [X] + [splits.augment(X, rng) for _ in range(draws)]
    images = np.stack(columns, axis=1)  # (examples, 1 + draws, rows, cols, channels)
    return PreviewGrid(images, [_title(y, splits.spec.class_names) for y in train.y[chosen]])


def _title(y, class_names) -> str:
    if np.ndim(y) == 0 and class_names is not None:
        return str(class_names[int(y)])
    if np.ndim(y) == 0:
        return f"class {int(y)}"
    return ", ".join(f"{v:.3g}" for v in np.ravel(y)[:3])  # a regression target


def display_range(images: np.ndarray) -> tuple[float, float]:
    """Black and white of the grid: the originals' range, so that every column shares one
    scale (noise beyond it is clipped, erased areas keep their value)."""
    originals = images[:, 0]
    low, high = float(originals.min()), float(originals.max())
    return low, high if high > low else low + 1.0


def _displayable(image: np.ndarray, low: float, high: float) -> np.ndarray:
    """(rows, cols, 3) RGB for three channels, else (rows, cols) of the first, in [0, 1]."""
    scaled = np.clip((image - low) / (high - low), 0.0, 1.0)
    return scaled if image.shape[-1] == 3 else scaled[..., 0]


def draw_preview(grid: PreviewGrid, out: Path, caption: str) -> None:
    """Draw ``grid`` as a PNG: one row per example (its class as the title of the original),
    the original first, then the augmented draws; one grey scale for all. ``caption`` goes
    on top."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    n, columns = grid.images.shape[:2]
    low, high = display_range(grid.images)
    fig, axes = plt.subplots(n, columns, figsize=(1.3 * columns, 1.45 * n + 0.5), squeeze=False)
    try:
        for row, (examples, title) in enumerate(zip(grid.images, grid.titles)):
            for column, image in enumerate(examples):
                ax = axes[row, column]
                ax.imshow(
                    _displayable(image, low, high),
                    cmap="gray",
                    vmin=0.0,
                    vmax=1.0,
                    interpolation="nearest",
                )
                ax.set_xticks([])
                ax.set_yticks([])
                if column == 0:
                    ax.set_title(title, fontsize=9)
        fig.suptitle(caption, fontsize=9)
        fig.tight_layout()
        fig.savefig(out, format="png", dpi=100)
    finally:
        plt.close(fig)

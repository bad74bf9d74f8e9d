"""``nnctl plot``: loss and accuracy curves of runs as a PNG.

matplotlib is an optional extra (``pip install 'nnctl[plot]'``), imported only when a plot
is drawn.
"""

from __future__ import annotations

from pathlib import Path

from nnctl.errors import NnctlError

PLOT_INSTALL = "nnctl plot needs matplotlib: pip install 'nnctl[plot]'"


def require_matplotlib(command: str = "nnctl plot") -> None:
    """NnctlError saying how to install the extra when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401  (optional extra)
    except ImportError:
        raise NnctlError(PLOT_INSTALL.replace("nnctl plot", command)) from None


def logged_metrics(runs: dict[str, list[dict]], wanted: list[str]) -> list[str]:
    """The metrics of ``wanted`` ("loss", "accuracy") that any run logged, train or val."""
    return [metric for metric in wanted if _logged(runs, metric)]


def _logged(runs: dict[str, list[dict]], metric: str) -> bool:
    keys = (f"train_{metric}", f"val_{metric}")
    return any(row.get(key) is not None for rows in runs.values() for row in rows for key in keys)


def plot_runs(runs: dict[str, list[dict]], metrics: list[str], out: Path) -> None:
    """Curves of ``metrics`` for every run (label → epoch rows), train solid and validation
    dashed, one panel per metric, saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, len(metrics), figsize=(6 * len(metrics), 4), squeeze=False)
    try:
        for ax, metric in zip(axes[0], metrics):
            _plot_metric(ax, runs, metric)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        fig.tight_layout()
        fig.savefig(out, format="png", dpi=100)
    finally:
        plt.close(fig)


def _plot_metric(ax, runs: dict[str, list[dict]], metric: str) -> None:
    for color, (label, rows) in enumerate(runs.items()):
        for split, style in (("train", "-"), ("val", "--")):
            points = [(r["epoch"], r[f"{split}_{metric}"]) for r in rows
                      if r.get(f"{split}_{metric}") is not None and "epoch" in r]  # fmt: skip
            if points:
                x, y = zip(*points)
                ax.plot(x, y, style, color=f"C{color % 10}", label=f"{label} {split}")
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")

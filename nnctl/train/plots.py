"""``nnctl plot``: loss and accuracy curves of runs, and a metric against a hyperparameter.

Curves: training solid, validation dashed, one colour per run, per value of a
hyperparameter or from a colour scale (``nnctl.train.plotstyle``); a group of runs (the
seeds of one setting) is drawn as its mean with a ± one standard deviation band. The
legend or colour bar sits in a column of its own beside the panels, so it never covers a
curve however many runs there are.

matplotlib is an optional extra (``pip install 'nnctl[plot]'``), imported only when a plot
is drawn.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from nnctl.errors import NnctlError
from nnctl.train.plotstyle import Palette, is_number, shown

PLOT_INSTALL = "nnctl plot needs matplotlib: pip install 'nnctl[plot]'"
MANY = 10  # from this many curves on, lines get thinner and translucent
SPLITS = (("train", "-", "train"), ("val", "--", "validation"))


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


@dataclass
class Curve:
    """A run's epoch rows, or a group's mean rows with their standard deviations."""

    label: str
    rows: list[dict]
    value: object = None  # what it is coloured by (None: its label)
    spread: list[dict] | None = None  # per-epoch standard deviations, for a band


def mean_curve(label: str, runs: list[list[dict]], value=None) -> Curve:
    """The mean and standard deviation, epoch by epoch, over the runs that logged each
    value (a pruned run counts until it stopped)."""
    epochs = sorted({row["epoch"] for rows in runs for row in rows if "epoch" in row})
    means, spreads = [], []
    for epoch in epochs:
        at = [row for rows in runs for row in rows if row.get("epoch") == epoch]
        mean, spread = {"epoch": epoch}, {"epoch": epoch}
        for key in {k for row in at for k in row if k.startswith(("train_", "val_"))}:
            values = [row[key] for row in at if is_number(row.get(key))]
            if values:
                mean[key] = statistics.fmean(values)
                spread[key] = statistics.stdev(values) if len(values) > 1 else 0.0
        means.append(mean)
        spreads.append(spread)
    return Curve(label, means, value, spreads)


def _figure(panels: int, key_width: float = 2.6):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt.subplots(1, panels + 1, figsize=(5.2 * panels + key_width, 4.2),
                        width_ratios=[5.2] * panels + [key_width], layout="constrained")  # fmt: skip


def _save(fig, out: Path) -> None:
    from matplotlib import pyplot as plt

    try:
        fig.savefig(out, format="png", dpi=100)
    finally:
        plt.close(fig)


def plot_curves(curves: list[Curve], metrics: list[str], out: Path, title: str | None = None,
                log: bool = False) -> None:  # fmt: skip
    """Curves of ``metrics`` for every curve, one panel per metric, saved as PNG; coloured
    by ``Curve.value`` under ``title`` (a hyperparameter), else one colour per run."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    values = [c.value if title else c.label for c in curves]
    palette = Palette(values, title or ("run" if len(curves) > 1 else ""), log)
    fig, axes = _figure(len(metrics))
    for ax, metric in zip(axes[:-1], metrics):
        for curve, colour in zip(curves, palette.colours):
            _draw(ax, curve, metric, colour, many=len(curves) >= MANY)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    extra = [(Line2D([], [], color="0.3", ls=style), name) for _, style, name in SPLITS]
    if any(c.spread for c in curves):
        extra.append((Patch(color="0.3", alpha=0.2), "± 1 std over runs"))
    palette.draw_key(axes[-1], extra)
    _save(fig, out)


def _draw(ax, curve: Curve, metric: str, colour, many: bool) -> None:
    width, alpha = (1.0, 0.75) if many else (1.6, 1.0)
    for split, style, _ in SPLITS:
        key = f"{split}_{metric}"
        points = [(r["epoch"], r[key]) for r in curve.rows if is_number(r.get(key))]
        if not points:
            continue
        x, y = zip(*points)
        ax.plot(x, y, style, color=colour, lw=width, alpha=alpha)
        if curve.spread:
            std = {s["epoch"]: s.get(key, 0.0) for s in curve.spread}
            ax.fill_between(x, [v - std[e] for e, v in points], [v + std[e] for e, v in points],
                            color=colour, alpha=0.15, lw=0)  # fmt: skip


@dataclass
class Point:
    """One run in a ``--vs`` plot: the hyperparameter, the best metric, how it ended."""

    x: object
    y: float
    pruned: bool = False
    value: object = None  # what it is coloured by


def plot_vs(points: list[Point], key: str, metric: str, out: Path, log: bool = False,
            title: str | None = None, color_log: bool = False) -> None:  # fmt: skip
    """The best ``metric`` of each run against ``key``, with the mean over runs that share
    a value (seeds) joined by a line and ± one standard deviation as error bars."""
    from matplotlib.lines import Line2D

    fig, axes = _figure(1, key_width=2.2)
    ax, key_ax = axes
    numeric = all(is_number(p.x) for p in points)
    order = sorted({shown(p.x) for p in points}) if not numeric else None
    position = (lambda x: x) if numeric else (lambda x: order.index(shown(x)))
    palette = Palette([p.value for p in points], title, color_log) if title else None
    colours = palette.colours if palette else ["C0"] * len(points)
    for point, colour in zip(points, colours):
        ax.scatter(position(point.x), point.y, color=colour, marker="x" if point.pruned else "o",
                   alpha=0.8, zorder=3)  # fmt: skip
    averaged = _mean_line(ax, points, position)
    if log and numeric:
        ax.set_xscale("log")
    if not numeric:
        ax.set_xticks(range(len(order)), order, rotation=30, ha="right")
    ax.set_xlabel(key)
    ax.set_ylabel(f"best {metric}")
    ax.grid(alpha=0.3)
    extra = [(Line2D([], [], color="0.3", marker="o", ls=""), "run"),
             (Line2D([], [], color="0.3", marker="x", ls=""), "pruned run")]  # fmt: skip
    if averaged:
        extra.append((averaged, "mean ± std over runs"))
    if palette:
        palette.draw_key(key_ax, extra)
    else:
        key_ax.axis("off")
        key_ax.legend(*zip(*extra), loc="upper left", fontsize="small", frameon=False)
    _save(fig, out)


def _mean_line(ax, points: list[Point], position):
    """The mean ± std over runs sharing an x value (None when no value repeats)."""
    groups: dict = {}
    for point in points:
        groups.setdefault(position(point.x), []).append(point.y)
    if all(len(ys) == 1 for ys in groups.values()):
        return None
    xs = sorted(groups)
    means = [statistics.fmean(groups[x]) for x in xs]
    stds = [statistics.stdev(groups[x]) if len(groups[x]) > 1 else 0.0 for x in xs]
    return ax.errorbar(xs, means, yerr=stds, color="0.2", lw=1.2, capsize=3, zorder=2)

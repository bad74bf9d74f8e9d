"""Colours for many runs: one per run, per value of a hyperparameter, or a colour scale.

A palette gives each curve its colour and draws its key beside the axes (never over the
curves): a legend of names or values, or a colour bar for numbers, on a log scale when
the values span two decades or more (learning rates).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

MAX_LABEL = 40  # legend entries are cut to this many characters
LOG_SPAN = 10.0  # max/min at which a colour scale or axis becomes logarithmic


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def wants_log(values: list) -> bool:
    """Positive numbers spanning ``LOG_SPAN`` or more."""
    numbers = [v for v in values if is_number(v)]
    return bool(numbers) and min(numbers) > 0 and max(numbers) / min(numbers) >= LOG_SPAN


def short(text: str) -> str:
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def shown(value) -> str:
    return value if isinstance(value, str) else f"{value:g}" if is_number(value) else (
        json.dumps(value))  # fmt: skip


@dataclass
class Palette:
    """Colours of ``values`` (one per curve): a scale for numbers, else one per value."""

    values: list
    title: str
    log: bool = False

    def __post_init__(self):
        from matplotlib import colormaps, colors

        distinct = list(dict.fromkeys(json.dumps(v) for v in self.values))
        self.numeric = len(distinct) > 1 and all(is_number(v) for v in self.values)
        if self.numeric:
            low, high = min(self.values), max(self.values)
            norm = colors.LogNorm if self.log and low > 0 else colors.Normalize
            # viridis without its last yellows, which vanish on white
            self.norm = norm(low, high)
            self.cmap = colors.ListedColormap(colormaps["viridis"](np.linspace(0.0, 0.85, 256)))
            self.colours = [self.cmap(self.norm(v)) for v in self.values]
            return
        self.distinct = [json.loads(d) for d in distinct]
        cmap = colormaps["tab10" if len(distinct) <= 10 else "tab20"]
        if len(distinct) > 20:
            cmap = colormaps["viridis"].resampled(len(distinct))
        by_value = {d: cmap(i % cmap.N) for i, d in enumerate(distinct)}
        self.colours = [by_value[json.dumps(v)] for v in self.values]

    def draw_key(self, key_ax, extra: list | None = None) -> None:
        """The colour bar or legend in ``key_ax`` (an axes beside the panels), with
        ``extra`` (handle, label) pairs (line styles) under it."""
        from matplotlib import cm
        from matplotlib.lines import Line2D

        key_ax.axis("off")
        extra = extra or []
        if self.numeric:
            bar_ax = key_ax.inset_axes([0.0, 0.3 if extra else 0.05, 0.1, 0.65 if extra else 0.9])
            bar = key_ax.figure.colorbar(cm.ScalarMappable(self.norm, self.cmap), cax=bar_ax)
            bar.set_label(self.title)
            if extra:
                key_ax.legend(*zip(*extra), loc="lower left", fontsize="small", frameon=False,
                              borderaxespad=0)  # fmt: skip
            return
        handles = [Line2D([], [], color=c, lw=3) for c in self._distinct_colours()]
        labels = [short(shown(v)) for v in self.distinct]
        handles += [h for h, _ in extra]
        labels += [label for _, label in extra]
        columns = 1 if len(handles) <= 24 else 2
        key_ax.legend(handles, labels, loc="upper left", fontsize="small", ncols=columns,
                      title=self.title, title_fontsize="small", frameon=False,
                      borderaxespad=0)  # fmt: skip

    def _distinct_colours(self) -> list:
        seen = {}
        for value, colour in zip(self.values, self.colours):
            seen.setdefault(json.dumps(value), colour)
        return [seen[json.dumps(v)] for v in self.distinct]

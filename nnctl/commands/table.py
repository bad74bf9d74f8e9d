"""Aligned text tables, as ``nnctl summary``, ``data list``, ``time``, ``gradcheck`` and
``runs`` print them."""

from __future__ import annotations

from collections.abc import Collection, Sequence


def format_table(rows: Sequence[Sequence[str]], right: Collection[int] = frozenset()) -> str:
    """Rows of strings (the first is usually the header) as columns two spaces apart, each
    as wide as its widest cell; columns whose index is in ``right`` are right-aligned.
    Trailing spaces are dropped."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [cell.rjust(width) if i in right else cell.ljust(width)
                 for i, (cell, width) in enumerate(zip(row, widths))]  # fmt: skip
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)

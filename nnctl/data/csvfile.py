"""Reader for CSV files: a header row, numeric feature columns and label column(s)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from nnctl.errors import DataError
from nnctl.registry import did_you_mean


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line_number, cells)`` for non-blank lines; line 1 is the header."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            for cells in reader:
                if any(c.strip() for c in cells):
                    yield reader.line_num, [c.strip() for c in cells]
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text CSV file (cannot decode as UTF-8)") from None
    except csv.Error as e:
        raise DataError(f"{path}: malformed CSV ({e})") from None


def read_csv_header(path: str | Path) -> list[str]:
    """Column names from the first row."""
    path = Path(path)
    for _, cells in _rows(path):
        return cells
    raise DataError(f"{path}: empty file; expected a header row")


def label_indices(path: Path, header: list[str], label_column) -> list[int]:
    """Column indices of the label column(s); default the last column."""
    if label_column is None:
        return [len(header) - 1]
    wanted = label_column if isinstance(label_column, list) else [label_column]
    indices = []
    for col in wanted:
        if isinstance(col, int):
            if not -len(header) <= col < len(header):
                raise DataError(f"{path}: label column {col} out of range ({len(header)} columns)")
            indices.append(col % len(header))
        elif col in header:
            indices.append(header.index(col))
        else:
            hint = did_you_mean(col, header)
            raise DataError(f"{path}: no column named '{col}'{hint} (columns: {', '.join(header)})")
    return indices


def read_csv(path: str | Path, label_column=None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read features and raw label strings.

    Returns
    -------
    X : ndarray of shape (N, n_features), float64
    labels : ndarray of shape (N, n_label_columns), str
    feature_names : list of str
    """
    path = Path(path)
    rows, header = _rows_after_header(path)
    lab = label_indices(path, header, label_column)
    feat = [i for i in range(len(header)) if i not in lab]
    features, labels = [], []
    for line, cells in rows:
        if len(cells) != len(header):
            raise DataError(
                f"{path}: line {line} has {len(cells)} cells; the header has {len(header)}"
            )
        features.append(_floats(path, line, header, cells, feat))
        labels.append([cells[i] for i in lab])
    if not features:
        raise DataError(f"{path}: no data rows after the header")
    X = np.array(features, dtype=np.float64).reshape(len(features), len(feat))
    return X, np.array(labels, dtype=str), [header[i] for i in feat]


def _rows_after_header(path: Path) -> tuple[Iterator[tuple[int, list[str]]], list[str]]:
    """The data rows (line number, cells) and the header row; DataError if the file is empty."""
    rows = _rows(path)
    header = next(rows, (0, None))[1]
    if header is None:
        raise DataError(f"{path}: empty file; expected a header row")
    return rows, header


def _floats(path: Path, line: int, header: list[str], cells: list[str], cols: list[int]):
    try:
        return [float(cells[i]) for i in cols]
    except ValueError:
        for i in cols:
            try:
                float(cells[i])
            except ValueError:
                raise DataError(
                    f"{path}: line {line}, column {i + 1} ('{header[i]}'): "
                    f"not a number: {cells[i]!r}"
                ) from None
        raise


def read_csv_labels(path: str | Path, label_column=None) -> tuple[np.ndarray, int]:
    """Only the label strings (N, n_label_columns) and the number of feature columns."""
    path = Path(path)
    rows, header = _rows_after_header(path)
    lab = label_indices(path, header, label_column)
    labels = [[cells[i] for i in lab] for _, cells in rows if len(cells) == len(header)]
    if not labels:
        raise DataError(f"{path}: no data rows after the header")
    return np.array(labels, dtype=str), len(header) - len(lab)

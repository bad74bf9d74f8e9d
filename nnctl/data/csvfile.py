"""Reader for CSV files: a header row, numeric feature columns and label column(s); for
prediction input, numeric feature columns only, under an optional header row.

Blank lines (every cell empty) are skipped, cells are stripped, and every error names the
file's line and column.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from nnctl.core.checks import cut, show
from nnctl.data.files import require_file
from nnctl.errors import DataError
from nnctl.registry import did_you_mean

Rows = Iterator[tuple[int, list[str]]]  # (line number, stripped cells) of non-blank lines


def _rows(path: Path) -> Rows:
    """Yield ``(line_number, cells)`` for non-blank lines; line 1 is the header."""
    require_file(path)
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
    except OSError as e:
        raise DataError(f"{path}: cannot read CSV ({e.strerror or e})") from None


def is_number(text: str) -> bool:
    """Whether ``float(text)`` succeeds."""
    try:
        float(text)
    except ValueError:
        return False
    return True


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
            raise DataError(
                f"{path}: no column named '{col}'{hint} (columns: {cut(', '.join(header))})"
            )
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
    rows, header, lab = _labelled_rows(path, label_column)
    feat = [i for i in range(len(header)) if i not in lab]
    X, labels = _table(path, rows, len(header), header, feat, lab)
    if not len(X):
        raise DataError(f"{path}: no data rows after the header")
    return X, labels, [header[i] for i in feat]


def csv_width(path: str | Path) -> int:
    """The number of cells in the first non-blank row (the header, when there is one)."""
    first = next(_rows(Path(path)), None)
    return 0 if first is None else len(first[1])


def read_csv_features(path: str | Path) -> np.ndarray:
    """Every column is a feature; a first row that is not all numbers is a header.

    Returns
    -------
    X : ndarray of shape (N, n_columns), float64; N is 0 when there are no data rows.
    """
    path = Path(path)
    rows = _rows(path)
    first = next(rows, None)
    if first is None:
        return np.empty((0, 0))
    header = None if all(is_number(c) for c in first[1]) else first[1]
    if header is None:
        rows = itertools.chain([first], rows)
    width = len(first[1])
    return _table(path, rows, width, header, range(width), [])[0]


def _table(
    path: Path,
    rows: Iterable[tuple[int, list[str]]],
    width: int,
    header: list[str] | None,
    feat: Sequence[int],
    lab: Sequence[int],
) -> tuple[np.ndarray, np.ndarray]:
    """Float features (N, len(feat)) and label cells (N, len(lab)) of data rows of ``width``
    cells (the header's width, or the first row's when there is no header)."""
    features, labels = [], []
    for line, cells in rows:
        _check_width(path, line, cells, width, header is not None)
        features.append(_floats(path, line, header, cells, feat))
        labels.append([cells[i] for i in lab])
    X = np.array(features, dtype=np.float64).reshape(len(features), len(feat))
    return X, np.array(labels, dtype=str).reshape(len(labels), len(lab))


def _check_width(path: Path, line: int, cells: list[str], width: int, header: bool) -> None:
    if len(cells) != width:
        first = "the header" if header else "the first row"
        raise DataError(f"{path}: line {line} has {len(cells)} cells; {first} has {width}")


def _labelled_rows(path: Path, label_column) -> tuple[Rows, list[str], list[int]]:
    """The data rows (line number, cells), the header row and the label column indices;
    DataError if the file is empty or has no feature column."""
    rows = _rows(path)
    header = next(rows, (0, None))[1]
    if header is None:
        raise DataError(f"{path}: empty file; expected a header row")
    indices = label_indices(path, header, label_column)
    if len(set(indices)) == len(header):
        names = ", ".join(repr(header[i]) for i in indices)
        raise DataError(f"{path}: no feature columns, only the label column(s) {cut(names)}")
    return rows, header, indices


def _floats(path: Path, line: int, header: list[str] | None, cells: list[str], cols):
    try:
        return [float(cells[i]) for i in cols]
    except ValueError:
        i = next(i for i in cols if not is_number(cells[i]))
        name = f" ('{header[i]}')" if header is not None else ""
        raise DataError(
            f"{path}: line {line}, column {i + 1}{name}: not a number: {show(cells[i])}"
        ) from None


def read_csv_labels(path: str | Path, label_column=None) -> tuple[np.ndarray, int]:
    """Only the label strings (N, n_label_columns) and the number of feature columns."""
    path = Path(path)
    rows, header, lab = _labelled_rows(path, label_column)
    labels = []
    for line, cells in rows:
        _check_width(path, line, cells, len(header), True)
        labels.append([cells[i] for i in lab])
    if not labels:
        raise DataError(f"{path}: no data rows after the header")
    return np.array(labels, dtype=str), len(header) - len(lab)

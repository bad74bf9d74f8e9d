"""Evaluation metrics for classification and regression."""

from __future__ import annotations

import numpy as np


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes, n_classes) counts; rows are true classes, columns predictions."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (labels.astype(np.int64), predicted.astype(np.int64)), 1)
    return matrix


def classification_report(matrix: np.ndarray) -> dict:
    """Accuracy, per-class precision and recall (0 where undefined) from a confusion matrix."""
    correct = np.diag(matrix).astype(np.float64)
    predicted, actual = matrix.sum(axis=0), matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, correct / predicted, 0.0)
        recall = np.where(actual > 0, correct / actual, 0.0)
    total = matrix.sum()
    return {
        "accuracy": float(correct.sum() / total) if total else 0.0,
        "precision": [round(float(p), 6) for p in precision],
        "recall": [round(float(r), 6) for r in recall],
        "confusion_matrix": matrix.tolist(),
    }


def _argmax_hits(outputs: np.ndarray, y: np.ndarray) -> int:
    return int(np.sum(outputs.reshape(len(outputs), -1).argmax(axis=1) == y))


def _label_hits(outputs: np.ndarray, y: np.ndarray) -> float:
    right = (outputs.reshape(y.shape) > 0.5) == (y > 0.5)  # (N, labels)
    return float(right.mean(axis=1).sum())


#: Per task with an accuracy: how many examples a batch got right. Classification: the
#: argmax is the label. Multi-label: each example counts the fraction of its labels
#: predicted right (output > 0.5), so hits / examples is the per-label accuracy (Keras'
#: ``binary_accuracy``), not the stricter exact match.
HITS = {"classification": _argmax_hits, "multilabel": _label_hits}


def multilabel_report(targets: np.ndarray, outputs: np.ndarray) -> dict:
    """Per-label accuracy and exact match (every label of an example right)."""
    right = (outputs.reshape(targets.shape) > 0.5) == (targets > 0.5)
    return {"accuracy": float(right.mean()), "exact_match": float(right.all(axis=1).mean())}


def regression_report(targets: np.ndarray, outputs: np.ndarray) -> dict:
    diff = outputs.astype(np.float64) - targets.astype(np.float64)
    return {"mse": float(np.mean(diff * diff)), "mae": float(np.mean(np.abs(diff)))}

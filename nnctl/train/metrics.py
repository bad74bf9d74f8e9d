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


def regression_report(targets: np.ndarray, outputs: np.ndarray) -> dict:
    diff = outputs.astype(np.float64) - targets.astype(np.float64)
    return {"mse": float(np.mean(diff * diff)), "mae": float(np.mean(np.abs(diff)))}

"""Evaluation of a network on a data split, shared by training and ``nnctl eval`` so that
both report exactly the same numbers."""

from __future__ import annotations

import numpy as np

from nnctl.data import one_hot
from nnctl.train.metrics import (
    classification_report,
    confusion_matrix,
    multilabel_report,
    regression_report,
)

#: Examples per evaluation batch. Every layer's output for a whole batch is alive at once
#: (a conv's im2col columns the largest), so this sets evaluation's peak memory: on
#: ``configs/mnist-cnn.yaml`` batches of 500 took a run's peak to 704 MB, 256 to 514 MB,
#: 128 to 407 MB (training alone: 333 MB), and the smaller batches ran no slower.
EVAL_BATCH = 128


def targets_for(y: np.ndarray, spec, dtype) -> np.ndarray:
    """Network targets: one-hot (batch, n_classes) for classification, else y itself
    ((batch, labels) of 0/1 for multi-label, (batch, k) for regression)."""
    if spec.task == "classification":
        return one_hot(y, spec.n_classes, dtype=dtype)
    return y.astype(dtype, copy=False).reshape(len(y), -1)


def predict_outputs(network, X: np.ndarray, batch_size: int = EVAL_BATCH) -> np.ndarray:
    """Network outputs for every row of X in evaluation mode, in batches."""
    was_training = network.training
    network.eval()
    try:
        return np.concatenate(
            [network.forward(X[i : i + batch_size]) for i in range(0, len(X), batch_size)]
        )
    finally:
        network._set_training(was_training)


def evaluate(network, split, spec, detailed: bool = False, batch_size: int = EVAL_BATCH) -> dict:
    """Loss (and accuracy, or MSE/MAE) of ``network`` on ``split``; never changes the model.

    With ``detailed`` the classification result also has per-class precision/recall and the
    confusion matrix.
    """
    total, outputs = 0.0, []
    for start in range(0, len(split.X), batch_size):
        X = split.X[start : start + batch_size]
        Y = targets_for(split.y[start : start + batch_size], spec, network.dtype)
        out, loss = network.predict(X, Y)
        total += loss * len(X)
        outputs.append(out)
    out = np.concatenate(outputs)
    result = {"loss": total / len(split.X), "samples": len(split.X)}
    if spec.task == "classification":
        predicted = out.reshape(len(out), -1).argmax(axis=1)
        if detailed:
            result.update(
                classification_report(confusion_matrix(split.y, predicted, spec.n_classes))
            )
        else:
            result["accuracy"] = float(np.mean(predicted == split.y))
    elif spec.task == "multilabel":
        result.update(multilabel_report(split.y, out))
    else:
        result.update(regression_report(split.y.reshape(len(out), -1), out.reshape(len(out), -1)))
    return result

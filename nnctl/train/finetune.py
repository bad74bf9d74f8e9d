"""Fine-tuning: start a new run from another run's weights (``model.init_from``).

Weights are matched by position and shape: the array under ``layers.{i}.{name}`` (weights,
biases, batch-norm running statistics) is copied when the source checkpoint has an array of
the same key and shape. Everything else keeps its fresh initialization and is listed, so a
new last layer for a different number of classes simply starts from scratch. A frozen layer
(``model.freeze``) must be copied whole: a frozen layer left at its random initialization
would never learn, so a mismatch there is an error naming both shapes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from nnctl import layout
from nnctl.errors import CheckpointError
from nnctl.train.checkpoint import load_checkpoint, split_prefix


@dataclass
class InitReport:
    """What ``init_from`` did: the checkpoint read, the keys copied and those kept fresh
    (with the source's shape, or None when the source has no such key)."""

    checkpoint: Path
    copied: list[str] = field(default_factory=list)
    fresh: list[tuple[str, tuple | None]] = field(default_factory=list)

    def describe(self) -> str:
        """One line for the progress stream."""
        line = f"initialized from {self.checkpoint}: {len(self.copied)} arrays copied"
        if self.fresh:
            kept = ", ".join(key for key, _ in self.fresh)
            line += f"; kept fresh: {kept}"
        return line


def init_from(network, source) -> InitReport:
    """Copy the matching arrays of ``source`` (a run directory or checkpoint) into
    ``network``; CheckpointError when a frozen layer does not match."""
    checkpoint = layout.model_checkpoint(Path(source))
    arrays, _ = load_checkpoint(checkpoint)
    saved = split_prefix(arrays, "model")
    report = InitReport(checkpoint)
    frozen = network.frozen_prefixes()
    for key, array in network.state_arrays():
        value = saved.get(key)
        if value is not None and value.shape == array.shape:
            array[...] = value
            report.copied.append(key)
            continue
        found = None if value is None else tuple(value.shape)
        if key.startswith(frozen):
            theirs = f"shape {found}" if found else "no such array"
            raise CheckpointError(
                f"{checkpoint}: {key} is frozen (model.freeze) but does not match: shape "
                f"{tuple(array.shape)} in this model, {theirs} in the checkpoint"
            )
        report.fresh.append((key, found))
    if not report.copied:
        raise CheckpointError(
            f"{checkpoint}: no weights match this model by position and shape "
            "(model.init_from needs a run of a network with the same leading layers)"
        )
    return report

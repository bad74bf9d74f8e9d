"""The memory that training a config needs at least, from its layer table alone, and the
refusal of what cannot fit on this machine: ``nnctl check`` says so, and no command starts
allocating terabytes to die with a MemoryError.

The estimate is a lower bound: the data set as float32, every parameter twice (the
weights and their gradients) and, for one batch, the input and every layer's output twice
(kept for the backward pass, and its gradient). Optimizer moments, convolution buffers and
the raw data come on top. The limit is the machine's physical memory, lowered to the
process's address-space limit (``ulimit -v``) where there is one.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from nnctl.config.model import format_shape
from nnctl.config.summary import human, summarize
from nnctl.errors import ConfigError

DATA_ITEMSIZE = 4  # features are float32 once preprocessed


@dataclass(frozen=True)
class Need:
    """A part of the estimate: the key path to blame for it, what it is, and its bytes
    whatever the batch size (``fixed``) and for each example of a batch (``per_example``)."""

    path: str
    what: str
    fixed: int
    per_example: int = 0


def machine_memory() -> int | None:
    """Bytes of physical memory (or the address-space limit, if lower); None if unknown."""
    limits = []
    try:
        limits.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        pass
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY and soft > 0:
            limits.append(soft)
    except (ImportError, ValueError, OSError):
        pass
    return min(limits) if limits else None


def training_needs(model: dict, spec, limit: int | None = None) -> list[Need]:
    """The parts of the estimate for training ``model`` on data described by ``spec``: the
    data set, the input batch, then each layer (weights, outputs, their gradients). Only
    the data set when that alone exceeds ``limit``: the layers of such an input may not
    even count their parameters in 64 bits."""
    shape = tuple(spec.input_shape)
    examples = sum(n for n in (spec.n_train, spec.n_validation, spec.n_test) if n)
    what = f"the data set ({examples:,} examples of {format_shape(shape)} as float32)"
    data = Need("data", what, examples * math.prod(shape) * DATA_ITEMSIZE)
    if limit is not None and data.fixed > limit:
        return [data]
    itemsize = np.dtype(model["dtype"]).itemsize
    needs = [data, Need("data", "the input batch", 0, math.prod(shape) * itemsize)]
    for row in summarize(model, shape).rows:
        where = f"model.layers[{row.index}]"
        label = f"layer {row.name} inside {where}" if row.depth else where
        what = (
            f"{label} ({row.type}, {row.parameters:,} parameters, output "
            f"{format_shape(row.output_shape)})"
        )
        # a block's parameters are its children's: count them once, at the top level
        weights = 2 * row.parameters * itemsize if row.depth == 0 else 0
        per_example = 2 * math.prod(row.output_shape) * itemsize  # outputs and gradients
        needs.append(Need(where, what, weights, per_example))
    return needs


def memory_error(model: dict, spec, batch_size: int, batch_path: str) -> ConfigError | None:
    """None when training may fit in this machine's memory, else a ConfigError blaming the
    batch size when a batch of one would fit, or the largest part (a layer, the data)."""
    limit = machine_memory()
    if limit is None:
        return None
    needs = training_needs(model, spec, limit)
    fixed = sum(need.fixed for need in needs)
    per_example = sum(need.per_example for need in needs)
    total = fixed + batch_size * per_example
    if total <= limit:
        return None
    machine = f"more than this machine's {human(limit, 'B')}"
    if fixed + per_example <= limit:
        fitting = (limit - fixed) // per_example
        return ConfigError(
            batch_path,
            f"training with a batch of {batch_size:,} needs at least {human(total, 'B')} of "
            f"memory, {machine}; at most about {fitting:,} examples per batch fit",
        )
    largest = max(needs, key=lambda need: need.fixed + batch_size * need.per_example)
    size = human(largest.fixed + batch_size * largest.per_example, "B")
    return ConfigError(
        largest.path,
        f"training needs at least {human(total, 'B')} of memory, {machine}; "
        f"{largest.what} alone needs {size}",
    )


def train_batch(data: dict, spec) -> int:
    """The largest batch training draws: ``batch_size``, or the whole training part when
    that is smaller."""
    batch = data["batch_size"]
    return min(batch, spec.n_train) if spec.n_train else batch


def require_memory(config, batch_size: int, batch_path: str) -> None:
    """Raise the ConfigError of :func:`memory_error` for ``config`` at ``batch_size``."""
    error = memory_error(config.data["model"], config.spec, batch_size, batch_path)
    if error is not None:
        raise ConfigError(error.path, error.message, file=str(config.path or config.name))

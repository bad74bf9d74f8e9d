"""``nnctl time``: milliseconds per layer and per training step on a synthetic batch.

Layers are timed while the network runs them one by one (``fuse`` off, the batch
unsplit), each layer's ``forward`` and ``backward`` wrapped in a stopwatch for the length
of the measurement, so the loss head (softmax with cross-entropy included) is the
network's own. The layers inside blocks are timed too, each with its own stopwatch (a
block's time includes theirs). The step times run the network as training does, with its
fused stages and batch split.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np

from nnctl.core import NeuralNetwork
from nnctl.core.chain import named_layers
from nnctl.core.synthetic import synthetic_batch

# method → the stopwatch total it adds to
TIMED_METHODS = {
    "forward": "forward_ms",
    "backward": "backward_ms",
    "backward_linear": "backward_ms",
}


@dataclass
class LayerTiming:
    """One layer's median times; ``name`` is its dotted position (``3``, ``3.0``,
    ``3.shortcut``) and ``depth`` 0 for the network's layers, 1 inside a block, ..."""

    index: int
    layer: str
    output_shape: tuple[int, ...]
    forward_ms: float
    backward_ms: float
    name: str = ""
    depth: int = 0


def network_layers(network: NeuralNetwork) -> list[tuple[int, str, int, object]]:
    """``(index, dotted name, depth, layer)`` of every layer, blocks' children after them."""
    return [
        (index, name, depth, layer)
        for index, top in enumerate(network.layers)
        for name, layer, depth in named_layers(top, str(index))
    ]


@dataclass
class TimingReport:
    """Median milliseconds per layer (run one by one) and per whole training step (run as
    the network trains, with its fused stages)."""

    batch_size: int
    iterations: int
    layers: list[LayerTiming]
    forward_ms: float
    backward_ms: float
    step_ms: float
    samples_per_s: float

    def to_dict(self) -> dict:
        return asdict(self)


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


class Stopwatch:
    """The milliseconds one layer spends in forward and in backward. A timed method called
    from another (``backward`` calls ``backward_linear``) is not counted twice."""

    def __init__(self) -> None:
        self.forward_ms = self.backward_ms = 0.0
        self._running = False

    def reset(self) -> None:
        self.forward_ms = self.backward_ms = 0.0

    def wrap(self, method, total: str):
        def timed(*args):
            if self._running:
                return method(*args)
            self._running, start = True, time.perf_counter()
            try:
                return method(*args)
            finally:
                self._running = False
                setattr(self, total, getattr(self, total) + _ms(start))

        return timed


@contextmanager
def layer_by_layer(network: NeuralNetwork) -> Iterator[list[Stopwatch]]:
    """Inside the block the network runs its layers one by one, each timed by its
    stopwatch (yielded in ``network_layers`` order); afterwards the layers, fusion and the
    batch split are as before."""
    layers = [layer for *_, layer in network_layers(network)]
    watches = [Stopwatch() for _ in layers]
    fuse, threads = network.fuse, network.threads
    network.fuse, network.threads = False, 1  # the network's own layers, one batch
    for layer, watch in zip(layers, watches):
        for method, total in TIMED_METHODS.items():
            if hasattr(layer, method):  # an instance attribute shadows the class's method
                setattr(layer, method, watch.wrap(getattr(layer, method), total))
    try:
        yield watches
    finally:
        network.fuse, network.threads = fuse, threads
        for layer in layers:
            for method in TIMED_METHODS:
                vars(layer).pop(method, None)


def _layer_pass(network: NeuralNetwork, watches: list[Stopwatch], X, Y):
    """One training pass of the network; (forward ms, backward ms) of each layer."""
    for watch in watches:
        watch.reset()
    network.backward(Y, network.forward(X))
    return [w.forward_ms for w in watches], [w.backward_ms for w in watches]


def _step(network: NeuralNetwork, X, Y) -> tuple[float, float]:
    start = time.perf_counter()
    out = network.forward(X)
    forward = _ms(start)
    start = time.perf_counter()
    network.backward(Y, out)
    return forward, _ms(start)


def time_network(
    network: NeuralNetwork, spec, batch_size: int, iterations: int, warmup: int = 2, seed: int = 0
) -> TimingReport:
    """Time ``iterations`` training passes (after ``warmup``) on a synthetic batch of the
    shapes of ``spec`` (``input_shape``, ``task``)."""
    network.train()
    rng = np.random.default_rng(seed)
    X, Y = synthetic_batch(network, spec.input_shape, spec.task, batch_size, rng)
    with layer_by_layer(network) as watches:
        for _ in range(warmup):
            _layer_pass(network, watches, X, Y)
        layer_runs = [_layer_pass(network, watches, X, Y) for _ in range(iterations)]
    for _ in range(warmup):
        _step(network, X, Y)
    step_runs = [_step(network, X, Y) for _ in range(iterations)]
    return _report(network, spec, batch_size, iterations, layer_runs, step_runs)


def _report(network, spec, batch_size, iterations, layer_runs, step_runs) -> TimingReport:
    """Medians over the runs."""
    layers = [
        LayerTiming(
            index=index,
            layer=layer.type_name,
            output_shape=tuple(layer.output_shape(layer.input_shape)),
            forward_ms=statistics.median(run[0][k] for run in layer_runs),
            backward_ms=statistics.median(run[1][k] for run in layer_runs),
            name=name,
            depth=depth,
        )
        for k, (index, name, depth, layer) in enumerate(network_layers(network))
    ]
    step_ms = statistics.median(f + b for f, b in step_runs)
    return TimingReport(
        batch_size=batch_size,
        iterations=iterations,
        layers=layers,
        forward_ms=statistics.median(f for f, _ in step_runs),
        backward_ms=statistics.median(b for _, b in step_runs),
        step_ms=step_ms,
        samples_per_s=batch_size / (step_ms / 1000.0) if step_ms > 0 else float("inf"),
    )

"""The batch split: a network's batch cut into parts that run on threads at the same time.

NumPy releases the GIL in its matrix products, ufuncs and copies, so two threads, each
running half of the batch with BLAS limited to one thread, keep both cores busy through
the whole step, element-wise work and copies included, where one BLAS call on two threads
leaves everything between the matrix products on one core.

``BatchSplit`` keeps one ``Replica`` of the network's layers per part: the same parameter
and buffer arrays (only read during a pass), its own caches, gradients and fused-stage
workspaces. ``forward`` runs part ``k`` of the batch through replica ``k``, in training
and in evaluation; ``backward`` takes the gradient of the loss of the whole batch (the
network computes it from the whole output, so the loss stays the mean over the whole
batch, odd batches and class weights included), runs part ``k`` of it back through
replica ``k`` and gives each layer the sum of the parts' parameter gradients.

Equal to the unsplit pass up to float rounding, because each example goes through the same
operations and only the sums over the batch are split: a parameter gradient is
``g_0 + g_1`` (fixed parts, fixed order: deterministic run to run), and BLAS may round an
example's products differently in a smaller matrix. Within a split the fused stages stay
bit-identical to the plain layers (each part runs both the same way). Dropout draws its
uniforms for the whole batch from the network's generator, once per dropout call and in
the unsplit order (``StepDraws``), and each part takes its rows: the same masks, and the
generator ends in the same state, so a resumed run continues exactly.

Not split: batch normalization in training (``Layer.mixes_batch``), whose statistics are
over the whole batch (exchanging partial sums between the parts would need a barrier
inside the layer; such a network runs unsplit instead), and batches with fewer than
``MIN_PART_VALUES`` layer outputs per part, mostly matrix products and Python, which the
split would not speed up (the MLP of the step benchmark).
"""

from __future__ import annotations

import contextvars
import copy
import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from functools import cache
from itertools import pairwise

import numpy as np
from threadpoolctl import ThreadpoolController

from nnctl.core.checks import ArgumentError
from nnctl.core.fused import plan

#: Overrides the default number of parts (``default_threads``); 1 turns the split off.
THREADS_VARIABLE = "NNCTL_THREADS"
#: The least layer output values per part for the split to pay for its thread (a part of
#: fewer values spends its time in matrix products and Python, which it would not speed up).
MIN_PART_VALUES = 65536


@cache
def _blas():
    """threadpoolctl's controller of the BLAS libraries NumPy loaded (made once)."""
    return ThreadpoolController().select(user_api="blas")


def default_threads() -> int:
    """``$NNCTL_THREADS`` if set, else 2 when the machine has two cores and BLAS may use
    them (an ``OPENBLAS_NUM_THREADS=1`` run, such as a sweep's job, stays on one), else 1."""
    value = os.environ.get(THREADS_VARIABLE)
    if value is not None:
        if not value.strip().isdigit() or int(value) < 1:
            raise ArgumentError(THREADS_VARIABLE, f"must be an integer >= 1; got {value!r}")
        return int(value)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    blas = [lib.num_threads for lib in _blas().lib_controllers]
    return max(1, min(2, cores or 1, max(blas, default=2)))


def walk(layers):
    """Every layer of ``layers`` and, depth first, every child of a block."""
    for layer in layers:
        yield layer
        yield from walk(child for _, child in layer.named_children())


def part_rows(batch: int, parts: int) -> list[slice]:
    """``parts`` consecutive row ranges covering ``batch``, sizes differing by at most 1."""
    bounds = [batch * k // parts for k in range(parts + 1)]
    return [slice(a, b) for a, b in pairwise(bounds)]


def run_forward(stages, X: np.ndarray) -> np.ndarray:
    """X through every stage (a layer or a fused unit) in order."""
    for stage in stages:
        X = stage.forward(X)
    return X


def run_backward(stages, dLdY: np.ndarray, linear_last: bool) -> None:
    """dLdY back through the stages; with ``linear_last`` it is the last layer's
    pre-activation gradient (``backward_linear``), the fused activation-loss gradient."""
    if linear_last:
        dLdY = stages[-1].backward_linear(dLdY)
        stages = stages[:-1]
    for stage in reversed(stages):
        dLdY = stage.backward(dLdY)


class StepDraws:
    """The uniforms one forward pass draws, each made once for the whole batch."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng, self.arrays, self.lock = rng, [], threading.Lock()

    def get(self, call: int, shape, dtype) -> np.ndarray:
        # Every part makes the same calls in the same order, so call n is drawn by the first
        # part to reach it, after call n - 1: the unsplit order.
        with self.lock:
            if call == len(self.arrays):
                self.arrays.append(self.rng.random(shape, dtype=dtype))
            return self.arrays[call]


class PartGenerator:
    """Stands for the network's generator inside one replica: ``random(size)`` gives this
    part's rows of the whole batch's draw (``size[0]`` is the part's batch)."""

    def __init__(self) -> None:
        self.draws: StepDraws | None = None
        self.rows, self.batch, self.calls = slice(0, 0), 0, 0

    def start(self, draws: StepDraws | None, rows: slice, batch: int) -> None:
        self.draws, self.rows, self.batch, self.calls = draws, rows, batch, 0

    def random(self, size, dtype=np.float64) -> np.ndarray:
        array = self.draws.get(self.calls, (self.batch, *size[1:]), dtype)
        self.calls += 1
        return array[self.rows]


class Replica:
    """One part's copy of the network's layers and execution stages."""

    def __init__(self, network) -> None:
        self.generator = PartGenerator()
        memo = {id(array): array for _, array in network.state_arrays()}  # shared
        memo[id(network.rng)] = self.generator
        for layer in walk(network.layers):
            memo[id(layer.cache)] = type(layer.cache)()  # caches start empty
        self.layers = copy.deepcopy(network.layers, memo)
        self.stages = plan(self.layers) if network.fuse else list(self.layers)

    def sync(self, network) -> None:
        """Each layer's mode and input-gradient flag as in the network."""
        for own, theirs in zip(walk(self.layers), walk(network.layers)):
            own.training, own.needs_input_grad = theirs.training, theirs.needs_input_grad


class BatchSplit:
    """Runs a network's passes in ``parts`` parts, one per thread (see the module)."""

    def __init__(self, parts: int) -> None:
        self.parts = parts
        self.key, self.replicas, self.rows = None, [], []

    @staticmethod
    def replica_key(network) -> tuple:
        """What the replicas copy: the layers, the parameter and buffer arrays, fusion."""
        arrays = tuple(id(array) for _, array in network.state_arrays())
        return (network.fuse, tuple(map(id, network.layers)), arrays)

    def forward(self, network, X: np.ndarray) -> np.ndarray:
        """X : (batch, ...) → the network's output (batch, ...), the parts concatenated."""
        key = self.replica_key(network)
        if key != self.key:
            self.replicas = [Replica(network) for _ in range(self.parts)]
            self.key = key
        self.rows = part_rows(len(X), self.parts)
        draws = StepDraws(network.rng) if network.training else None
        for replica, rows in zip(self.replicas, self.rows):
            replica.sync(network)
            replica.generator.start(draws, rows, len(X))
        outs = self._run(lambda r, rows: run_forward(r.stages, X[rows]))
        return np.concatenate(outs)

    def last_cache(self, name: str) -> np.ndarray:
        """The last layer's cache entry ``name`` for the whole batch (the logits ``Z``)."""
        return np.concatenate([r.layers[-1].cache[name] for r in self.replicas])

    def backward(self, network, dLdY: np.ndarray, linear_last: bool) -> None:
        """Part ``k`` of the output gradient back through replica ``k``; every layer of the
        network gets the parts' summed parameter gradients."""
        self._run(lambda r, rows: run_backward(r.stages, dLdY[rows], linear_last))
        parts = [walk(r.layers) for r in self.replicas]
        for layer, *copies in zip(walk(network.layers), *parts):
            if layer.named_children():
                continue  # a block's gradients are its children's
            for name in layer.parameters:
                total = copies[0].gradients[name] + copies[1].gradients[name]
                for other in copies[2:]:
                    total += other.gradients[name]
                layer.gradients[name] = total

    def _run(self, task) -> list:
        """``task(replica, rows)`` for every part, part 0 on this thread, the others on the
        pool's, BLAS on one thread meanwhile; the results in part order."""
        with _blas().limit(limits=1):
            futures = [
                _pool(self.parts - 1).submit(contextvars.copy_context().run, task, r, rows)
                for r, rows in zip(self.replicas[1:], self.rows[1:])
            ]  # the context carries NumPy's error state (np.errstate) to the worker
            try:
                first = task(self.replicas[0], self.rows[0])
            finally:
                wait(futures)  # no worker outlives the BLAS limit, even after an error
        return [first, *(future.result() for future in futures)]


@cache
def _pool(workers: int) -> ThreadPoolExecutor:
    """The process's worker threads for splits into ``workers + 1`` parts."""
    return ThreadPoolExecutor(workers, thread_name_prefix="nnctl-split")

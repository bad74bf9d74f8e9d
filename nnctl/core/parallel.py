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

Batch statistics (batch normalization in training) are over the whole batch: a layer with
``sums_over_batch`` gets a ``batch_total`` from the split, a function that every part calls
with its partial sums and that returns the sum over all parts, in part order, once every
part has handed in its own (``PartSums``, a barrier). The statistics are then those of the
whole batch, to rounding, and the same in every part; part 0 alone updates running
statistics. Not split: batches with fewer than ``MIN_PART_VALUES`` layer outputs per part,
mostly matrix products and Python, which the split would not speed up (the MLP of the
step benchmark).
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


class PartSums:
    """The sum over the parts of a split batch of one array per part (a layer's partial
    sums over its rows), in part order: the same result, bit for bit, in every part."""

    def __init__(self, parts: int) -> None:
        self.slots: list[np.ndarray | None] = [None] * parts
        self.barrier = threading.Barrier(parts)

    def total(self, part: int, array: np.ndarray) -> np.ndarray:
        """Wait for every part's ``array``; return their sum. ``BrokenBarrierError`` when
        another part failed (``abort``)."""
        self.slots[part] = array
        self.barrier.wait()
        total = self.slots[0].copy()
        for other in self.slots[1:]:
            total += other
        self.barrier.wait()  # no part hands in its next array before all have read these
        return total


class PartTotal:
    """One part's ``batch_total``: its partial sums in, the whole batch's out."""

    def __init__(self, sums: PartSums, part: int) -> None:
        self.sums, self.part = sums, part
        self.leader = part == 0  # the part that updates running statistics

    def __call__(self, array: np.ndarray) -> np.ndarray:
        return self.sums.total(self.part, array)


class Replica:
    """One part's copy of the network's layers and execution stages; ``sums`` holds one
    ``PartSums`` per layer with ``sums_over_batch``, shared by the replicas."""

    def __init__(self, network, part: int, sums: list[PartSums]) -> None:
        self.generator = PartGenerator()
        memo = {id(array): array for _, array in network.state_arrays()}  # shared
        memo[id(network.rng)] = self.generator
        for layer in walk(network.layers):
            memo[id(layer.cache)] = type(layer.cache)()  # caches start empty
        self.layers = copy.deepcopy(network.layers, memo)
        summing = (layer for layer in walk(self.layers) if layer.sums_over_batch)
        for layer, shared in zip(summing, sums, strict=True):
            layer.batch_total = PartTotal(shared, part)
        self.stages = plan(self.layers) if network.fuse else list(self.layers)

    def sync(self, network) -> None:
        """Each layer's mode and input-gradient flag as in the network."""
        for own, theirs in zip(walk(self.layers), walk(network.layers)):
            own.training, own.needs_input_grad = theirs.training, theirs.needs_input_grad


class BatchSplit:
    """Runs a network's passes in ``parts`` parts, one per thread (see the module)."""

    def __init__(self, parts: int) -> None:
        self.parts = parts
        self.key, self.replicas, self.rows, self.sums = None, [], [], []

    @staticmethod
    def replica_key(network) -> tuple:
        """What the replicas copy: the layers, the parameter and buffer arrays, fusion."""
        arrays = tuple(id(array) for _, array in network.state_arrays())
        return (network.fuse, tuple(map(id, network.layers)), arrays)

    def forward(self, network, X: np.ndarray) -> np.ndarray:
        """X : (batch, ...) → the network's output (batch, ...), the parts concatenated."""
        key = self.replica_key(network)
        if key != self.key:
            summing = sum(layer.sums_over_batch for layer in walk(network.layers))
            self.sums = [PartSums(self.parts) for _ in range(summing)]
            self.replicas = [Replica(network, k, self.sums) for k in range(self.parts)]
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
        pool's, BLAS on one thread meanwhile; the results in part order. A part that fails
        breaks the barriers of ``PartSums``, so no other part waits for it; the caller gets
        the first error that is not such a broken barrier."""

        def guarded(replica, rows):
            try:
                return task(replica, rows)
            except BaseException:
                for sums in self.sums:
                    sums.barrier.abort()
                raise

        with _blas().limit(limits=1):
            futures = [
                _pool(self.parts - 1).submit(contextvars.copy_context().run, guarded, r, rows)
                for r, rows in zip(self.replicas[1:], self.rows[1:])
            ]  # the context carries NumPy's error state (np.errstate) to the worker
            first, broken = None, False
            try:
                first = guarded(self.replicas[0], self.rows[0])
            except threading.BrokenBarrierError:
                broken = True  # another part failed: its error is raised below
            finally:
                wait(futures)  # no worker outlives the BLAS limit, even after an error
                for sums in self.sums:
                    if sums.barrier.broken:
                        sums.barrier.reset()
        errors = [future.exception() for future in futures if future.exception() is not None]
        if errors:
            kind = threading.BrokenBarrierError
            raise next((e for e in errors if not isinstance(e, kind)), errors[0])
        if broken:
            raise threading.BrokenBarrierError  # aborted, yet no part failed
        return [first, *(future.result() for future in futures)]


@cache
def _pool(workers: int) -> ThreadPoolExecutor:
    """The process's worker threads for splits into ``workers + 1`` parts."""
    return ThreadPoolExecutor(workers, thread_name_prefix="nnctl-split")

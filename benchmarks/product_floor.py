"""The matrix products of one nnctl training step, timed alone: the floor under the step's
time that NumPy's BLAS sets, whatever the rest of the step costs.

    python benchmarks/product_floor.py [--cases cnn28 ...] [--repeats 30]

For each case of ``step_benchmark.py`` it builds the nnctl network, asks it how a training
batch is split (``network._splitter``: parts on threads with BLAS on one thread each, or
the whole batch with BLAS on the process's threads), and lists every matrix product one
step makes, with the shapes and operand layouts the layers use:

- ``Conv2D``: forward ``cols (M, K) @ W (K, N)``; weight gradient ``dZ.T (N, M) @ cols``;
  input gradient either ``scatter_input_gradient``'s ``kh·kw`` products ``dZ (M, N) @
  W[i, j].T (N, c_in)`` or ``correlate_input_gradient``'s ``dcols (M_in, kh·kw·N) @ (kh·kw·N,
  c_in)``, as the layer chooses (``correlates_input_gradient``);
- ``FullyConnected``: ``X @ W``, ``X.T @ dZ``, ``dZ @ W.T``;
- ``Projection`` (a residual block's 1x1 shortcut): the same on ``(positions, c_in)``;
- no input gradient where the layer computes none (``needs_input_grad``: the first layer).

Each part's products then run on random float32 operands of those shapes, every part on its
own thread at the same time (as the split runs them), repeated; the figure is the median
wall time of one step's products. The step benchmark reports it next to the whole step, so
a ratio target can be read against what the products alone already cost.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import statistics
import sys
import threading
import time

import harness
import numpy as np

sys.path.insert(0, str(harness.ROOT))


@dataclasses.dataclass(frozen=True)
class Product:
    """``A @ B`` with ``A`` (m, k) and ``B`` (k, n); a transposed operand is the ``.T`` view
    of a C-ordered array, as in the layer; ``count`` equal products (batched matmul)."""

    layer: str
    role: str
    m: int
    k: int
    n: int
    a_transposed: bool = False
    b_transposed: bool = False
    count: int = 1

    @property
    def flops(self) -> int:
        return 2 * self.m * self.k * self.n * self.count


def conv_products(name: str, layer, in_shape, batch: int) -> list[Product]:
    """The products of a ``Conv2D`` on ``batch`` images of ``in_shape`` (rows, cols, c_in)."""
    out_rows, out_cols, n_out = layer.output_shape(in_shape)
    kh, kw = layer.kernel_shape
    c_in = in_shape[2]
    M, K = batch * out_rows * out_cols, kh * kw * c_in
    products = [
        Product(name, "forward", M, K, n_out),
        Product(name, "weight gradient", n_out, M, K, a_transposed=True),
    ]
    if layer.needs_input_grad:
        if layer.correlates_input_gradient():
            m_in = batch * in_shape[0] * in_shape[1]
            products.append(Product(name, "input gradient", m_in, kh * kw * n_out, c_in))
        else:
            products.append(Product(name, "input gradient", M, n_out, c_in, count=kh * kw))
    return products


def dense_products(name: str, rows: int, n_in: int, n_out: int, needs_input: bool):
    """The products of ``(rows, n_in) @ (n_in, n_out)`` and its two gradients."""
    products = [
        Product(name, "forward", rows, n_in, n_out),
        Product(name, "weight gradient", n_in, rows, n_out, a_transposed=True),
    ]
    if needs_input:
        products.append(Product(name, "input gradient", rows, n_out, n_in, b_transposed=True))
    return products


def step_products(network, batch: int) -> list[Product]:
    """Every matrix product of one training step of the built ``network`` on ``batch``
    examples (one part of a split batch, or the whole)."""
    from nnctl.core import Conv2D, FullyConnected
    from nnctl.core.chain import walk_layers
    from nnctl.core.projection import Projection

    products, shape = [], network.input_shape
    for index, top in enumerate(network.layers):
        for name, layer, in_shape, _ in walk_layers(top, shape, str(index)):
            kind = type(layer)
            if kind is Conv2D:
                products += conv_products(name, layer, in_shape, batch)
            elif kind in (FullyConnected, Projection):
                out = layer.output_shape(in_shape)
                rows = batch * math.prod(out[:-1])
                n_in = math.prod(in_shape) if kind is FullyConnected else in_shape[-1]
                products += dense_products(name, rows, n_in, out[-1], layer.needs_input_grad)
        shape = top.output_shape(shape)
    return products


def operands(product: Product, rng: np.random.Generator):
    """Random float32 operands of ``product``'s shapes and layouts."""

    def matrix(rows, cols, transposed):
        if transposed:
            return rng.random((cols, rows), dtype=np.float32).T
        return rng.random((rows, cols), dtype=np.float32)

    a = matrix(product.m, product.k, product.a_transposed)
    b = matrix(product.k, product.n, product.b_transposed)
    if product.count > 1:
        return a[None], np.stack([b] * product.count)
    return a, b


def time_parts(parts: list[list[Product]], repeats: int, warmup: int = 3) -> list[float]:
    """Milliseconds of each repeat: every part's products on a thread of its own at the same
    time (BLAS on one thread each if more than one part), until the last part ends."""
    from nnctl.core.parallel import _blas

    rng = np.random.default_rng(0)
    work = [[operands(p, rng) for p in part] for part in parts]

    def run(pairs):
        for a, b in pairs:
            np.matmul(a, b)

    times = []
    with _blas().limit(limits=1) if len(parts) > 1 else contextlib.nullcontext():
        for r in range(warmup + repeats):
            threads = [threading.Thread(target=run, args=(pairs,)) for pairs in work[1:]]
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            run(work[0])
            for thread in threads:
                thread.join()
            if r >= warmup:
                times.append((time.perf_counter() - started) * 1e3)
    return times


def split_batches(network, batch: int) -> list[int]:
    """The batch sizes of the parts a training step of ``batch`` runs in (one: unsplit)."""
    from nnctl.core.parallel import part_rows

    split = network._splitter(batch)
    if split is None:
        return [batch]
    return [rows.stop - rows.start for rows in part_rows(batch, split.parts)]


def products_of_case(case: str):
    """(network, per-part batch sizes, products per part) of a step benchmark case."""
    import step_benchmark

    network, _ = step_benchmark.nnctl_network(case)
    batch = step_benchmark.case_batch(case)
    sizes = split_batches(network, batch)
    return network, sizes, [step_products(network, size) for size in sizes]


def floor_ms(case: str, repeats: int) -> float:
    """Median milliseconds of one step's products of ``case`` (the step's split)."""
    _, _, parts = products_of_case(case)
    return statistics.median(time_parts(parts, repeats))


def main(argv=None) -> None:
    import step_benchmark

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=step_benchmark.ALL_CASES)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args(argv)
    for case in args.cases:
        _, sizes, parts = products_of_case(case)
        ms = statistics.median(time_parts(parts, args.repeats))
        gflop = sum(p.flops for p in parts[0]) / 1e9
        print(f"{case}: parts of {sizes} examples; part 0 makes {gflop:.3f} GFLOP of products")
        for p in parts[0]:
            times = f" x{p.count}" if p.count > 1 else ""
            print(f"  {p.layer:<10} {p.role:<16} ({p.m}, {p.k}) @ ({p.k}, {p.n}){times}")
        print(f"  all parts' products, at the same time: median {ms:.2f} ms")


if __name__ == "__main__":
    main()

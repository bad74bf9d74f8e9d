"""Peak memory of loading MNIST and iterating one epoch of batches.

Run: ``python benchmarks/data_memory.py [dataset] [batch_size]``. Prints the peak resident
set size (``resource.getrusage``, Linux reports KiB). The budget for MNIST is 700 MB.
"""

from __future__ import annotations

import resource
import sys
import time

import numpy as np

from nnctl.data import iterate_batches, load


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else "mnist"
    batch_size = int(sys.argv[2]) if len(sys.argv) > 2 else 32
    print(f"peak RSS after imports: {peak_mb():.0f} MB")
    start = time.perf_counter()
    splits = load({"dataset": name}, seed=0)
    print(f"loaded {name} in {time.perf_counter() - start:.2f} s: peak RSS {peak_mb():.0f} MB")
    rng = np.random.default_rng(0)
    X, y = splits.train.X, splits.train.y
    checksum = 0.0
    for idx in iterate_batches(len(X), batch_size, rng):
        checksum += float(X[idx].sum()) + float(y[idx].sum())
    print(f"one epoch of {len(X)} examples (batch {batch_size}): peak RSS {peak_mb():.0f} MB")


if __name__ == "__main__":
    main()

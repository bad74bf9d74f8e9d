"""Time one training step (forward, backward, SGD update) as the trainer runs it.

    python benchmarks/step_benchmark.py [--repeats 30] [--warmup 5] [--json out.json] [--gap-ms 0]

Networks (float32, NHWC):
  cnn28  conv 3x3x32 same, relu, maxpool 2 → conv 3x3x64 same, relu, maxpool 2 → flatten
         → fully connected 10, softmax; 28x28x1 inputs, batch 64
  cnn32  the same on 32x32x3 inputs, batch 64
  mlp    784-256-128-10 (relu, relu, softmax), batch 128

Prints the median ms per step, samples/s and the NumPy peak memory of one step (tracemalloc,
measured on a separate, untimed step). When PyTorch is importable the same networks run in
torch with 2 threads, alternating with nnctl repetition by repetition, and the ratio
nnctl / torch is printed (of the medians, and of the minima, which are steadier on a
loaded machine). PyTorch is optional and never a dependency of nnctl.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nnctl.core import Conv2D, Flatten, FullyConnected, NeuralNetwork, Pool2D
from nnctl.core.optimizers import SGD

try:
    import torch
except ImportError:
    torch = None

LR = 0.01
CASES = {
    "cnn28": ("cnn", (28, 28, 1), 64),
    "cnn32": ("cnn", (32, 32, 3), 64),
    "mlp": ("mlp", (784,), 128),
}


# --- nnctl ----------------------------------------------------------------------------
def nnctl_layers(kind: str) -> list:
    if kind == "mlp":
        return [
            FullyConnected(256, "relu"),
            FullyConnected(128, "relu"),
            FullyConnected(10, "softmax"),
        ]
    return [
        Conv2D(32, 3, "relu", pad="same"),
        Pool2D(2, "max", stride=2),
        Conv2D(64, 3, "relu", pad="same"),
        Pool2D(2, "max", stride=2),
        Flatten(),
        FullyConnected(10, "softmax"),
    ]


def make_data(shape, batch: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.random((batch,) + shape, dtype=np.float32)
    labels = rng.integers(0, 10, size=batch)
    Y = np.eye(10, dtype=np.float32)[labels]
    return X, Y, labels


class NnctlStep:
    def __init__(self, kind: str, shape, batch: int) -> None:
        self.net = NeuralNetwork(nnctl_layers(kind), "cross_entropy", seed=0, dtype="float32")
        self.net.build(shape)
        self.opt = SGD(lr=LR)
        self.X, self.Y, _ = make_data(shape, batch)

    def __call__(self) -> None:
        out = self.net.forward(self.X)
        self.net.backward(self.Y, out)
        self.opt.step(self.net.param_grads())


# --- torch ----------------------------------------------------------------------------
def torch_model(kind: str, shape):
    nn = torch.nn
    if kind == "mlp":
        return nn.Sequential(
            nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10)
        )
    rows, cols, ch = shape
    return nn.Sequential(
        nn.Conv2d(ch, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2, 2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2, 2),
        nn.Flatten(),
        nn.Linear(64 * (rows // 4) * (cols // 4), 10),
    )


class TorchStep:
    def __init__(self, kind: str, shape, batch: int) -> None:
        torch.manual_seed(0)
        self.model = torch_model(kind, shape)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR)
        X, _, labels = make_data(shape, batch)
        X = torch.from_numpy(X)
        self.X = X if kind == "mlp" else X.permute(0, 3, 1, 2).contiguous()  # NHWC → NCHW
        self.y = torch.from_numpy(labels)

    def __call__(self) -> None:
        self.opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(self.model(self.X), self.y)
        loss.backward()
        self.opt.step()


# --- measuring ------------------------------------------------------------------------
def timed(step) -> float:
    start = time.perf_counter()
    step()
    return (time.perf_counter() - start) * 1e3


def numpy_peak_mib(step) -> float:
    """Peak traced (NumPy) allocation during one step, in MiB."""
    tracemalloc.start()
    step()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def run_case(name: str, repeats: int, warmup: int, gap_s: float = 0.0) -> dict:
    kind, shape, batch = CASES[name]
    steps = {"nnctl": NnctlStep(kind, shape, batch)}
    if torch is not None:
        steps["torch"] = TorchStep(kind, shape, batch)
    for _ in range(warmup):
        for step in steps.values():
            step()
    times: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(repeats):  # interleaved: one nnctl step, one torch step, ...
        for key, step in steps.items():
            time.sleep(gap_s)  # lets the other library's spinning worker threads park
            times[key].append(timed(step))
    result = {"case": name, "batch": batch, "input": list(shape)}
    for key, ts in times.items():
        ms = statistics.median(ts)
        result[key] = {"median_ms": ms, "min_ms": min(ts), "samples_per_s": batch / ms * 1e3}
    result["nnctl"]["numpy_peak_mib"] = numpy_peak_mib(steps["nnctl"])
    if torch is not None:
        result["ratio"] = result["nnctl"]["median_ms"] / result["torch"]["median_ms"]
        result["min_ratio"] = result["nnctl"]["min_ms"] / result["torch"]["min_ms"]
    return result


def print_table(results: list[dict]) -> None:
    head = f"{'case':<7}{'batch':>6}{'nnctl ms':>10}{'min':>8}{'samples/s':>11}{'peak MiB':>10}"
    if torch is not None:
        head += f"{'torch ms':>10}{'min':>8}{'samples/s':>11}{'ratio':>7}{'min ratio':>10}"
    print(head)
    for r in results:
        n = r["nnctl"]
        line = (
            f"{r['case']:<7}{r['batch']:>6}{n['median_ms']:>10.2f}{n['min_ms']:>8.2f}"
            f"{n['samples_per_s']:>11.0f}{n['numpy_peak_mib']:>10.1f}"
        )
        if torch is not None:
            t = r["torch"]
            line += (
                f"{t['median_ms']:>10.2f}{t['min_ms']:>8.2f}{t['samples_per_s']:>11.0f}"
                f"{r['ratio']:>7.2f}{r['min_ratio']:>10.2f}"
            )
        print(line)


def environment() -> dict:
    env = {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    info = {"numpy": np.__version__, "cpus": os.cpu_count(), **env}
    if torch is not None:
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    return info


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument(
        "--gap-ms",
        type=float,
        default=0.0,
        help="idle time before each timed step (BLAS/OpenMP threads of the other library "
        "spin for a while after a call and slow the step that follows)",
    )
    args = parser.parse_args(argv)
    if torch is not None:
        torch.set_num_threads(2)
    info = environment()
    print(", ".join(f"{k}={v}" for k, v in info.items()))
    results = [run_case(name, args.repeats, args.warmup, args.gap_ms / 1e3) for name in args.cases]
    print_table(results)
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process max RSS: {maxrss:.0f} MiB (nnctl and torch together)")
    if args.json:
        args.json.write_text(json.dumps({"env": info, "results": results}, indent=2))


if __name__ == "__main__":
    main()

"""One training step (forward, backward, SGD update), nnctl against PyTorch, each
framework in its own process.

    python benchmarks/step_benchmark.py [--rounds 3] [--repeats 30] [--warmup 10]
        [--cases cnn28 cnn32 mlp resnet mnist] [--threads 2] [--peak-gflops G]
        [--json FILE] [--markdown]

Networks (float32, random data from a fixed seed, each framework's default initialization):
  cnn28  conv 3x3x32 same, relu, maxpool 2 → conv 3x3x64 same, relu, maxpool 2 → flatten
         → fully connected 10, softmax cross-entropy; 28x28x1 inputs, batch 64
  cnn32  the same on 32x32x3 inputs, batch 64
  mlp    784-256-128-10 (relu, relu, softmax cross-entropy), batch 128
  resnet the network, loss and optimizer of configs/fashion-mnist-resnet.yaml (residual
         blocks with batch norm, global average pooling, cross-entropy with label
         smoothing, SGD Nesterov with weight decay), 28x28x1 inputs, batch 128; PyTorch's
         twin is translated from the config by ``torch_translate.py`` and initialized as
         the config says
  mnist  the network, loss and optimizer of configs/mnist-cnn.yaml (cnn28 with an fc 128
         before the last layer; SGD momentum, clipping), 28x28x1 inputs, batch 64: the step
         of the epoch benchmark's recipe

How the figures are made:
- Every (framework, case) runs in a child process of its own
  (``--child nnctl|torch --case NAME``): the parent never imports nnctl or PyTorch, so
  NumPy's OpenBLAS pool and PyTorch's OpenMP pool never share a process. Both run on
  ``--threads`` threads (OpenBLAS/OpenMP/MKL variables, ``torch.set_num_threads``), with
  ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` removed from the children's environment;
  each child reports the BLAS kernel it ran on (threadpoolctl, if installed).
- A child builds the network, runs ``--warmup`` untimed steps, then times ``--repeats``
  steps one by one (``time.perf_counter``) and reports their median and minimum.
- Each round runs nnctl then PyTorch for every case (alternated); the figure per
  framework and case is the best (lowest) of the ``--rounds`` round medians.
- ratio = nnctl ms / PyTorch ms (below 1: nnctl is faster).
- GFLOP/s = FLOPs per step / step time, with FLOPs counted analytically from the network's
  matrix products only: a layer with ``m`` multiply-adds per sample (a conv:
  out_rows·out_cols·n_out·k_rows·k_cols·c_in; a dense layer: n_in·n_out) costs ``2·m`` for
  the forward, ``2·m`` for the weight gradient and ``2·m`` for the input gradient, except
  for the first layer, whose input gradient neither framework computes:
  FLOPs = batch · 2 · (2·m_first + 3·Σ m_others), i.e. about 3x the forward's. Bias,
  activation, pooling, loss and update are not counted. "% peak" divides by this machine's
  float32 matrix-product peak on the same threads, measured at the start in a child of its
  own with the children's environment (the best rate of ten 1024x1024 and ten 2048x2048
  float32 products; the best, since load only slows a product), or ``--peak-gflops`` to
  give it. The peak depends on the OpenBLAS kernel: on one 2-core machine of this project
  it measured about 460 GFLOP/s with the SkylakeX kernel and 2 threads, where an earlier
  note had 202, so a fixed figure cannot be trusted from machine to machine.
- "products alone" (nnctl): the step's matrix products by themselves, on random operands of
  the same shapes and layouts, each part's on its own thread as the batch split runs them
  (``product_floor.py``), median over ``--repeats``; "products/PyTorch" divides it by
  PyTorch's whole step. It is the part of the ratio that OpenBLAS's speed on these shapes
  sets: the rest of nnctl's step can only add to it.
- Memory: "RSS" is the peak resident set size of the whole child process (``ru_maxrss``:
  interpreter, libraries, data, weights, caches and scratch buffers); "at start" in the JSON
  is the resident size after the imports, before the network is built. For nnctl,
  "traced" is the peak of tracemalloc (NumPy reports its buffers to it) started before
  the network is built and run over two steps, so weights, batch, gradients, optimizer
  state, caches and the scratch buffers allocated by the first step all count; it is
  measured after the timing so it does not slow it. PyTorch's allocations are not traced.

PyTorch is optional (``pip install torch==2.13.0 threadpoolctl``); without it only nnctl
runs. The machine must be otherwise idle for publishable figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import gc
import json
import math
import statistics
import sys
import time
from datetime import date
from pathlib import Path

import harness
import product_floor

sys.path.insert(0, str(harness.ROOT))  # nnctl from this checkout, installed or not

LR = 0.01
SEED = 0
KERNEL = 3
#: name → (input shape, batch, layers); a layer is ("conv", n_out), ("pool",),
#: ("flatten",) or ("dense", n_out). Convs are 3x3 "same" + relu, pools 2x2 max stride 2,
#: dense layers relu except the last (softmax cross-entropy).
CNN = [("conv", 32), ("pool",), ("conv", 64), ("pool",), ("flatten",), ("dense", 10)]
CASES = {
    "cnn28": ((28, 28, 1), 64, CNN),
    "cnn32": ((32, 32, 3), 64, CNN),
    "mlp": ((784,), 128, [("dense", 256), ("dense", 128), ("dense", 10)]),
}
#: name → (config, input shape, batch): a network, loss and optimizer from a shipped config.
CONFIG_CASES = {
    "resnet": ("configs/fashion-mnist-resnet.yaml", (28, 28, 1), 128),
    "mnist": ("configs/mnist-cnn.yaml", (28, 28, 1), 64),
}
ALL_CASES = [*CASES, *CONFIG_CASES]
FRAMEWORKS = ("nnctl", "torch")


# --- the networks, from one description -----------------------------------------------
def layer_shapes(case: str):
    """Yield ``(layer, input shape, output shape, is last)``, shapes per sample, NHWC."""
    shape, _, layers = CASES[case]
    for i, layer in enumerate(layers):
        if layer[0] == "conv":
            out = (*shape[:2], layer[1])
        elif layer[0] == "pool":
            out = (shape[0] // 2, shape[1] // 2, shape[2])
        elif layer[0] == "flatten":
            out = (shape[0] * shape[1] * shape[2],)
        else:
            out = (layer[1],)
        yield layer, shape, out, i == len(layers) - 1
        shape = out


def step_flops(case: str) -> int | None:
    """Matrix-product FLOPs of one training step (see the module docstring); None for a
    config case (its nnctl child counts them: ``config_step_flops``)."""
    if case in CONFIG_CASES:
        return None
    macs = []  # multiply-adds per sample, per layer with weights
    for layer, shape, out, _ in layer_shapes(case):
        if layer[0] == "conv":
            macs.append(out[0] * out[1] * out[2] * KERNEL * KERNEL * shape[2])
        elif layer[0] == "dense":
            macs.append(shape[0] * out[0])
    batch = CASES[case][1]
    return batch * 2 * (2 * macs[0] + 3 * sum(macs[1:]))


def make_data(case: str):
    """X float32 (batch, *input shape), one-hot Y float32 (batch, 10), labels int64."""
    import numpy as np

    shape, batch = CASES[case][:2] if case in CASES else CONFIG_CASES[case][1:]
    rng = np.random.default_rng(SEED)
    X = rng.random((batch, *shape), dtype=np.float32)
    labels = rng.integers(0, 10, size=batch)
    return X, np.eye(10, dtype=np.float32)[labels], labels


def load_case_config(case: str):
    from nnctl.config import load_config

    return load_config(harness.ROOT / CONFIG_CASES[case][0], [])


def nnctl_config_network(case: str):
    """The network and optimizer of a config case, as ``nnctl train`` builds them."""
    from types import SimpleNamespace

    from nnctl.config.build import build

    config = load_case_config(case)
    spec = SimpleNamespace(input_shape=CONFIG_CASES[case][1], n_classes=10)
    experiment = build(dataclasses.replace(config, spec=spec))
    return experiment.network, experiment.optimizer


def config_step_flops(network, batch: int) -> int:
    """Matrix-product FLOPs of one training step of an nnctl network (the module
    docstring's rule): every layer with a weight ``W`` does ``W.size`` multiply-adds per
    output position, the first one computes no input gradient."""
    from nnctl.core.chain import walk_layers

    macs, shape = [], network.input_shape
    for index, top in enumerate(network.layers):
        for _, layer, in_shape, _ in walk_layers(top, shape, str(index)):
            if "W" in layer.parameters:  # a leaf with weights (blocks hold none of their own)
                out = layer.output_shape(in_shape)
                macs.append(layer.parameters["W"].size * math.prod(out[:-1]))
        shape = top.output_shape(shape)
    return batch * 2 * (2 * macs[0] + 3 * sum(macs[1:]))


def case_batch(case: str) -> int:
    return CASES[case][1] if case in CASES else CONFIG_CASES[case][2]


def nnctl_network(case: str):
    """The built nnctl network and its optimizer for ``case``."""
    if case in CONFIG_CASES:
        return nnctl_config_network(case)
    from nnctl.core import Conv2D, Flatten, FullyConnected, NeuralNetwork, Pool2D
    from nnctl.core.optimizers import SGD

    layers = []
    for layer, _, _, last in layer_shapes(case):
        if layer[0] == "conv":
            layers.append(Conv2D(layer[1], KERNEL, "relu", pad="same"))
        elif layer[0] == "pool":
            layers.append(Pool2D(2, "max", stride=2))
        elif layer[0] == "flatten":
            layers.append(Flatten())
        else:
            layers.append(FullyConnected(layer[1], "softmax" if last else "relu"))
    net = NeuralNetwork(layers, "cross_entropy", seed=SEED, dtype="float32")
    net.build(CASES[case][0])
    return net, SGD(lr=LR)


def nnctl_step(case: str):
    """A callable running one nnctl training step, as the trainer does."""
    net, opt = nnctl_network(case)
    X, Y, _ = make_data(case)

    def step() -> None:
        net.backward(Y, net.forward(X))
        opt.step(net.param_grads())

    return step


def torch_step(case: str):
    """A callable running one PyTorch training step on the same network and data."""
    import torch
    from torch import nn

    torch.manual_seed(SEED)
    if case in CONFIG_CASES:
        return torch_config_step(case)
    modules = []
    for layer, shape, out, last in layer_shapes(case):
        if layer[0] == "conv":
            modules += [nn.Conv2d(shape[2], layer[1], KERNEL, padding="same"), nn.ReLU()]
        elif layer[0] == "pool":
            modules.append(nn.MaxPool2d(2, 2))
        elif layer[0] == "flatten":
            modules.append(nn.Flatten())
        else:
            modules.append(nn.Linear(shape[0], out[0]))
            if not last:
                modules.append(nn.ReLU())
    model = nn.Sequential(*modules)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    X, _, labels = make_data(case)
    X = torch.from_numpy(X)
    if X.ndim == 4:
        X = X.permute(0, 3, 1, 2).contiguous()  # NHWC → NCHW
    y = torch.from_numpy(labels)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(X), y).backward()
        opt.step()

    return step


def torch_config_step(case: str):
    """PyTorch's twin of a config case: network, loss and optimizer from the config."""
    import torch
    import torch_translate
    import torch_twin

    config = load_case_config(case).data
    model = torch_translate.torch_model(
        config["model"]["layers"], CONFIG_CASES[case][1], final_logits=True
    )
    opt = torch_twin.torch_optimizer(config["optimizer"], model.parameters())
    options = torch_twin.cross_entropy_options(config["model"]["loss"])
    X, _, labels = make_data(case)
    X = torch.from_numpy(X).permute(0, 3, 1, 2).contiguous()  # NHWC → NCHW
    y = torch.from_numpy(labels)
    model.train()

    clip_norm = config["optimizer"].get("clip_norm")

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(X), y, **options).backward()
        if clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
        opt.step()

    return step


# --- the child ------------------------------------------------------------------------
def time_steps(step, warmup: int, repeats: int) -> list[float]:
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        times.append((time.perf_counter() - started) * 1e3)
    return times


def traced_peak_mib(case: str) -> float:
    """tracemalloc peak from before the network is built through two steps, in MiB."""
    import tracemalloc

    gc.collect()
    tracemalloc.start()
    step = nnctl_step(case)
    step()
    step()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def child(framework: str, case: str, repeats: int, warmup: int, threads: int) -> dict:
    import numpy as np

    info = {"framework": framework, "case": case, "numpy": np.__version__}
    if framework == "torch":
        import torch

        torch.set_num_threads(threads)
        info.update(torch=torch.__version__, torch_threads=torch.get_num_threads())
    rss_start = harness.rss_now_mib()
    step = (nnctl_step if framework == "nnctl" else torch_step)(case)
    times = time_steps(step, warmup, repeats)
    info.update(
        median_ms=statistics.median(times),
        min_ms=min(times),
        times_ms=[round(t, 3) for t in times],
        rss_start_mib=rss_start,
        peak_rss_mib=harness.peak_rss_mib(),
        pools=harness.thread_pools(),
    )
    if framework == "nnctl":
        del step
        info["products_ms"] = product_floor.floor_ms(case, repeats)
        info["traced_peak_mib"] = traced_peak_mib(case)
        if case in CONFIG_CASES:
            network, _ = nnctl_config_network(case)
            info["flops_per_step"] = config_step_flops(network, CONFIG_CASES[case][2])
    return info


def peak_child(sizes=(1024, 2048), repeats: int = 10) -> dict:
    """Best float32 square matrix-product rate of NumPy's BLAS, in GFLOP/s."""
    import numpy as np

    rates = []
    for n in sizes:
        a = np.random.default_rng(SEED).random((n, n), dtype=np.float32)
        b, out = a.T.copy(), np.empty_like(a)
        product = functools.partial(np.matmul, a, b, out=out)
        best_ms = min(time_steps(product, 1, repeats))
        rates.append(2 * n**3 / (best_ms / 1e3) / 1e9)
    return {"peak_gflops": max(rates), "pools": harness.thread_pools()}


# --- the parent -----------------------------------------------------------------------
def run_child(args, env, framework: str, case: str) -> dict:
    options = {
        "--child": framework,
        "--case": case,
        "--repeats": args.repeats,
        "--warmup": args.warmup,
        "--threads": args.threads,
    }
    cmd = [sys.executable, str(Path(__file__).resolve())]
    cmd += [str(x) for pair in options.items() for x in pair]
    return harness.run_json_child(cmd, env)


def measure(args, env, frameworks: list[str]) -> dict:
    """{case: {framework: [child result per round]}}, alternating frameworks."""
    runs = {case: {fw: [] for fw in frameworks} for case in args.cases}
    for r in range(args.rounds):
        for case in args.cases:
            for fw in frameworks:
                result = run_child(args, env, fw, case)
                runs[case][fw].append(result)
                print(
                    f"round {r + 1}/{args.rounds} {case:<6} {fw:<6} "
                    f"median {result['median_ms']:.2f} ms",
                    file=sys.stderr,
                )
    return runs


def summarize(runs: dict, peak: float) -> list[dict]:
    rows = []
    for case, by_fw in runs.items():
        batch = case_batch(case)
        flops = step_flops(case) or by_fw["nnctl"][0]["flops_per_step"]
        row = {"case": case, "batch": batch, "flops_per_step": flops}
        for fw, results in by_fw.items():
            best = min(r["median_ms"] for r in results)
            gflops = row["flops_per_step"] / (best / 1e3) / 1e9
            row[fw] = {
                "best_median_ms": best,
                "round_medians_ms": [r["median_ms"] for r in results],
                "min_ms": min(r["min_ms"] for r in results),
                "gflops": gflops,
                "percent_of_peak": 100 * gflops / peak,
                "peak_rss_mib": max(r["peak_rss_mib"] for r in results),
                "rss_start_mib": results[0]["rss_start_mib"],
                "traced_peak_mib": results[0].get("traced_peak_mib"),
            }
            if fw == "nnctl":
                row[fw]["products_ms"] = min(r["products_ms"] for r in results)
        if "torch" in by_fw:
            row["ratio"] = row["nnctl"]["best_median_ms"] / row["torch"]["best_median_ms"]
        rows.append(row)
    return rows


def table(rows: list[dict], with_torch: bool) -> tuple[list[str], list[list[str]]]:
    headers = ["case", "batch", "nnctl ms"]
    headers += ["PyTorch ms", "nnctl/PyTorch"] if with_torch else []
    headers += ["products alone ms"] + (["products/PyTorch"] if with_torch else [])
    headers += ["nnctl GFLOP/s", "nnctl % peak"]
    headers += ["PyTorch GFLOP/s", "PyTorch % peak"] if with_torch else []
    headers += ["nnctl RSS MiB", "nnctl traced MiB"]
    headers += ["PyTorch RSS MiB"] if with_torch else []
    cells = []
    for row in rows:
        n, t = row["nnctl"], row.get("torch")
        line = [row["case"], row["batch"], f"{n['best_median_ms']:.2f}"]
        line += [f"{t['best_median_ms']:.2f}", f"{row['ratio']:.2f}"] if t else []
        line += [f"{n['products_ms']:.2f}"]
        line += [f"{n['products_ms'] / t['best_median_ms']:.2f}"] if t else []
        line += [f"{n['gflops']:.1f}", f"{n['percent_of_peak']:.0f} %"]
        line += [f"{t['gflops']:.1f}", f"{t['percent_of_peak']:.0f} %"] if t else []
        line += [f"{n['peak_rss_mib']:.0f}", f"{n['traced_peak_mib']:.1f}"]
        line += [f"{t['peak_rss_mib']:.0f}"] if t else []
        cells.append(line)
    return headers, cells


def caption(args, peak: float, peak_source: str, env_line: str, pools: dict) -> str:
    kernels = "; ".join(f"{fw}: {harness.describe_pools(p)}" for fw, p in pools.items())
    return (
        f"Made with `{harness.command_line()}` on {date.today().isoformat()}: each framework "
        f"and case in its own process, alternated, best of the medians of {args.rounds} "
        f"round(s), each over {args.repeats} steps after {args.warmup} warm-up steps; "
        f"{args.threads} threads; "
        f"{env_line}; thread pools {kernels}. GFLOP/s counts matrix products only "
        f"(forward, weight and input gradients, none for the data); products alone: the "
        f"same products on random operands, the parts on their threads as the split runs "
        f"them (benchmarks/product_floor.py), best of the rounds' medians; % peak of "
        f"{peak:.0f} GFLOP/s float32 ({peak_source}). RSS: peak resident memory of the "
        f"step's process; traced: NumPy allocations from before the network was built."
    )


def parent(args) -> None:
    env, removed = harness.child_env(args.threads)
    env_line = harness.env_note(removed, args.threads)
    print(env_line, flush=True)
    frameworks = ["nnctl"] + (["torch"] if harness.torch_installed() else [])
    if len(frameworks) == 1:
        print("PyTorch is not installed: nnctl only (pip install torch==2.13.0)")
    peak, peak_source = args.peak_gflops, "--peak-gflops"
    if peak is None:
        measured = harness.run_json_child(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--child",
                "peak",
                "--threads",
                str(args.threads),
            ],
            env,
        )
        peak, peak_source = measured["peak_gflops"], "measured by this run"
    print(f"float32 matrix-product peak: {peak:.0f} GFLOP/s ({peak_source})", flush=True)
    runs = measure(args, env, frameworks)
    rows = summarize(runs, peak)
    pools = {fw: runs[args.cases[0]][fw][0]["pools"] for fw in frameworks}
    for fw in frameworks:
        print(f"{fw} child thread pools: {harness.describe_pools(pools[fw])}")
    flops = ", ".join(f"{r['case']} {r['flops_per_step'] / 1e9:.3f} G" for r in rows)
    print(f"matrix-product FLOPs per step: {flops}")
    headers, cells = table(rows, "torch" in frameworks)
    if args.markdown:
        print(harness.markdown_table(headers, cells))
        print()
        print(caption(args, peak, peak_source, env_line, pools))
    else:
        print(harness.text_table(headers, cells))
    if args.json:
        first = runs[args.cases[0]]
        versions = {
            k: v
            for r in first.values()
            for k, v in r[0].items()
            if k in ("numpy", "torch", "torch_threads")
        }
        report = {
            "command": harness.command_line(),
            "environment": env_line,
            "peak_gflops": peak,
            "peak_source": peak_source,
            "versions": versions,
            "pools": pools,
            "results": rows,
            "runs": runs,
        }
        args.json.write_text(json.dumps(report, indent=2))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--cases", nargs="+", default=ALL_CASES, choices=ALL_CASES)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--peak-gflops",
        type=float,
        help="float32 matrix-product peak on --threads (default: measured by this run)",
    )
    parser.add_argument("--json", type=Path, help="also write every measurement here")
    parser.add_argument(
        "--markdown",
        action="store_true",
        help="print a Markdown table and how it was made (for the README)",
    )
    parser.add_argument("--child", choices=[*FRAMEWORKS, "peak"], help=argparse.SUPPRESS)
    parser.add_argument("--case", choices=ALL_CASES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.rounds, args.repeats, args.threads) < 1 or args.warmup < 0:
        parser.error("--rounds, --repeats and --threads must be >= 1, --warmup >= 0")
    if args.child == "peak":
        print(json.dumps(peak_child()))
    elif args.child:
        if args.case is None:
            parser.error("--child needs --case")
        print(json.dumps(child(args.child, args.case, args.repeats, args.warmup, args.threads)))
    else:
        parent(args)


if __name__ == "__main__":
    main()

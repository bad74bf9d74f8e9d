"""Whole training runs, nnctl against PyTorch, each a whole process of its own.

    python benchmarks/epoch_benchmark.py [--config configs/mnist-cnn.yaml] [--epochs 1]
        [--rounds 3] [--threads 2] [--set KEY=VALUE ...] [--json FILE] [--markdown]

How the figures are made:
- nnctl: ``nnctl train CONFIG --set train.epochs=N [--set ...] --out TMP --quiet --json``
  (the console script of this Python environment), a whole process: start-up, data
  loading, training, validation every epoch, checkpoints, the test evaluation.
- PyTorch: ``python benchmarks/torch_twin.py --config CONFIG --epochs N [--set ...]
  --json``, which runs the same recipe read from the same config (same data and
  preprocessing, network and initializers, loss, augmentation, optimizer, clipping,
  schedule, batch size and batch order,
  validation every epoch, checkpoints, test evaluation with the best checkpoint; see its
  docstring).
- Both children get the same environment: ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE``
  removed, ``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` set to
  ``--threads`` (PyTorch also ``torch.set_num_threads``).
- Each round runs nnctl then PyTorch (alternated); the table gives per framework the median
  over ``--rounds`` of: the whole process's wall time (``time.perf_counter`` around it in
  this parent), its CPU time (user + system), the time in training steps as each reports
  it (nnctl's summary ``train_seconds``; PyTorch's the same span of its loop), and the
  process's peak resident memory (``ru_maxrss`` of that child alone, from ``os.wait4``).
  The test accuracy is there to show both trained the same recipe (the initial weights
  and the augmentation are drawn from each framework's own generator, so it differs a
  little).
- ratio = nnctl wall time / PyTorch wall time (below 1: nnctl is faster).

PyTorch is optional (``pip install torch==2.13.0``); without it only nnctl runs. The
machine must be otherwise idle for publishable figures.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from datetime import date
from pathlib import Path

import harness

TORCH_SCRIPT = Path(__file__).resolve().with_name("torch_twin.py")


def nnctl_executable() -> str:
    """The ``nnctl`` console script of the running Python environment."""
    here = Path(sys.executable).with_name("nnctl")
    found = str(here) if here.exists() else shutil.which("nnctl")
    if found is None:
        sys.exit("no nnctl command found: pip install -e . in this environment")
    return found


def commands(args, out_dir: Path) -> dict[str, list[str]]:
    sets = [x for s in args.set for x in ("--set", s)]
    cmds = {
        "nnctl": [
            nnctl_executable(),
            "train",
            str(args.config),
            "--set",
            f"train.epochs={args.epochs}",
            *sets,
            "--out",
            str(out_dir),
            "--quiet",
            "--json",
        ],
    }
    if harness.torch_installed():
        cmds["torch"] = [
            sys.executable,
            str(TORCH_SCRIPT),
            "--config",
            str(args.config),
            "--epochs",
            str(args.epochs),
            "--threads",
            str(args.threads),
            *sets,
            "--json",
        ]
    return cmds


def run_once(cmd: list[str], env: dict[str, str], scratch: Path) -> dict:
    """One whole process: its measurements and the JSON summary it printed."""
    out = scratch / "stdout.txt"
    with out.open("w") as stdout:
        measured = harness.run_measured(cmd, env, stdout)
    summary = json.loads(out.read_text().strip().splitlines()[-1])
    test = summary.get("test") or {}
    return {**measured, "train_s": summary["train_seconds"], "test_accuracy": test.get("accuracy")}


def measure(args, env) -> dict[str, list[dict]]:
    runs: dict[str, list[dict]] = {}
    for r in range(args.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            for fw, cmd in commands(args, Path(tmp) / "run").items():
                result = run_once(cmd, env, Path(tmp))
                runs.setdefault(fw, []).append(result)
                print(
                    f"round {r + 1}/{args.rounds} {fw:<6} {result['wall_s']:.1f} s wall, "
                    f"{result['peak_rss_mib']:.0f} MiB",
                    file=sys.stderr,
                )
    return runs


def summarize(runs: dict[str, list[dict]]) -> dict[str, dict]:
    keys = ("wall_s", "cpu_s", "train_s", "peak_rss_mib")
    rows = {}
    for fw, results in runs.items():
        rows[fw] = {k: statistics.median(r[k] for r in results) for k in keys}
        rows[fw]["wall_s_all"] = [r["wall_s"] for r in results]
        rows[fw]["test_accuracy"] = results[-1]["test_accuracy"]
    return rows


def table(rows: dict[str, dict]) -> tuple[list[str], list[list[str]]]:
    headers = ["", "wall s", "CPU s", "training steps s", "peak RSS MiB", "test accuracy"]
    names = {"nnctl": "nnctl", "torch": "PyTorch"}
    cells = []
    for fw, row in rows.items():
        acc = row["test_accuracy"]
        cells.append(
            [
                names[fw],
                f"{row['wall_s']:.1f}",
                f"{row['cpu_s']:.1f}",
                f"{row['train_s']:.1f}",
                f"{row['peak_rss_mib']:.0f}",
                "-" if acc is None else f"{100 * acc:.2f} %",
            ]
        )
    if "torch" in rows:
        ratios = [rows["nnctl"][k] / rows["torch"][k] for k in ("wall_s", "cpu_s", "train_s")]
        cells.append(["nnctl/PyTorch", *(f"{x:.2f}" for x in ratios), "", ""])
    return headers, cells


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=harness.ROOT / "configs" / "mnist-cnn.yaml")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a config override passed to both (repeatable)",
    )
    parser.add_argument("--json", type=Path, help="also write every measurement here")
    parser.add_argument(
        "--markdown",
        action="store_true",
        help="print a Markdown table and how it was made (for the README)",
    )
    args = parser.parse_args(argv)
    if min(args.epochs, args.rounds, args.threads) < 1:
        parser.error("--epochs, --rounds and --threads must be >= 1")
    args.config = args.config.resolve()
    env, removed = harness.child_env(args.threads)
    env_line = harness.env_note(removed, args.threads)
    print(env_line, flush=True)
    if not harness.torch_installed():
        print("PyTorch is not installed: nnctl only (pip install torch==2.13.0)")
    rows = summarize(measure(args, env))
    headers, cells = table(rows)
    if args.markdown:
        print(harness.markdown_table(headers, cells))
        print()
        print(
            f"Made with `{harness.command_line()}` on {date.today().isoformat()}: whole "
            f"processes, alternated, median over {args.rounds} round(s); {args.threads} "
            f"threads; {env_line}. Wall and CPU time and peak resident memory of each "
            f"whole process; training steps as each reports them."
        )
    else:
        print(harness.text_table(headers, cells))
    if args.json:
        report = {"command": harness.command_line(), "environment": env_line, "results": rows}
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

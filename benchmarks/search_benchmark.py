"""ASHA against the full grid, and TPE against random search, on digits (nnctl sweep).

    python benchmarks/search_benchmark.py [--out DIR] [--seeds 0 1 2] [--jobs 1]

Needs Optuna (``pip install 'nnctl[search]'``). Every sweep runs in a fresh folder under
``--out`` (default: a new temporary folder), with ``--jobs`` workers; with one worker
(the default) the trials run in a fixed order and the results do not depend on timing.

1. ``configs/sweeps/digits-grid27.yaml`` (27 configurations, 27 epochs each) against
   ``digits-asha27.yaml`` (the same trials with ASHA: grace period 1, reduction factor 3):
   the best validation accuracy (the highest of any trial at any epoch) and the epochs
   trained, summed over the trials.
2. ``digits-tpe.yaml`` against ``digits-random20.yaml`` (the same space, 20 trials of 10
   epochs), each with the search seeds ``--seeds``: the best validation accuracy after the
   first 5, 10 and 20 trials (in the order they were asked for).
3. With ``--ray`` (``pip install 'nnctl[ray]'``): ``digits-asha27.yaml`` on Ray Tune (a
   local Ray started by the sweep, so its start-up counts) against the local backend:
   wall time, and whether the trials that completed on both logged identical metrics.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SWEEPS = ROOT / "configs" / "sweeps"
NNCTL = shutil.which("nnctl") or str(Path(sys.executable).parent / "nnctl")
CHECKPOINTS = (5, 10, 20)


def run_sweep(sweep: Path, out: Path, jobs: int) -> tuple[list[dict], float]:
    """Run ``nnctl sweep``; (its table rows, wall seconds)."""
    start = time.perf_counter()
    command = [NNCTL, "sweep", str(sweep), "--out", str(out), "--jobs", str(jobs)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    rows = [json.loads(line) for line in (out / "sweep.jsonl").read_text().splitlines()]
    return rows, seconds


def best_val_accuracy(row: dict) -> float:
    """The highest validation accuracy the trial logged at any epoch."""
    lines = (Path(row["dir"]) / "metrics.jsonl").read_text().splitlines()
    return max(json.loads(line)["val_accuracy"] for line in lines if line.strip())


def with_seed(sweep: Path, seed: int, folder: Path) -> Path:
    """A copy of the sweep file with ``search.seed`` set (its base made absolute)."""
    data = yaml.safe_load(sweep.read_text())
    data["base"] = str((sweep.parent / data["base"]).resolve())
    data["search"]["seed"] = seed
    path = folder / f"{sweep.stem}-seed{seed}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def asha_against_grid(out: Path, jobs: int) -> None:
    results = {}
    for name in ("digits-grid27", "digits-asha27"):
        rows, seconds = run_sweep(SWEEPS / f"{name}.yaml", out / name, jobs)
        best = max(rows, key=best_val_accuracy)
        results[name] = {"best": best_val_accuracy(best), "config": best["name"],
                         "epochs": sum(row["epochs"] for row in rows), "seconds": seconds,
                         "pruned": sum(row["status"] == "pruned" for row in rows),
                         "trials": len(rows)}  # fmt: skip
    grid, asha = results["digits-grid27"], results["digits-asha27"]
    print("\n| sweep | trials | pruned | epochs trained | best val acc | best trial | wall |")
    print("|---|---:|---:|---:|---:|---|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['trials']} | {r['pruned']} | {r['epochs']} | {r['best']:.4f} "
              f"| {r['config']} | {r['seconds']:.0f} s |")  # fmt: skip
    print(f"\nASHA: {100 * asha['epochs'] / grid['epochs']:.1f} % of the grid's epochs, best "
          f"val acc {100 * (asha['best'] - grid['best']):+.2f} points against the grid's")  # fmt: skip


def tpe_against_random(out: Path, seeds: list[int], jobs: int) -> None:
    folder = out / "sweep-files"
    folder.mkdir(parents=True, exist_ok=True)
    curves: dict[str, list[list[float]]] = {"tpe": [], "random": []}
    for kind, name in (("tpe", "digits-tpe"), ("random", "digits-random20")):
        for seed in seeds:
            sweep = with_seed(SWEEPS / f"{name}.yaml", seed, folder)
            rows, _ = run_sweep(sweep, out / f"{name}-seed{seed}", jobs)
            values = [best_val_accuracy(row) for row in sorted(rows, key=lambda r: r["index"])]
            curves[kind].append([max(values[:n]) for n in CHECKPOINTS if n <= len(values)])
    print(f"\nbest val acc after N trials, search seeds {seeds}")
    print("\n| search | " + " | ".join(f"N = {n}" for n in CHECKPOINTS) + " |")
    print("|---|" + "---:|" * len(CHECKPOINTS))
    for kind, runs in curves.items():
        cells = []
        for column in zip(*runs):
            mean = statistics.fmean(column)
            spread = statistics.stdev(column) if len(column) > 1 else 0.0
            each = ", ".join(f"{v:.4f}" for v in column)
            cells.append(f"{mean:.4f} ± {spread:.4f} ({each})")
        print(f"| {kind} | " + " | ".join(cells) + " |")


def epoch_metrics(trial_dir: Path) -> list[dict]:
    """The epoch rows without their timings."""
    rows = [json.loads(line) for line in (trial_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in ("seconds", "samples_per_s")}
            for row in rows]  # fmt: skip


def ray_against_local(out: Path, jobs: int) -> None:
    sweep = SWEEPS / "digits-asha27.yaml"
    local_rows, local_seconds = run_sweep(sweep, out / "local", jobs)
    command = [NNCTL, "sweep", str(sweep), "--out", str(out / "ray"), "--jobs", str(jobs),
               "--backend", "ray"]  # fmt: skip
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    ray_seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    ray_rows = [json.loads(line) for line in (out / "ray" / "sweep.jsonl").read_text()
                .splitlines()]  # fmt: skip
    both = [(a, b) for a, b in zip(local_rows, ray_rows)
            if a["status"] == b["status"] == "completed"]  # fmt: skip
    same = sum(epoch_metrics(Path(a["dir"])) == epoch_metrics(Path(b["dir"])) for a, b in both)
    print("\n| backend | wall | completed | pruned | epochs trained |")
    print("|---|---:|---:|---:|---:|")
    for name, rows, seconds in (("local", local_rows, local_seconds),
                                ("ray tune", ray_rows, ray_seconds)):  # fmt: skip
        print(f"| {name} | {seconds:.0f} s | {sum(r['status'] == 'completed' for r in rows)} "
              f"| {sum(r['status'] == 'pruned' for r in rows)} "
              f"| {sum(r['epochs'] or 0 for r in rows)} |")  # fmt: skip
    print(f"\ntrials completed on both: {len(both)}; identical epoch metrics: {same}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="Folder for the sweeps (default: temporary).")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--only", choices=("asha", "tpe", "ray"), help="One comparison only.")
    parser.add_argument("--ray", action="store_true", help="Also Ray Tune against local.")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="nnctl-search-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise SystemExit(f"{out}: not empty; the sweeps need fresh folders")
    print(f"sweeps in {out}, --jobs {args.jobs}", flush=True)
    if args.only in (None, "asha"):
        asha_against_grid(out, args.jobs)
    if args.only in (None, "tpe"):
        tpe_against_random(out, args.seeds, args.jobs)
    if args.only == "ray" or (args.ray and args.only is None):
        ray_against_local(out, args.jobs)


if __name__ == "__main__":
    main()

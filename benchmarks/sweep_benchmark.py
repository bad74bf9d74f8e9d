"""Wall time of an 8-trial digits sweep: --jobs 1 vs --jobs 2, and Ray against local.

    python benchmarks/sweep_benchmark.py [--repeats 3] [--no-ray]

The sweep is configs/digits-mlp.yaml (30 epochs) over 4 learning rates x 2 seeds. Each
setting runs ``--repeats`` times, interleaved, in fresh folders; the median is reported.

- ``train x8``: eight plain ``nnctl train`` runs one after another (no sweep machinery);
- ``local -j1`` / ``local -j2``: the local backend with one and two workers;
- ``ray -j1`` / ``ray -j2``: the Ray backend against a running head (started here on
  127.0.0.1 with 2 CPUs, stopped at the end), so Ray's start-up is not counted;
- ``ray (own cluster)``: the Ray backend without --address, starting and stopping its own
  local Ray (start-up included).

Per-trial overhead of Ray = (ray -j1 - local -j1) / 8; of the local backend = (local -j1 -
train x8) / 8.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "digits-mlp.yaml"
GRID = ["--grid", "optimizer.lr=0.01,0.003,0.001,0.0003", "--grid", "seed=0,1"]
TRIALS = 8
NNCTL = shutil.which("nnctl") or str(Path(sys.executable).parent / "nnctl")
RAY = shutil.which("ray") or str(Path(sys.executable).parent / "ray")


def timed(command: list[str], env: dict) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    return seconds


def sweep(folder: Path, *args: str) -> list[str]:
    return [NNCTL, "sweep", str(CONFIG), *GRID, "--out", str(folder), *args]


def train_eight(folder: Path) -> list[list[str]]:
    commands = []
    for lr in ("0.01", "0.003", "0.001", "0.0003"):
        for seed in ("0", "1"):
            commands.append([NNCTL, "train", str(CONFIG), "--set", f"optimizer.lr={lr}",
                             "--set", f"seed={seed}", "--out", str(folder / f"{lr}-{seed}"),
                             "--quiet"])  # fmt: skip
    return commands


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_head(env: dict, temp_dir: str) -> tuple[str, int]:
    port = free_port()
    command = [RAY, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
               "--num-cpus", "2", "--disable-usage-stats", "--include-dashboard=false",
               "--ray-client-server-port", str(free_port()),
               "--dashboard-agent-listen-port", str(free_port()),
               "--object-store-memory", str(100 * 1024 * 1024), "--temp-dir", temp_dir]  # fmt: skip
    process = subprocess.Popen(command, env=env, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    if process.wait(timeout=120) != 0:
        raise SystemExit("ray start failed")
    return f"127.0.0.1:{port}", process.pid


def stop_group(pgid: int) -> None:
    """SIGKILL the head's process group and its descendants, by pid."""
    for _ in range(50):
        table = {}
        for entry in filter(str.isdigit, os.listdir("/proc")):
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            table[int(entry)] = (int(fields[1]), int(fields[2]), fields[0])
        found = {pid for pid, (_, group, _) in table.items() if group == pgid}
        while more := {p for p, (parent, _, _) in table.items() if parent in found} - found:
            found |= more
        alive = [pid for pid in found if table[pid][2] != "Z"]
        if not alive:
            return
        for pid in alive:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-ray", action="store_true", help="Only the local backend.")
    args = parser.parse_args()
    ray = not args.no_ray
    if ray:
        try:
            import ray as _  # noqa: F401
        except ImportError:
            print("ray not installed (pip install 'nnctl[ray]'): local backend only")
            ray = False
    scratch = Path(tempfile.mkdtemp(prefix="nnctl-sweep-bench-"))
    temp_dir = tempfile.mkdtemp(prefix="nnray-", dir="/tmp")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN": uuid.uuid4().hex, "RAY_TMPDIR": temp_dir}  # fmt: skip
    env.pop("RAY_ADDRESS", None)
    head = None
    times: dict[str, list[float]] = {}
    try:
        if ray:
            address, head = start_head(env, temp_dir)
        for repeat in range(args.repeats):
            run = scratch / str(repeat)
            settings = {"train x8": None, "local -j1": sweep(run / "j1", "--jobs", "1"),
                        "local -j2": sweep(run / "j2", "--jobs", "2")}  # fmt: skip
            if ray:
                settings["ray -j1"] = sweep(run / "r1", "--backend", "ray", "--address",
                                            address, "--jobs", "1")  # fmt: skip
                settings["ray -j2"] = sweep(run / "r2", "--backend", "ray", "--address",
                                            address, "--jobs", "2")  # fmt: skip
                settings["ray (own cluster)"] = sweep(run / "r0", "--backend", "ray")
            for name, command in settings.items():
                if command is None:
                    seconds = sum(timed(c, env) for c in train_eight(run / "train"))
                else:
                    seconds = timed(command, env)
                times.setdefault(name, []).append(seconds)
    finally:
        if head is not None:
            stop_group(head)
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(temp_dir, ignore_errors=True)
    report(times, args.repeats)


def report(times: dict[str, list[float]], repeats: int) -> None:
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"{TRIALS}-trial digits sweep (digits-mlp, 30 epochs), {os.cpu_count()} CPUs, "
          f"median of {repeats}")  # fmt: skip
    for name, seconds in median.items():
        print(f"  {name:<18} {seconds:7.2f} s   ({', '.join(f'{t:.2f}' for t in times[name])})")
    print(f"speedup local -j2 vs -j1: {median['local -j1'] / median['local -j2']:.2f}x")
    overhead = (median["local -j1"] - median["train x8"]) / TRIALS
    print(f"local backend overhead per trial vs plain nnctl train: {overhead * 1000:+.0f} ms")
    if "ray -j1" in median:
        per_trial = (median["ray -j1"] - median["local -j1"]) / TRIALS
        print(f"ray overhead per trial vs local (-j1, running head): {per_trial * 1000:+.0f} ms")
        print(f"speedup ray -j2 vs -j1: {median['ray -j1'] / median['ray -j2']:.2f}x")
        startup = median["ray (own cluster)"] - median["ray -j2"]
        print(f"starting and stopping a local Ray for the sweep: {startup:+.1f} s")


if __name__ == "__main__":
    main()

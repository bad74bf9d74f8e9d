"""What the benchmark scripts share: the children's environment, how a child is run and
measured, what BLAS it ran on, and the tables.

Every figure comes from a separate process per framework: NumPy's OpenBLAS thread pool and
PyTorch's OpenMP pool in one process contend for the cores and make any ratio meaningless.
The children run with ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` removed from their
environment (set on some machines for old OpenBLAS builds, they slow a current NumPy) and
with ``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS`` set to the
requested thread count.
"""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Removed from every child's environment (see the module docstring).
SCRUBBED = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def torch_installed() -> bool:
    """Whether PyTorch can be imported, without importing it (the parent stays light)."""
    return importlib.util.find_spec("torch") is not None


def child_env(threads: int) -> tuple[dict[str, str], dict[str, str]]:
    """The children's environment, and the scrubbed variables with the values they had."""
    env = dict(os.environ)
    removed = {name: env.pop(name) for name in SCRUBBED if name in env}
    env.update({name: str(threads) for name in THREAD_VARIABLES})
    return env, removed


def env_note(removed: dict[str, str], threads: int) -> str:
    """One line saying what the children's environment is."""
    was = ", ".join(f"{k}={v}" for k, v in removed.items()) or "neither was set"
    return (
        f"children run with {' and '.join(SCRUBBED)} unset (here: {was}); "
        f"{'/'.join(THREAD_VARIABLES)}={threads}"
    )


def thread_pools() -> list[dict] | None:
    """The native thread pools loaded in this process (threadpoolctl), or None."""
    try:
        import threadpoolctl
    except ImportError:
        return None
    keys = ("internal_api", "version", "architecture", "num_threads", "threading_layer")
    return [{k: pool.get(k) for k in keys} for pool in threadpoolctl.threadpool_info()]


def describe_pools(pools: list[dict] | None) -> str:
    """``openblas 0.3.31 Haswell x2, openmp x2``, or a hint when threadpoolctl is missing."""
    if pools is None:
        return "unknown (pip install threadpoolctl)"
    parts = []
    for pool in pools:
        words = [pool["internal_api"], pool.get("version"), pool.get("architecture")]
        parts.append(" ".join(str(w) for w in words if w) + f" x{pool['num_threads']}")
    return ", ".join(parts) or "none loaded"


def rss_now_mib() -> float:
    """This process's current resident set size in MiB (Linux; else its peak so far)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except OSError:
        return peak_rss_mib()
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib() -> float:
    """This process's peak resident set size in MiB (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_json_child(cmd: list[str], env: dict[str, str]) -> dict:
    """Run ``cmd`` to the end and return the JSON object on the last line of its stdout."""
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT, check=False)
    if done.returncode != 0 or not done.stdout.strip():
        sys.exit(f"{' '.join(cmd)} failed (exit {done.returncode}):\n{done.stderr.strip()}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_measured(cmd: list[str], env: dict[str, str], stdout) -> dict:
    """Run ``cmd`` as a whole process: wall seconds, CPU seconds and the peak resident
    memory of that process alone (``os.wait4`` returns the child's own ``rusage``)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=stdout, stderr=subprocess.PIPE, cwd=ROOT)
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stderr.close()
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{stderr.decode().strip()}")
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mib": usage.ru_maxrss / 1024,
    }


def text_table(headers: list[str], rows: list[list[str]]) -> str:
    """Right-aligned columns, the first left-aligned."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells) -> str:
        first = f"{cells[0]:<{widths[0]}}"
        return "  ".join([first] + [f"{c:>{w}}" for c, w in zip(cells[1:], widths[1:])])

    return "\n".join(line(r) for r in [headers, *rows])


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def command_line() -> str:
    """How this script was run, for the tables' captions."""
    script = Path(sys.argv[0]).resolve()
    try:
        script = script.relative_to(ROOT)
    except ValueError:
        pass
    return " ".join(["python", str(script), *sys.argv[1:]])


def process_age_s() -> float:
    """Seconds since this process started (Linux: from /proc, interpreter start included;
    elsewhere: since this module was imported)."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return time.perf_counter() - _IMPORTED
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")


_IMPORTED = time.perf_counter()

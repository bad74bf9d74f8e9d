"""``nnctl sweep --backend ray`` against a real Ray head started on 127.0.0.1 by the tests.

Skipped when Ray is not installed (``pip install 'nnctl[ray]'``). The head gets free ports,
its own temporary folder and its own authentication token, so it touches no other Ray on
the machine; it is stopped afterwards, even when a test fails, by killing the processes it
started (its process group and their descendants, by process id).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from sweep_helpers import NNCTL, nnctl, read_jsonl, same_weights, summary, write_base

pytest.importorskip("ray")
pytestmark = pytest.mark.slow  # every test starts Ray and runs sweeps on it

RAY = shutil.which("ray") or str(Path(sys.executable).parent / "ray")
START_TIMEOUT, SWEEP_TIMEOUT = 120, 300
QUICK = ["--grid", "optimizer.lr=0.05,1e12", "--grid", "seed=0,1"]
SLOW = ["--set", "data.batch_size=8", "--set", "train.epochs=150", "--grid", "seed=0,1"]


@dataclass
class Head:
    address: str
    env: dict
    pgid: int
    temp_dir: str


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_head() -> Head:
    """``ray start --head`` on 127.0.0.1, offline and light (no dashboard, small store)."""
    temp_dir = tempfile.mkdtemp(prefix="nnray-", dir="/tmp")  # short: socket paths are limited
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN": uuid.uuid4().hex}  # fmt: skip
    port = free_port()
    command = [RAY, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
               "--num-cpus", "2", "--disable-usage-stats", "--include-dashboard=false",
               "--ray-client-server-port", str(free_port()),
               "--dashboard-agent-listen-port", str(free_port()),
               "--object-store-memory", str(100 * 1024 * 1024), "--temp-dir", temp_dir]  # fmt: skip
    process = subprocess.Popen(command, env=env, start_new_session=True, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    head = Head(f"127.0.0.1:{port}", env, process.pid, temp_dir)
    try:
        output, _ = process.communicate(timeout=START_TIMEOUT)
    except subprocess.TimeoutExpired:
        stop_head(head)
        raise RuntimeError("ray start timed out") from None
    if process.returncode != 0:
        stop_head(head)
        raise RuntimeError(f"ray start failed:\n{output[-3000:]}")
    return head


def _processes() -> dict[int, tuple[int, int]]:
    """{pid: (parent pid, process group)} of every process, from /proc."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as file:
                fields = file.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        table[int(entry)] = (int(fields[1]), int(fields[2]))
    return table


def head_processes(pgid: int) -> set[int]:
    """The head's process group and every descendant (Ray workers, trial processes)."""
    table = _processes()
    found = {pid for pid, (_, group) in table.items() if group == pgid}
    while True:
        more = {pid for pid, (parent, _) in table.items() if parent in found} - found
        if not more:
            return found
        found |= more


def stop_head(head: Head) -> None:
    """SIGKILL every process the head started, by pid; wait until they are gone."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        alive = {pid for pid in head_processes(head.pgid) if _alive(pid)}
        if not alive:
            break
        for pid in alive:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)
    shutil.rmtree(head.temp_dir, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().rsplit(")", 1)[1].split()[0] != "Z"  # zombies are gone
    except (OSError, IndexError):
        return False


@pytest.fixture(scope="module")
def head():
    try:
        head = start_head()
    except RuntimeError:  # one retry with new ports: a port taken between probe and bind
        head = start_head()
    try:
        yield head
    finally:
        stop_head(head)
    assert not [pid for pid in head_processes(head.pgid) if _alive(pid)]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray")
    write_base(root)
    return root


def local_sweep(root: Path, name: str, args: list[str], code: int) -> Path:
    """The same sweep on the local backend; ``code`` is its expected exit code."""
    out = root / f"local-{name}"
    result = nnctl("sweep", root / "base.yaml", *args, "--jobs", "2", "--out", out,
                   timeout=SWEEP_TIMEOUT)  # fmt: skip
    assert result.returncode == code, result.stderr
    return out


def same_results(ray_out: Path, local_out: Path) -> None:
    ray_rows, local_rows = (
        read_jsonl(ray_out / "sweep.jsonl"),
        read_jsonl(local_out / "sweep.jsonl"),
    )
    assert [r["status"] for r in ray_rows] == [r["status"] for r in local_rows]
    for ray_row, local_row in zip(ray_rows, local_rows):
        if ray_row["status"] != "completed":
            continue
        ray_dir, local_dir = ray_out / ray_row["name"], local_out / local_row["name"]
        assert summary(ray_dir)["test"] == summary(local_dir)["test"]
        assert same_weights(ray_dir, local_dir)


def test_ray_sweep_gives_the_local_results(head, root):
    local = local_sweep(root, "quick", QUICK, code=1)  # two trials diverge
    out = root / "ray-quick"
    result = nnctl("sweep", root / "base.yaml", *QUICK, "--backend", "ray", "--address",
                   head.address, "--out", out, env=head.env, timeout=SWEEP_TIMEOUT)  # fmt: skip
    assert result.returncode == 1, result.stderr  # the two lr=1e12 trials diverge
    assert "2 of 4 trials did not complete (2 completed, 2 diverged)" in result.stderr
    rows = read_jsonl(out / "sweep.jsonl")
    assert [r["status"] for r in rows] == ["completed", "completed", "diverged", "diverged"]
    assert all("diverged" in r["error"] for r in rows[2:])
    same_results(out, local)
    # rerunning finds everything done, without touching the cluster's trials
    again = nnctl("sweep", root / "base.yaml", *QUICK, "--backend", "ray", "--address",
                  head.address, "--out", out, env=head.env, timeout=SWEEP_TIMEOUT)  # fmt: skip
    assert again.returncode == 1 and "4 trials, 4 already done" in again.stderr


def test_killed_worker_is_retried_and_resumes_exactly(head, root):
    """SIGKILL the Ray worker running trial 0 mid-training: Ray retries the task, which
    resumes from the trial's checkpoint, and the results equal a local run's."""
    local = local_sweep(root, "slow", SLOW, code=0)
    out = root / "ray-slow"
    command = [NNCTL, "sweep", str(root / "base.yaml"), *SLOW, "--backend", "ray",
               "--address", head.address, "--out", str(out)]  # fmt: skip
    sweep = subprocess.Popen(command, env=head.env, text=True, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)  # fmt: skip
    try:
        trial = out / "000-seed=0"
        worker = wait_for_training(trial, sweep)
        os.kill(worker, signal.SIGKILL)
        _, stderr = sweep.communicate(timeout=SWEEP_TIMEOUT)
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.communicate()
    assert sweep.returncode == 0, stderr
    rows = read_jsonl(out / "sweep.jsonl")
    assert [r["status"] for r in rows] == ["completed", "completed"]
    record = json.loads((trial / "trial.json").read_text())
    assert record["attempts"] == 2 and record["worker_pid"] != worker
    assert record["resumed"] is True
    same_results(out, local)


def wait_for_training(trial: Path, sweep: subprocess.Popen, timeout: float = 120) -> int:
    """The pid of the Ray worker running ``trial``, once it has trained a few epochs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert sweep.poll() is None, sweep.communicate()
        try:
            record = json.loads((trial / "trial.json").read_text())
            epochs = len((trial / "metrics.jsonl").read_text().splitlines())
        except (OSError, ValueError):
            record, epochs = {}, 0
        if record.get("status") == "running" and 3 <= epochs < 100:
            return record["worker_pid"]
        time.sleep(0.01)
    raise AssertionError(f"{trial} did not start training")


def test_without_address_the_sweep_starts_and_stops_its_own_ray(root, tmp_path):
    temp_dir = tempfile.mkdtemp(prefix="nnray-", dir="/tmp")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN": uuid.uuid4().hex, "RAY_TMPDIR": temp_dir}  # fmt: skip
    env.pop("RAY_ADDRESS", None)
    out = tmp_path / "sweep"
    command = [NNCTL, "sweep", str(root / "base.yaml"), "--grid", "seed=0,1", "--backend",
               "ray", "--out", str(out), "--json"]  # fmt: skip
    sweep = subprocess.Popen(command, env=env, text=True, start_new_session=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        stdout, stderr = sweep.communicate(timeout=SWEEP_TIMEOUT)
        assert sweep.returncode == 0, stderr
        assert [row["status"] for row in json.loads(stdout)] == ["completed", "completed"]
        time.sleep(1)  # ray.shutdown() has stopped the local cluster
        assert not [pid for pid in head_processes(sweep.pid) if _alive(pid)]
    finally:
        stop_head(Head("", env, sweep.pid, temp_dir))


# --- Ray Tune: searches with a study (needs Optuna too) ----------------------------------

ASHA_FILE = """\
base: base.yaml
set: [train.epochs=4]
grid:
  optimizer.lr: [0.05, 1.0e-5, 2.0e-5]
early_stopping: {type: asha, metric: val_accuracy, grace_period: 1, reduction_factor: 3}
"""
# Slow trials that no scheduler stops (the median rule waits for five finished trials).
MEDIAN_FILE = """\
base: base.yaml
set: [data.batch_size=8, train.epochs=150]
grid:
  seed: [0, 1]
early_stopping: {type: median, metric: val_accuracy, n_startup_trials: 5}
"""
TPE_FILE = """\
base: base.yaml
set: [train.epochs=2]
search: {type: tpe, trials: 3, seed: 1, metric: val_accuracy}
space:
  optimizer.lr: {loguniform: [1.0e-3, 1.0e-1]}
  model.layers[0].n_out: [8, 16]
"""


def sweep_file(root: Path, name: str, text: str) -> Path:
    path = root / f"{name}.yaml"
    path.write_text(text)
    return path


def ray_sweep(head: Head, path: Path, out: Path, *args: str) -> subprocess.CompletedProcess:
    return nnctl("sweep", path, "--backend", "ray", "--address", head.address, "--out", out,
                 *args, env=head.env, timeout=SWEEP_TIMEOUT)  # fmt: skip


def test_tune_asha_prunes_and_keeps_the_unpruned_results_of_local(head, root):
    pytest.importorskip("optuna")
    path = sweep_file(root, "asha", ASHA_FILE)
    local = root / "local-asha"
    assert nnctl("sweep", path, "--jobs", "1", "--out", local).returncode == 0
    out = root / "tune-asha"
    result = ray_sweep(head, path, out, "--jobs", "1")
    assert result.returncode == 0, result.stderr
    rows = read_jsonl(out / "sweep.jsonl")
    assert rows[0]["status"] == "completed" and "pruned" in {r["status"] for r in rows[1:]}
    for row in rows:
        if row["status"] == "pruned":
            trial = out / row["name"]
            assert json.loads((trial / "meta.json").read_text())["status"] == "pruned"
            assert row["epochs"] < 4 and row["stopped_epoch"] == row["epochs"]
    local_rows = read_jsonl(local / "sweep.jsonl")
    for ray_row, local_row in zip(rows, local_rows):
        if ray_row["status"] == local_row["status"] == "completed":
            assert (
                summary(out / ray_row["name"])["test"] == summary(local / ray_row["name"])["test"]
            )
            assert same_weights(out / ray_row["name"], local / ray_row["name"])
    again = ray_sweep(head, path, out)
    assert again.returncode == 0 and "3 trials, 3 already done" in again.stderr


def test_tune_retries_a_killed_worker_and_the_trial_resumes_exactly(head, root):
    pytest.importorskip("optuna")
    path = sweep_file(root, "median", MEDIAN_FILE)
    local = root / "local-median"
    assert nnctl("sweep", path, "--jobs", "2", "--out", local, timeout=SWEEP_TIMEOUT
                 ).returncode == 0  # fmt: skip
    out = root / "tune-median"
    command = [NNCTL, "sweep", str(path), "--backend", "ray", "--address", head.address,
               "--out", str(out), "--jobs", "2"]  # fmt: skip
    sweep = subprocess.Popen(command, env=head.env, text=True, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)  # fmt: skip
    try:
        trial = out / "000-seed=0"
        worker = wait_for_training(trial, sweep)
        os.kill(worker, signal.SIGKILL)
        _, stderr = sweep.communicate(timeout=SWEEP_TIMEOUT)
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.communicate()
    assert sweep.returncode == 0, stderr
    assert [r["status"] for r in read_jsonl(out / "sweep.jsonl")] == ["completed", "completed"]
    record = json.loads((trial / "trial.json").read_text())
    assert record["attempts"] == 2 and record["resumed"] is True
    same_results(out, local)


def test_tune_tpe_search(head, root):
    pytest.importorskip("optuna")
    path = sweep_file(root, "tpe", TPE_FILE)
    out = root / "tune-tpe"
    result = ray_sweep(head, path, out, "--jobs", "2")
    assert result.returncode == 0, result.stderr
    rows = read_jsonl(out / "sweep.jsonl")
    assert [r["index"] for r in rows] == [0, 1, 2]
    assert all(r["status"] == "completed" for r in rows)
    assert all(1e-3 <= r["params"]["optimizer.lr"] <= 1e-1 for r in rows)
    again = ray_sweep(head, path, out)  # Tuner.restore: nothing left to run
    assert again.returncode == 0, again.stderr
    assert read_jsonl(out / "sweep.jsonl") == rows

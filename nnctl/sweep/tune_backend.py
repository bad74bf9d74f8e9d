"""The Ray backend for searches that learn or stop early: Ray Tune.

A ``Tuner`` runs one Tune trial per nnctl trial: its Optuna searcher (TPE) proposes the
values of a tpe search, a grid or random search's fixed trials are a grid over their
indices, and ASHA (``ASHAScheduler``) or the median rule (``MedianStoppingRule``) stops
trials that fall behind. Each Tune trial runs the same ``trial.run_trial`` as every other
backend: a training process writing the nnctl run directory ``OUT/<index>-<values>/`` on
storage every node sees, resuming from its checkpoint when the folder has one. The
training process sends each epoch's row through a pipe (``report.pipe_hook``); the
trainable passes it to ``tune.report`` and answers "go on" once Tune lets the trial
continue; when the scheduler stops the trial the answer is "stop" and the training ends
as ``pruned``, its run directory kept.

Ray retries a trial whose worker died (``FailureConfig(max_failures)``); the retried
trial resumes from its nnctl checkpoint, exactly. Tune keeps its experiment in
``OUT/tune``; running the sweep again calls ``Tuner.restore`` on it, which keeps finished
trials, runs unfinished ones again (they resume) and restores the searcher's history.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ray import tune

from nnctl import layout
from nnctl.sweep import table
from nnctl.sweep.ray_backend import MAX_RETRIES
from nnctl.sweep.report import CONTINUE
from nnctl.sweep.spec import SweepSpec, Trial
from nnctl.sweep.trial import FINISHED, TrialJob, read_record, run_trial, write_record

TUNE_DIR = "tune"
INDEX_DIR = ".tune-index"  # one file per nnctl trial index, holding its Tune trial id
STOP = b"s"


def claim_index(folder: Path, trial_id: str) -> int:
    """The nnctl index of a Tune trial of a tpe search: the one it has, else the lowest
    free one, claimed by creating ``folder/<index>`` exclusively (safe across nodes that
    share the storage)."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in folder.iterdir():
        if path.name.isdigit() and path.read_text() == trial_id:
            return int(path.name)
    index = 0
    while True:
        try:
            fd = os.open(folder / str(index), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            index += 1
            continue
        with os.fdopen(fd, "w") as file:
            file.write(trial_id)
        return index


@dataclass
class Plan:
    """What each Tune trial needs (sent to the workers with the trainable)."""

    spec: SweepSpec
    out: str
    threads: int
    epochs: int  # the base config's epochs (a trial may sweep train.epochs)
    fixed: dict[int, Trial] = field(default_factory=dict)  # a grid or random search's trials
    retry_failed: bool = False
    total: int = 0  # the trials this run starts

    def trial(self, config: dict, trial_id: str) -> Trial:
        """The nnctl trial of a Tune trial: a fixed one by index, else a tpe one numbered
        in the order the Tune trials first ran (``claim_index``)."""
        if "index" in config:
            return self.fixed[config["index"]]
        from nnctl.sweep.study import from_optuna

        index = claim_index(Path(self.out) / INDEX_DIR, trial_id)
        return self.spec.make_trial(index, from_optuna(self.spec.space, config))

    def job(self, trial: Trial, report: dict | None = None) -> TrialJob:
        spec = self.spec
        return TrialJob(index=trial.index, name=trial.name, base=str(spec.base),
                        overrides=[*spec.overrides, *trial.overrides], params=trial.params,
                        trial_dir=str(Path(self.out) / trial.name), threads=self.threads,
                        retry_failed=self.retry_failed, report=report)  # fmt: skip


def tune_trial(config: dict, plan: Plan) -> None:
    """The Tune trainable: run the nnctl trial, relaying its epochs to ``tune.report``."""
    trial = plan.trial(config, tune.get_context().get_trial_id())
    epochs = trial.params.get("train.epochs", plan.epochs)
    rows_r, rows_w = os.pipe()
    reply_r, reply_w = os.pipe()
    job = plan.job(trial, {"kind": "pipe", "rows_fd": rows_w, "reply_fd": reply_r,
                           "epochs": epochs})  # fmt: skip
    helper = _Helper(job, (rows_w, reply_r))
    helper.start()
    with os.fdopen(rows_r, "r") as rows, os.fdopen(reply_w, "wb", buffering=0) as replies:
        for line in rows:
            row = json.loads(line)
            metrics = {k: v for k, v in row.items() if isinstance(v, (int, float))}
            if row["epoch"] >= epochs:  # the last epoch: let the training finish first
                helper.join()
            try:
                tune.report(metrics)
            except SystemExit:  # the scheduler stopped the trial
                _answer(replies, STOP)
                helper.join(timeout=60)
                raise
            if row["epoch"] < epochs:
                _answer(replies, CONTINUE)
    helper.join()


def _answer(replies, byte: bytes) -> None:
    try:
        replies.write(byte)
    except BrokenPipeError:  # the training already ended
        pass


class _Helper(threading.Thread):
    """Runs the trial's process; closes this side's copies of the child's pipe ends once
    it has them, so that the trainable sees the end of the rows when the child ends."""

    def __init__(self, job: TrialJob, child_fds: tuple[int, int]):
        super().__init__(daemon=True)
        self.job, self.child_fds, self.record = job, child_fds, {}
        self.closed = threading.Event()

    def _close(self, process=None) -> None:
        if not self.closed.is_set():
            self.closed.set()
            for fd in self.child_fds:
                os.close(fd)

    def run(self) -> None:
        try:
            self.record = run_trial(self.job, on_start=self._close)
        finally:
            self._close()


class Progress(tune.Callback):
    """One stderr line per finished Tune trial, as the other backends print them."""

    def __init__(self, plan: Plan):
        self.plan, self.finished = plan, 0

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self._line(trial, len(trials), stopped=True)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._line(trial, len(trials))

    def _line(self, tune_trial_, count: int, stopped: bool = False) -> None:
        from nnctl.sweep.runner import progress_line

        nnctl_trial = self.plan.trial(tune_trial_.config, tune_trial_.trial_id)
        folder = Path(self.plan.out) / nnctl_trial.name
        if stopped:
            settle(folder)
        self.finished += 1
        row = table.make_row(nnctl_trial, folder)
        total = self.plan.spec.trials if self.plan.spec.adaptive else self.plan.total
        print(f"[{self.finished}/{total}] {progress_line(row)}", file=sys.stderr, flush=True)


def _scheduler(spec: SweepSpec, epochs: int):
    s = spec.scheduler
    if s is None:
        return None
    schedulers = tune.schedulers
    if s.type == "asha":
        return schedulers.ASHAScheduler(time_attr="epoch", max_t=epochs,
                                        grace_period=s.grace_period,
                                        reduction_factor=s.reduction_factor)  # fmt: skip
    return _MedianRule(time_attr="epoch", grace_period=s.grace_period,
                       min_samples_required=max(1, s.n_startup_trials))  # fmt: skip


class _MedianRule(tune.schedulers.MedianStoppingRule):
    """Tune's median stopping rule, except that a trial is never paused to yield to
    others while too few trials have results (a paused trial would end its training
    process and start it again); it goes on, and only trials that fall behind stop."""

    def _on_insufficient_samples(self, tune_controller, trial, time) -> str:
        return self.CONTINUE


def _searcher(spec: SweepSpec):
    from ray.tune.search.optuna import OptunaSearch

    from nnctl.sweep.study import import_optuna, to_distribution

    optuna = import_optuna()
    space = {key: to_distribution(optuna, dimension) for key, dimension in spec.space.items()}
    return OptunaSearch(space=space, metric=spec.metric, mode=spec.mode,
                        sampler=optuna.samplers.TPESampler(seed=spec.seed))  # fmt: skip


def make_tuner(plan: Plan, todo: list[int], jobs: int | None, cpus: int):
    """A new Tuner for ``plan``, or the one stored in ``OUT/tune`` (resumed)."""
    trainable = tune.with_resources(tune.with_parameters(tune_trial, plan=plan), {"cpu": cpus})
    path = str(Path(plan.out) / TUNE_DIR)
    if tune.Tuner.can_restore(path):
        return tune.Tuner.restore(path, trainable, resume_unfinished=True, resume_errored=True)
    spec = plan.spec
    swept = [t.params.get("train.epochs", 0) for t in plan.fixed.values()]
    swept += spec.space["train.epochs"][1] if "train.epochs" in spec.space else []
    epochs = max([plan.epochs, *(e for e in swept if isinstance(e, int))])
    config = tune.TuneConfig(metric=spec.metric, mode=spec.mode,
                             scheduler=_scheduler(spec, epochs),
                             search_alg=_searcher(spec) if spec.adaptive else None,
                             num_samples=spec.trials if spec.adaptive else 1,
                             max_concurrent_trials=jobs)  # fmt: skip
    run = tune.RunConfig(name=TUNE_DIR, storage_path=plan.out, verbose=0,
                         failure_config=tune.FailureConfig(max_failures=MAX_RETRIES),
                         callbacks=[Progress(plan)])  # fmt: skip
    space = {} if spec.adaptive else {"index": tune.grid_search(todo)}
    return tune.Tuner(trainable, param_space=space, tune_config=config, run_config=run)


def settle(folder: Path) -> None:
    """A trial that ended without an error in Tune's view but whose process could not
    record how (Tune stopped it, and its worker, first) was pruned."""
    from nnctl.train.rundir import finish_meta

    if not folder.is_dir() or table.trial_status(folder) in (*FINISHED, "failed", "diverged"):
        return
    write_record(folder, {**read_record(folder), "status": "pruned", "error": None})
    if layout.is_run_dir(folder):
        finish_meta(folder, "pruned")


def finish(plan: Plan, results) -> list[Trial]:
    """The nnctl trials of the Tune results, each settled."""
    trials = []
    for result in results:
        trial = plan.trial(result.config, result.metrics.get("trial_id") or result.path)
        trials.append(trial)
        if result.error is None:
            settle(Path(plan.out) / trial.name)
    return trials


def run_tune(spec: SweepSpec, trials: list[Trial], out: Path, options, echo):
    """Run the sweep with Ray Tune; (state, None). ``trials`` are a grid or random search's
    ([] for tpe)."""
    from nnctl.config import load_config
    from nnctl.sweep.ray_backend import connect, import_ray
    from nnctl.sweep.runner import SweepRun, announce, to_run

    state = SweepRun(out, trials, echo)
    todo = sorted(to_run(state.rows, options.retry_failed))
    if spec.adaptive:
        done = [p for p in out.iterdir() if p.is_dir() and p.name[:1].isdigit()
                and table.trial_status(p) in (*FINISHED, "failed", "diverged")]  # fmt: skip
        announce(echo, out, spec.trials, max(0, spec.trials - len(done)))
    else:
        announce(echo, out, len(trials), len(todo))
    if not spec.adaptive and not todo:
        return state, None
    epochs = load_config(spec.base, spec.overrides).data["train"]["epochs"]
    plan = Plan(spec, str(out), options.cpus_per_trial, epochs,
                {t.index: t for t in trials}, options.retry_failed, len(todo))  # fmt: skip
    ray = import_ray()
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # no experiment banner on the terminal
    connect(ray, options.address)
    try:
        results = make_tuner(plan, todo, options.jobs, options.cpus_per_trial).fit()
    finally:
        ray.shutdown()
    for trial in finish(plan, results):
        if trial.index not in state.trials:
            state.add(trial)
    state.rows = {i: table.make_row(t, out / t.name) for i, t in state.trials.items()}
    table.write_table(out, list(state.rows.values()))
    return state, None

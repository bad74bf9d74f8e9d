"""Sweeps: many trainings of one config with different values, locally or on Ray.

```
spec.py          the sweep: grid/random expansion, trial names, sweep files
space.py         parameter spaces (uniform, loguniform, int, choice) and random samples
search.py        the search: and early_stopping: blocks (grid, random, tpe; asha, median)
validate.py      everything checked before any trial runs (also `nnctl check SWEEP.yaml`)
trial.py         one trial as a child process that trains or resumes it (the same everywhere)
child.py         the child's entry point (``nnctl.train.entry``; dies with its worker)
report.py        the child's epoch-end hook: report the metric, stop when pruned
table.py         sweep.jsonl / sweep.csv, one row per trial
local.py         a pool of worker threads, each running one child process at a time
study.py         the Optuna study in the sweep folder (tpe, pruning): pip install 'nnctl[search]'
studyrun.py      a local sweep driven by the study: resume, ask, tell
ray_backend.py   each trial a Ray task (optional extra: pip install 'nnctl[ray]')
tune_backend.py  searches with a study on Ray: Ray Tune's Tuner, OptunaSearch, ASHA
runner.py        plan (skip, resume, retry), run on a backend, keep the table
```

Kept free of heavy imports: trial child processes start through ``nnctl.sweep.child``;
Optuna and Ray are imported only by the sweeps that use them.
"""

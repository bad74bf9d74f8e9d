"""Sweeps: many trainings of one config with different values, locally or on Ray.

```
spec.py         the sweep: grid/random expansion, trial names, validation up front
trial.py        one trial as a child process that trains or resumes it (the same everywhere)
child.py        the child's entry point (``nnctl.train.entry``; dies with its worker)
table.py        sweep.jsonl / sweep.csv, one row per trial
local.py        a pool of worker threads, each running one child process at a time
ray_backend.py  each trial a Ray task (optional extra: pip install 'nnctl[ray]')
runner.py       plan (skip, resume, retry), run on a backend, keep the table
```

Kept free of heavy imports: trial child processes start through ``nnctl.sweep.child``.
"""

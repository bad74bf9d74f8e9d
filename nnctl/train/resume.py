"""Whether and how a run can continue: ``nnctl resume`` and ``nnctl train --resume``.

A resumed run continues exactly, so the config it continues with must be the one its last
checkpoint was trained with (the checkpoint keeps it). Any difference is an error that
lists the changed keys with their old and new values, unless ``--force`` accepts them. The
one change allowed freely is ``train.epochs`` (no lower than the epochs trained): the
epochs already trained, and the ones that follow, are the same whatever the total is, so
a finished run can be extended (Keras' ``initial_epoch``, Lightning's ``max_epochs`` with
``ckpt_path``). A run that has logged epochs but lost its last checkpoint cannot continue
exactly: an error, or with ``--force`` a fresh start from epoch 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from nnctl import layout
from nnctl.config import config_from_mapping
from nnctl.core.checks import show
from nnctl.errors import CheckpointError, ConfigError, ConfigErrors, NnctlError
from nnctl.train.checkpoint import load_checkpoint
from nnctl.train.logs import MetricsLog

EPOCHS_KEY = "train.epochs"
SHOWN_CHANGES, SHOWN_VALUE_CHARS = 10, 40
_ABSENT = object()


@dataclass
class ResumePlan:
    """What a resume starts from: the last checkpoint (None: start again from epoch 1), the
    epochs it has trained, and the config keys that change."""

    run_dir: Path
    arrays: dict | None = None
    meta: dict = field(default_factory=dict)
    trained: int = 0
    stopped_early: bool = False
    changed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def is_complete(self, epochs: int) -> bool:
        return self.stopped_early or self.trained >= epochs

    def complete_message(self, epochs: int) -> str:
        if self.stopped_early:
            how = f"early stopping ended it at epoch {self.trained}"
        else:
            how = f"{self.trained} of {epochs} epochs trained"
        return (
            f"{self.run_dir} is already complete ({how}); nothing to resume. Extend it "
            f"with: nnctl resume {self.run_dir} --set {EPOCHS_KEY}=N"
        )


def plan_resume(run_dir: Path, config, force: bool) -> ResumePlan:
    """Check that ``run_dir`` can continue with ``config`` and say from where.

    Raises CheckpointError (not a run, no checkpoint but epochs logged, unreadable log or
    checkpoint) or NnctlError (the config changed, without ``force``).
    """
    plan = ResumePlan(run_dir)
    last = layout.last_checkpoint(run_dir)
    if last.is_file():
        plan.arrays, plan.meta = load_checkpoint(last)
        progress = plan.meta.get("progress") or {}
        plan.trained, plan.stopped_early = progress.get("epoch", 0), progress.get("stopped_early")
        reference = plan.meta.get("config")
    else:
        _check_restart(run_dir, force, plan)
        reference = None
    source = last
    if not isinstance(reference, dict):  # no checkpoint, or one without its config
        source = run_dir / layout.CONFIG_FILE
        reference = layout.read_required(source)
    _check_changes(plan, _resolved_again(reference, source, config.spec), config.data, force)
    return plan


def _resolved_again(reference: dict, source: Path, spec) -> dict:
    """``reference`` resolved by this version of nnctl, so that arguments added since the
    run started (with their defaults) are no differences; as it is when it no longer
    resolves (the comparison then shows what changed)."""
    try:
        return config_from_mapping(reference, source=str(source), spec=spec).data
    except (ConfigError, ConfigErrors):
        return reference


def _check_restart(run_dir: Path, force: bool, plan: ResumePlan) -> None:
    try:
        logged = len(MetricsLog(run_dir).rows())
    except ValueError as error:
        raise CheckpointError(f"{run_dir / layout.METRICS_JSONL}: malformed ({error})") from None
    if logged and not force:
        raise CheckpointError(
            f"{run_dir}: {layout.CHECKPOINT_DIR}/{layout.LAST_CHECKPOINT} is missing but "
            f"{logged} epochs are logged, so the run cannot continue exactly; use --force to "
            "train it again from epoch 1 (the logged epochs are dropped)"
        )
    if logged:
        plan.notes.append(
            f"no checkpoint: training again from epoch 1 ({logged} logged epochs dropped)"
        )


def _check_changes(plan: ResumePlan, old: dict, new: dict, force: bool) -> None:
    a, b = flatten_config(old), flatten_config(new)
    plan.changed = _differing(a, b)
    others = [key for key in plan.changed if key != EPOCHS_KEY]
    if EPOCHS_KEY in plan.changed:
        epochs = b.get(EPOCHS_KEY)
        if isinstance(epochs, int) and epochs < plan.trained:
            raise NnctlError(
                f"{plan.run_dir}: {EPOCHS_KEY}={epochs} is fewer than the "
                f"{plan.trained} epochs the run has trained"
            )
        plan.notes.append(f"{EPOCHS_KEY}: {_shown(a, EPOCHS_KEY)} -> {_shown(b, EPOCHS_KEY)}")
    if others and not force:
        listed = "; ".join(f"{k}: {_shown(a, k)} -> {_shown(b, k)}" for k in others[:SHOWN_CHANGES])
        more = f"; and {len(others) - SHOWN_CHANGES} more" if len(others) > SHOWN_CHANGES else ""
        raise NnctlError(
            f"{plan.run_dir}: the config differs from the one the run was trained "
            f"with: {listed}{more}; use --force to resume with the new values"
        )
    if others:
        plan.notes.append(f"resuming with a changed config: {', '.join(others)}")


def _shown(flat: dict, key: str) -> str:
    return show(flat[key], SHOWN_VALUE_CHARS) if key in flat else "(absent)"


def flatten_config(value, prefix: str = "") -> dict:
    """{"a": {"b": [1, 2]}} → {"a.b[0]": 1, "a.b[1]": 2}."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out.update(flatten_config(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list):
        out = {}
        for index, item in enumerate(value):
            out.update(flatten_config(item, f"{prefix}[{index}]"))
        return out or {prefix: []}
    return {prefix: value}


def _differing(a: dict, b: dict) -> list[str]:
    """The keys of two flattened configs whose values differ (or that only one has)."""
    return sorted(key for key in a.keys() | b.keys() if a.get(key, _ABSENT) != b.get(key, _ABSENT))

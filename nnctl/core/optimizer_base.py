"""The optimizer base class: arguments, clipping, weight decay, state; ``grad_norm``.

The network hands an optimizer a list of ``(key, param, grad)`` triples, e.g.
``("layers.0.W", W, dLdW)``. ``step`` updates every ``param`` **in place** (layers keep
references to their arrays) and never writes to ``grad``. Per-parameter state (momentum
buffers, moment estimates) is created lazily per key, with the parameter's dtype.

Order of operations in one step, for every parameter:

1. the gradient is clipped (``clip_norm``: the global L2 norm over all gradients, or each
   tensor's own norm with ``clip_mode="per_tensor"``); the global norm is
   ``grad_norm(params)``, which a caller that has it already passes to ``step``;
2. L2 weight decay is added to the clipped gradient, ``g + weight_decay * param``
   (AdamW instead shrinks the parameter: ``param *= 1 - lr * weight_decay``);
3. the optimizer's own update rule runs (PyTorch semantics throughout).

``lr`` is the learning rate of the next step; a schedule overwrites it before each step
with ``opt.lr = schedule.lr_at(opt.base_lr, position)``. ``base_lr`` is the configured
value and is what ``get_config`` reports.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from typing import ClassVar, NamedTuple

import numpy as np

from nnctl.core.checks import (
    ArgumentError,
    choice,
    is_real,
    non_negative,
    positive,
    show,
)

CLIP_MODES = ("global", "per_tensor")
REQUIRED = inspect.Parameter.empty

Param = tuple[str, np.ndarray, np.ndarray]


class Argument(NamedTuple):
    """A constructor argument: its default (``REQUIRED`` for none) and its check.

    ``check(name, value)`` returns the value converted or raises ValueError naming the
    argument (the checks of ``nnctl.core.checks``).
    """

    default: object
    check: Callable[[str, object], object]


def _positive_or_none(name: str, value) -> float | None:
    if value is None:
        return None
    if not (is_real(value) and value > 0):
        raise ArgumentError(name, f"must be a positive number or None; got {show(value)}")
    return float(value)


#: Arguments every optimizer takes after its own.
COMMON = {
    "weight_decay": Argument(0.0, non_negative),
    "clip_norm": Argument(None, _positive_or_none),
    "clip_mode": Argument("global", lambda name, value: choice(name, value, CLIP_MODES)),
}


def _sq_norm(g: np.ndarray) -> float:
    flat = g.reshape(-1)
    return float(np.dot(flat, flat))


def grad_norm(params: Sequence[Param]) -> float:
    """The global L2 norm of all gradients (non-finite when a gradient is).

    Parameters
    ----------
    params : list of (str, ndarray, ndarray)
        ``(key, param, grad)`` triples, as ``Optimizer.step`` takes them.

    Returns
    -------
    float
    """
    return math.sqrt(sum(_sq_norm(g) for _, _, g in params))


class Optimizer:
    """Base class: arguments, clipping, weight decay, lazily created state, (de)serialisation.

    A subclass declares its own arguments once, in ``arguments`` (name →
    ``Argument(default, check)``, ``lr`` included), lists its state ``slots`` and
    implements ``_update(key, param, grad)``. The base class appends ``COMMON``, builds the
    constructor's ``__signature__`` from the table (so ``inspect.signature``, config checks
    and the generated reference see ordinary arguments), checks every value and stores it
    as an attribute of the same name. ``defaults`` changes inherited defaults (AdamW).

    Parameters
    ----------
    lr : float
        Learning rate, > 0.
    weight_decay : float
        L2 penalty added to the gradient (decoupled in AdamW), >= 0.
    clip_norm : float or None
        Maximum gradient L2 norm, > 0; ``None`` disables clipping.
    clip_mode : {"global", "per_tensor"}
        Clip the norm over all gradients together, or each gradient tensor's own norm.
    """

    type_name: str
    slots: tuple[str, ...] = ()
    decoupled_weight_decay = False
    #: This class's arguments, ``COMMON`` included once the class is created.
    arguments: ClassVar[dict[str, Argument]] = {"lr": Argument(REQUIRED, positive), **COMMON}
    #: Inherited arguments whose default this class changes.
    defaults: ClassVar[dict[str, object]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "arguments" in cls.__dict__:  # declared by this class: its own, then COMMON
            cls.arguments = {**cls.arguments, **COMMON}
        changed = cls.__dict__.get("defaults", {})
        cls.arguments = {
            name: argument._replace(default=changed.get(name, argument.default))
            for name, argument in cls.arguments.items()
        }
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
        cls.__signature__ = inspect.Signature(
            [inspect.Parameter(n, kind, default=a.default) for n, a in cls.arguments.items()]
        )

    def __init__(self, *args, **kwargs):
        bound = self.__signature__.bind(*args, **kwargs)  # TypeError: unknown or missing
        bound.apply_defaults()
        for name, value in bound.arguments.items():
            setattr(self, name, self.arguments[name].check(name, value))
        self._check()
        self.base_lr = self.lr
        self.iterations = 0
        self._state: dict[str, dict[str, np.ndarray]] = {slot: {} for slot in self.slots}
        self._scratch: dict[tuple[str, str], np.ndarray] = {}

    def _check(self) -> None:
        """Checks that involve several arguments; a subclass raises ValueError."""

    # -- the step ---------------------------------------------------------------------------

    def step(self, params: Sequence[Param], norm: float | None = None) -> float:
        """Update every parameter in place with its gradient.

        Parameters
        ----------
        params : list of (str, ndarray, ndarray)
            ``(key, param, grad)``; ``param`` and ``grad`` have the same shape. ``param`` is
            modified in place; ``grad`` is only read.
        norm : float, optional
            ``grad_norm(params)``, when the caller has it already (the trainer computes it
            once, to check for divergence before the update); computed when None. Global
            clipping uses it.

        Returns
        -------
        float
            The global L2 norm of all gradients before clipping: ``norm``, or the one
            computed.
        """
        for key, p, g in params:
            if g.shape != p.shape:
                raise ValueError(
                    f"{key}: gradient shape {g.shape} does not match parameter shape {p.shape}"
                )
        if norm is None:
            norm = grad_norm(params)
        self.iterations += 1
        for key, p, g in params:
            self._update(key, p, self._effective_grad(key, p, g, self._clip_scale(g, norm)))
        return norm

    def _clip_scale(self, g: np.ndarray, total: float) -> float:
        """The factor that clips ``g``; ``total`` is the global norm."""
        if self.clip_norm is None:
            return 1.0
        n = total if self.clip_mode == "global" else math.sqrt(_sq_norm(g))
        return self.clip_norm / n if n > self.clip_norm else 1.0

    def _effective_grad(self, key: str, p: np.ndarray, g: np.ndarray, scale: float) -> np.ndarray:
        """The clipped, L2-decayed gradient; a scratch array whenever it differs from ``g``."""
        l2 = self.weight_decay and not self.decoupled_weight_decay
        if scale == 1.0 and not l2:
            return g
        out = self._tmp("grad", key, p)
        np.multiply(g, scale, out=out)
        if l2:
            decay = self._tmp("update", key, p)  # free until _update runs
            np.multiply(p, self.weight_decay, out=decay)
            out += decay
        return out

    def _update(self, key: str, p: np.ndarray, g: np.ndarray) -> None:
        raise NotImplementedError

    # -- state ------------------------------------------------------------------------------

    def _slot(self, slot: str, key: str, p: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """The state array ``slot`` of parameter ``key``, created as ``fill`` on first use."""
        buf = self._state[slot].get(key)
        if buf is None:
            buf = self._state[slot][key] = np.full_like(p, fill)
        elif buf.shape != p.shape:
            raise ValueError(
                f"optimizer state '{slot}.{key}' has shape {buf.shape}; "
                f"the parameter has shape {p.shape}"
            )
        return buf

    def _tmp(self, name: str, key: str, p: np.ndarray) -> np.ndarray:
        """A reusable scratch array shaped like ``p`` (not part of the state)."""
        buf = self._scratch.get((name, key))
        if buf is None or buf.shape != p.shape or buf.dtype != p.dtype:
            buf = self._scratch[(name, key)] = np.empty_like(p)
        return buf

    def state_dict(self) -> dict[str, np.ndarray]:
        """A snapshot of the state as plain arrays: ``"step"`` and ``"<slot>.<key>"``."""
        state = {"step": np.array(self.iterations, dtype=np.int64)}
        for slot, bufs in self._state.items():
            for key, buf in bufs.items():
                state[f"{slot}.{key}"] = buf.copy()
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore a ``state_dict`` exactly (the arrays are copied)."""
        if "step" not in state:
            raise ValueError(f"{self.type_name} optimizer state has no 'step' entry")
        restored: dict[str, dict[str, np.ndarray]] = {slot: {} for slot in self.slots}
        for name, value in state.items():
            if name == "step":
                continue
            slot, dot, key = name.partition(".")
            if not dot or slot not in restored:
                expected = ", ".join(f"'{s}.<key>'" for s in self.slots) or "none"
                raise ValueError(
                    f"unexpected entry '{name}' in {self.type_name} optimizer state "
                    f"(expected 'step' and {expected})"
                )
            restored[slot][key] = np.array(value, copy=True)
        self.iterations = int(state["step"])
        self._state = restored

    def get_config(self) -> dict:
        """``{"type": name, **constructor arguments}``; ``lr`` is the configured ``base_lr``."""
        kwargs = {n: self.base_lr if n == "lr" else getattr(self, n) for n in self.arguments}
        return {"type": self.type_name, **kwargs}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "type")
        return f"{type(self).__name__}({args})"

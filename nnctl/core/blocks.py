"""Blocks: layers made of layers, ``Residual`` and ``Concat``.

A block is a ``Layer``: the network, the optimizers, checkpoints and the trainer see one
list of layers. A block's ``parameters``, ``gradients`` and ``buffers`` are its children's,
under dotted names (``0.W``, ``shortcut.W``, ``branches.1.0.b``): the same array objects for
parameters and buffers (in-place updates reach the children) and the children's current
gradient arrays (read on every access, since layers replace their gradient arrays in each
backward). ``training``, ``rng`` and ``dtype`` set on a block reach every child, and
``needs_input_grad`` the children that receive the block's input. Blocks nest.

Children are given as layers or as layer specs (``"flatten"``, ``{type: conv2d, ...}``,
``{..., repeat: N}`` for N copies), built through the ``LAYERS`` registry (``chain.py``);
``get_config`` nests the children's configs. ``walk(input_shape)`` lists the children with
their input shapes without building, for parameter counts, FLOPs and the summary.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from nnctl.core import checks
from nnctl.core.activations import initialize_activation
from nnctl.core.chain import (
    add_all,
    chain_backward,
    chain_forward,
    chain_walk,
    initialize_layer,
    initialize_layers,
    shape_text,
)
from nnctl.core.layers import LAYERS, Layer
from nnctl.core.projection import Projection, matching_stride
from nnctl.errors import ShapeError
from nnctl.registry import compact

__all__ = ["SHORTCUTS", "Block", "Concat", "Residual", "initialize_layer"]

SHORTCUTS = ("auto", "identity", "projection")


class Block(Layer):
    """Base class of composite layers.

    Subclasses set up their children before calling ``super().__init__()`` and define
    ``named_children()`` (every child with its dotted prefix, in build order),
    ``entry_children()`` (the children that receive the block's input), ``walk`` (the
    children with their input shapes, without building), ``output_shape``,
    ``_build_children``, ``forward`` and ``backward``. Parameters, FLOPs and the smallest
    training batch are the children's, from ``walk``; ``_own_flops`` adds the block's own.
    """

    def __init__(self) -> None:
        super().__init__()
        self._sync_children()

    def named_children(self) -> list[tuple[str, Layer]]:
        raise NotImplementedError

    def entry_children(self) -> list[Layer]:
        raise NotImplementedError

    # --- children's arrays under dotted names --------------------------------------
    def _gather(self, attribute: str) -> OrderedDict[str, np.ndarray]:
        return OrderedDict(
            (f"{prefix}.{name}", array)
            for prefix, child in self.named_children()
            for name, array in getattr(child, attribute).items()
        )

    @property
    def parameters(self) -> OrderedDict[str, np.ndarray]:
        return self._gather("parameters")

    @parameters.setter
    def parameters(self, value) -> None:
        self._refuse("parameters", value)

    @property
    def gradients(self) -> OrderedDict[str, np.ndarray]:
        return self._gather("gradients")

    @gradients.setter
    def gradients(self, value) -> None:
        self._refuse("gradients", value)

    @property
    def buffers(self) -> OrderedDict[str, np.ndarray]:
        return self._gather("buffers")

    @buffers.setter
    def buffers(self, value) -> None:
        self._refuse("buffers", value)

    def _refuse(self, name: str, value) -> None:
        # Layer.__init__ resets them to empty; anything else would be lost silently.
        if value:
            raise AttributeError(f"a block's {name} are its children's; set them there")

    # --- settings that reach the children ------------------------------------------
    @property
    def training(self) -> bool:
        return self._training

    @training.setter
    def training(self, flag: bool) -> None:
        self._training = flag
        self._sync_children()

    @property
    def rng(self):
        return self._rng

    @rng.setter
    def rng(self, rng) -> None:
        self._rng = rng
        self._sync_children()

    @property
    def dtype(self):
        return self._dtype

    @dtype.setter
    def dtype(self, dtype) -> None:
        self._dtype = np.dtype(dtype)
        self._sync_children()

    @property
    def needs_input_grad(self) -> bool:
        return self._needs_input_grad

    @needs_input_grad.setter
    def needs_input_grad(self, flag: bool) -> None:
        self._needs_input_grad = flag
        self._sync_children()

    def _sync_children(self) -> None:
        settings = ("_training", "_rng", "_dtype", "_needs_input_grad")
        if not all(hasattr(self, name) for name in settings):
            return  # still in Layer.__init__
        entries = {id(layer) for layer in self.entry_children()}
        for _, child in self.named_children():
            child.training, child.rng, child.dtype = self._training, self._rng, self._dtype
            child.needs_input_grad = self._needs_input_grad or id(child) not in entries

    # --- shapes and parameters -----------------------------------------------------
    def build(self, input_shape, rng=None, dtype=None) -> tuple[int, ...]:
        """Build every child for ``input_shape`` (no batch axis); return the output shape."""
        input_shape = tuple(int(d) for d in input_shape)
        out_shape = self.output_shape(input_shape)
        if dtype is not None:
            self.dtype = dtype
        self.rng = rng if rng is not None else self._generator()
        self.input_shape = input_shape
        self.n_in = input_shape[-1] if input_shape else None
        self._build_children(input_shape)
        self._sync_children()
        return out_shape

    def _build_children(self, input_shape) -> None:
        raise NotImplementedError

    def parameter_count(self, input_shape=None) -> int:
        """The children's parameters (the shortcut's included) for ``input_shape``."""
        if input_shape is None:
            return super().parameter_count()
        return sum(child.parameter_count(shape) for _, child, shape in self.walk(input_shape))

    def flops(self, input_shape) -> int:
        """The children's operations plus the block's own (``_own_flops``)."""
        children = sum(child.flops(shape) for _, child, shape in self.walk(input_shape))
        return children + self._own_flops(tuple(input_shape))

    def _own_flops(self, input_shape) -> int:
        return 0

    def min_training_batch(self, input_shape) -> int:
        rows = self.walk(input_shape)
        return max([1, *(child.min_training_batch(shape) for _, child, shape in rows)])


@LAYERS.register("residual")
class Residual(Block):
    """A residual block: ``Y = activation(F(X) + S(X))``, ``F`` the ``layers`` in order.

    Parameters
    ----------
    layers : list of layers or layer specs
        The residual branch ``F``; must not be empty.
    shortcut : "auto", "identity" or "projection"
        ``S``: the identity, or a 1x1 convolution without bias (on vectors a linear map
        without bias) taking every ``stride``-th position, the stride chosen so that its
        output has ``F``'s shape. ``auto`` is the identity when ``F`` keeps the input shape
        and a projection otherwise; ``identity`` with a shape change is a ShapeError.
    activation : str or mapping
        Applied after the sum (``relu``; ``linear`` for none).

    Parameters are named ``0.W``, ``0.b``, ... for ``F`` and ``shortcut.W`` for a projection.
    """

    def __init__(self, layers, shortcut: str = "auto", activation="relu") -> None:
        self.layers = initialize_layers(layers, "layers")
        if not self.layers:
            raise checks.ArgumentError("layers", "must be a non-empty list of layers; got []")
        self.shortcut = checks.choice("shortcut", shortcut, SHORTCUTS)
        self.activation = initialize_activation(activation)
        self.projection: Projection | None = None
        super().__init__()

    def named_children(self):
        children = [(str(i), layer) for i, layer in enumerate(self.layers)]
        if self.projection is not None:
            children.append(("shortcut", self.projection))
        return children

    def entry_children(self):
        return [self.layers[0]] + ([self.projection] if self.projection is not None else [])

    def _shortcut_stride(self, input_shape, out_shape) -> tuple[int, ...] | None:
        """None for an identity shortcut, else the projection's stride; ShapeError if no
        shortcut of the requested kind can match ``out_shape``."""
        same = tuple(input_shape) == tuple(out_shape)
        if self.shortcut == "identity" or (self.shortcut == "auto" and same):
            if not same:
                raise ShapeError(
                    f"residual: an identity shortcut needs the layers to keep the input shape "
                    f"{shape_text(input_shape)}; they give {shape_text(out_shape)} "
                    f"(use shortcut: projection or auto)"
                )
            return None
        strides = None
        if len(input_shape) == len(out_shape) == 1:
            strides = ()
        elif len(input_shape) == len(out_shape) == 3:
            strides = tuple(matching_stride(n, m) for n, m in zip(input_shape[:2], out_shape[:2]))
        if strides is None or None in strides:
            raise ShapeError(
                f"residual: no strided 1x1 projection maps the input shape {shape_text(input_shape)} "
                f"to the layers' output shape {shape_text(out_shape)}"
            )
        return strides or (1, 1)

    def walk(self, input_shape):
        """``(name, child, input shape)`` of ``F``'s layers, then of the projection when the
        shortcut projects (built or not)."""
        rows, out_shape = chain_walk(self.layers, input_shape, "residual layers")
        stride = self._shortcut_stride(input_shape, out_shape)
        if stride is not None:
            projection = self.projection
            if projection is None or self.input_shape != tuple(input_shape):
                projection = Projection(out_shape[-1], stride)
            rows.append(("shortcut", projection, tuple(input_shape)))
        return rows

    def output_shape(self, input_shape):
        out_shape = chain_walk(self.layers, input_shape, "residual layers")[1]
        self._shortcut_stride(input_shape, out_shape)
        return out_shape

    def _own_flops(self, input_shape) -> int:
        """One addition per output value (activations are not counted)."""
        return int(np.prod(self.output_shape(input_shape)))

    def _build_children(self, input_shape) -> None:
        shape = input_shape
        for layer in self.layers:
            shape = layer.build(shape, self.rng, self.dtype)
        stride = self._shortcut_stride(input_shape, shape)
        self.projection = None if stride is None else Projection(shape[-1], stride)
        if self.projection is not None:
            self._sync_children()
            self.projection.build(input_shape, self.rng, self.dtype)

    def forward(self, X: np.ndarray) -> np.ndarray:
        """X : (batch, ...) → activation(F(X) + S(X)), (batch, ...F's output shape)."""
        self._ensure_built(X)
        Z = chain_forward(self.layers, X)
        Z = Z + (X if self.projection is None else self.projection.forward(X))
        self.cache["Z"] = Z
        return self.activation.forward(Z)

    def backward(self, dLdY: np.ndarray) -> np.ndarray:
        dZ = self.activation.backward(self.cache["Z"], dLdY)
        dF = chain_backward(self.layers, dZ)
        dS = dZ if self.projection is None else self.projection.backward(dZ)
        if not self.needs_input_grad:
            return None
        return add_all([dF, dS])

    def get_config(self) -> dict:
        return {
            "type": self.type_name,
            "layers": [layer.get_config() for layer in self.layers],
            "shortcut": self.shortcut,
            "activation": compact(self.activation.get_config()),
        }


@LAYERS.register("concat")
class Concat(Block):
    """Branches side by side on the same input, joined on the last axis (channels of images,
    features of vectors), as in Inception blocks.

    Parameters
    ----------
    branches : list of lists of layers or layer specs
        At least one branch; an empty branch passes the input through (DenseNet-style).
        Every branch's output must agree on every axis but the last.

    Parameters are named ``branches.{branch}.{layer}.{name}`` (``branches.1.0.b``).
    """

    def __init__(self, branches) -> None:
        if not isinstance(branches, (list, tuple)) or not branches:
            raise checks.ArgumentError(
                "branches", f"must be a non-empty list of layer lists; got {branches!r}"
            )
        self.branches = [initialize_layers(b, f"branches[{j}]") for j, b in enumerate(branches)]
        super().__init__()

    def named_children(self):
        return [
            (f"branches.{j}.{k}", layer)
            for j, branch in enumerate(self.branches)
            for k, layer in enumerate(branch)
        ]

    def entry_children(self):
        return [branch[0] for branch in self.branches if branch]

    def _branches(self, input_shape):
        """``(rows, output shape)`` of every branch; ShapeError naming both shapes when a
        branch disagrees with branch 0 on an axis but the last."""
        walks = [
            chain_walk(branch, input_shape, f"concat branches[{j}]", f"branches.{j}.")
            for j, branch in enumerate(self.branches)
        ]
        first = walks[0][1]
        for j, (_, shape) in enumerate(walks[1:], start=1):
            if len(shape) != len(first) or shape[:-1] != first[:-1]:
                raise ShapeError(
                    f"concat: branch {j} gives {shape_text(shape)} but branch 0 gives "
                    f"{shape_text(first)}; branches must agree on every axis but the last"
                )
        return walks

    def walk(self, input_shape):
        """``(name, child, input shape)`` of every branch's layers, branch by branch."""
        return [row for rows, _ in self._branches(input_shape) for row in rows]

    def output_shape(self, input_shape):
        shapes = [shape for _, shape in self._branches(input_shape)]
        return shapes[0][:-1] + (sum(shape[-1] for shape in shapes),)

    def _build_children(self, input_shape) -> None:
        widths = []
        for branch in self.branches:
            shape = tuple(input_shape)
            for layer in branch:
                shape = layer.build(shape, self.rng, self.dtype)
            widths.append(shape[-1])
        self.splits = np.cumsum(widths)[:-1]

    def forward(self, X: np.ndarray) -> np.ndarray:
        """X : (batch, ...) → (batch, ..., sum of the branches' last axes)."""
        self._ensure_built(X)
        return np.concatenate([chain_forward(branch, X) for branch in self.branches], axis=-1)

    def backward(self, dLdY: np.ndarray) -> np.ndarray:
        parts = np.split(dLdY, self.splits, axis=-1)  # views, one per branch
        grads = [chain_backward(branch, part) for branch, part in zip(self.branches, parts)]
        if not self.needs_input_grad:
            return None
        return add_all(grads)

    def get_config(self) -> dict:
        branches = [[layer.get_config() for layer in branch] for branch in self.branches]
        return {"type": self.type_name, "branches": branches}

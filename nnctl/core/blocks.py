"""Blocks: layers made of layers, ``Residual`` and ``Concat``.

A block is a ``Layer``: the network, the optimizers, checkpoints and the trainer see one
list of layers. A block's ``parameters``, ``gradients`` and ``buffers`` are its children's,
under dotted names (``0.W``, ``shortcut.W``, ``branches.1.0.b``): the same array objects for
parameters and buffers (in-place updates reach the children) and the children's current
gradient arrays (read on every access, since layers replace their gradient arrays in each
backward). ``training``, ``rng`` and ``dtype`` set on a block reach every child, and
``needs_input_grad`` the children that receive the block's input. Blocks nest.

Children are given as layers or as layer specs (``"flatten"``, ``{type: conv2d, ...}``),
built through the ``LAYERS`` registry; ``get_config`` nests the children's configs.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from nnctl.core import checks
from nnctl.core.activations import initialize_activation
from nnctl.core.layers import LAYERS, Layer
from nnctl.core.projection import Projection, matching_stride
from nnctl.errors import ConfigError, ShapeError
from nnctl.registry import compact

SHORTCUTS = ("auto", "identity", "projection")


def initialize_layer(spec, path: str = "") -> Layer:
    """A Layer from an instance, a name or a ``{type: ..., ...}`` mapping.

    Inside a block (``path`` given, e.g. ``layers[1]``) every error is a ConfigError whose
    path starts there (``layers[1].n_out``), nested blocks adding their own steps.
    """
    if isinstance(spec, Layer):
        return spec
    if isinstance(spec, str):
        spec = {"type": spec}
    if not isinstance(spec, dict) or "type" not in spec:
        raise ConfigError(path, f"must be a layer name or a mapping with 'type'; got {spec!r}")
    kwargs = dict(spec)
    cls = LAYERS.get(kwargs.pop("type"), f"{path}.type" if path else "type")
    try:
        return cls(**kwargs)
    except ConfigError as error:
        if not path:
            raise
        raise ConfigError(f"{path}.{error.path}" if error.path else path, error.message) from error
    except (TypeError, ValueError) as error:
        if not path:
            raise
        raise ConfigError(path, str(error)) from error


def initialize_layers(specs, path: str) -> list[Layer]:
    """A list of layer specs as layers; ``path`` names the list (``layers``)."""
    if not isinstance(specs, (list, tuple)):
        raise ConfigError(path, f"must be a list of layers; got {specs!r}")
    return [initialize_layer(spec, f"{path}[{i}]") for i, spec in enumerate(specs)]


def _shape(shape) -> str:
    return str(tuple(shape))


def chain_shapes(layers, input_shape, where: str) -> tuple[int, ...]:
    """The output shape of ``layers`` applied in order; ShapeErrors name the position."""
    shape = tuple(input_shape)
    for i, layer in enumerate(layers):
        try:
            shape = tuple(layer.output_shape(shape))
        except ShapeError as error:
            raise ShapeError(f"{where}[{i}]: {error}") from error
    return shape


def chain_count(layers, input_shape) -> int:
    """Parameters of ``layers`` applied in order to ``input_shape``, without building."""
    total, shape = 0, tuple(input_shape)
    for layer in layers:
        total += layer.parameter_count(shape)
        shape = tuple(layer.output_shape(shape))
    return total


def chain_forward(layers, X: np.ndarray) -> np.ndarray:
    for layer in layers:
        X = layer.forward(X)
    return X


def chain_backward(layers, dLdY: np.ndarray):
    for layer in reversed(layers):
        dLdY = layer.backward(dLdY)
    return dLdY


def add_all(arrays) -> np.ndarray:
    """The sum of a list of arrays as a new array (the inputs may be views of others)."""
    total = arrays[0] + arrays[1] if len(arrays) > 1 else arrays[0].copy()
    for array in arrays[2:]:
        total += array
    return total


class Block(Layer):
    """Base class of composite layers.

    Subclasses set up their children before calling ``super().__init__()`` and define
    ``named_children()`` (every child with its dotted prefix, in build order),
    ``entry_children()`` (the children that receive the block's input), ``output_shape``,
    ``_build_children``, ``_count``, ``forward`` and ``backward``.
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
        if input_shape is None:
            return super().parameter_count()
        return self._count(tuple(input_shape))

    def _count(self, input_shape) -> int:
        raise NotImplementedError


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
            raise ValueError("layers must be a non-empty list of layers; got []")
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
                    f"{_shape(input_shape)}; they give {_shape(out_shape)} "
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
                f"residual: no strided 1x1 projection maps the input shape {_shape(input_shape)} "
                f"to the layers' output shape {_shape(out_shape)}"
            )
        return strides or (1, 1)

    def output_shape(self, input_shape):
        out_shape = chain_shapes(self.layers, input_shape, "residual layers")
        self._shortcut_stride(input_shape, out_shape)
        return out_shape

    def _build_children(self, input_shape) -> None:
        shape = input_shape
        for layer in self.layers:
            shape = layer.build(shape, self.rng, self.dtype)
        stride = self._shortcut_stride(input_shape, shape)
        self.projection = None if stride is None else Projection(shape[-1], stride)
        if self.projection is not None:
            self._sync_children()
            self.projection.build(input_shape, self.rng, self.dtype)

    def _count(self, input_shape) -> int:
        out_shape = chain_shapes(self.layers, input_shape, "residual layers")
        stride = self._shortcut_stride(input_shape, out_shape)
        shortcut = 0 if stride is None else int(input_shape[-1]) * int(out_shape[-1])
        return chain_count(self.layers, input_shape) + shortcut

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
            raise ValueError(f"branches must be a non-empty list of layer lists; got {branches!r}")
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

    def _branch_shapes(self, input_shape) -> list[tuple[int, ...]]:
        shapes = [
            chain_shapes(branch, input_shape, f"concat branches[{j}]")
            for j, branch in enumerate(self.branches)
        ]
        first = shapes[0]
        for j, shape in enumerate(shapes[1:], start=1):
            if len(shape) != len(first) or shape[:-1] != first[:-1]:
                raise ShapeError(
                    f"concat: branch {j} gives {_shape(shape)} but branch 0 gives "
                    f"{_shape(first)}; branches must agree on every axis but the last"
                )
        return shapes

    def output_shape(self, input_shape):
        shapes = self._branch_shapes(input_shape)
        return shapes[0][:-1] + (sum(shape[-1] for shape in shapes),)

    def _build_children(self, input_shape) -> None:
        widths = []
        for branch in self.branches:
            shape = tuple(input_shape)
            for layer in branch:
                shape = layer.build(shape, self.rng, self.dtype)
            widths.append(shape[-1])
        self.splits = np.cumsum(widths)[:-1]

    def _count(self, input_shape) -> int:
        self._branch_shapes(input_shape)
        return sum(chain_count(branch, input_shape) for branch in self.branches)

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

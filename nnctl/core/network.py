"""``NeuralNetwork``: a stack of layers and a loss.

``forward(X)`` runs the layers, ``backward(target, out)`` computes the loss and fills
every layer's ``gradients``, ``predict(X, Y)`` evaluates without touching gradients.
When the last layer's activation is the one its loss combines with (softmax with
cross-entropy, sigmoid with binary cross-entropy), ``backward`` uses the loss's exact
combined gradient (``(Y_hat - Y) / batch``) and the loss from the logits.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterator

import numpy as np

from nnctl.core.checks import choice, positive_int
from nnctl.core.fused import plan
from nnctl.core.layers import Layer
from nnctl.core.losses import CrossEntropy, initialize_loss
from nnctl.core.parallel import (
    MIN_PART_VALUES,
    BatchSplit,
    default_threads,
    run_backward,
    run_forward,
)
from nnctl.errors import CheckpointError, ShapeError
from nnctl.registry import compact

#: The compute dtypes a network may use (``model.dtype`` in configs).
DTYPES = ("float32", "float64")


class NeuralNetwork:
    """A sequential network.

    With ``fuse`` (the default) the network runs exact rewrites of layer patterns
    (``nnctl.core.fused``: conv → max-pool as one unit); outputs and gradients are
    bit-identical to those of the plain layer-by-layer path. Set ``net.fuse = False`` to
    run the layers one by one.

    With ``threads`` above 1 (the default on a machine with two cores, see
    ``nnctl.core.parallel.default_threads``) a batch with enough work runs as that many
    parts on as many threads (``nnctl.core.parallel``): results equal the unsplit pass's up
    to float rounding, deterministically. Set ``net.threads = 1`` to run unsplit.

    Parameters
    ----------
    layers : list of Layer
    loss : str, mapping or Loss
    seed : int
        Seeds the network's own ``numpy.random.Generator`` (weights, dropout masks).
    dtype : "float32" or "float64"
        Compute dtype of parameters and activations.
    input_shape : tuple, optional
        Input shape without the batch axis; when given, parameters are created now.
    """

    fuse = True
    #: The least layer output values per part for a batch to be split.
    split_min_values = MIN_PART_VALUES

    def __init__(self, layers, loss, seed: int = 0, dtype="float32", input_shape=None):
        self.dtype = np.dtype(choice("dtype", np.dtype(dtype).name, DTYPES))
        self.layers: list[Layer] = list(layers)
        self.loss = initialize_loss(loss)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        for layer in self.layers:
            layer.rng, layer.dtype = self.rng, self.dtype
        if self.layers:
            self.layers[0].needs_input_grad = False
        self.training = True
        #: Layers the trainer does not update (fine-tuning): top-level indices or dotted
        #: names of layers inside blocks (``4.0``), as ``chain.named_layers`` names them.
        self.frozen: set[int | str] = set()
        self.input_shape = None
        self._plan_key, self._plan = None, []
        self.threads = default_threads()
        self._executor: BatchSplit | None = None
        self._split: BatchSplit | None = None  # the split that ran the last forward, if any
        self._values: tuple = (None, 0)  # (input shape and layers, values per example)
        if input_shape is not None:
            self.build(input_shape)

    @property
    def threads(self) -> int:
        """How many parts (threads) a batch is split into; 1 runs it whole."""
        return self._threads

    @threads.setter
    def threads(self, value: int) -> None:
        self._threads = positive_int("threads", value)

    # --- shapes -----------------------------------------------------------------
    def output_shapes(self, input_shape) -> list[tuple[int, ...]]:
        """Each layer's output shape (no batch axis), without creating parameters."""
        shapes, shape = [], tuple(input_shape)
        for index, layer in enumerate(self.layers):
            try:
                shape = layer.output_shape(shape)
            except ShapeError as error:
                raise ShapeError(f"layer {index}: {error}") from error
            shapes.append(shape)
        return shapes

    def build(self, input_shape) -> list[tuple[int, ...]]:
        """Create every layer's parameters for ``input_shape``; return the output shapes."""
        self.output_shapes(input_shape)  # validate everything before creating anything
        shapes, shape = [], tuple(input_shape)
        for layer in self.layers:
            shape = layer.build(shape, self.rng, self.dtype)
            shapes.append(shape)
        self.input_shape = tuple(input_shape)
        return shapes

    def min_training_batch(self, input_shape=None) -> int:
        """The smallest batch every layer can train on (2 with batch norm on vectors) for
        ``input_shape`` (default: the built one)."""
        shape = tuple(self.input_shape if input_shape is None else input_shape)
        inputs = [shape, *self.output_shapes(shape)[:-1]]
        return max(layer.min_training_batch(s) for layer, s in zip(self.layers, inputs))

    # --- modes ------------------------------------------------------------------
    def train(self) -> NeuralNetwork:
        self._set_training(True)
        return self

    def eval(self) -> NeuralNetwork:
        self._set_training(False)
        return self

    def _set_training(self, flag: bool) -> None:
        self.training = flag
        for layer in self.layers:
            layer.training = flag

    # --- computation ------------------------------------------------------------
    def forward(self, X: np.ndarray) -> np.ndarray:
        """X : (batch, ...) → output of the last layer, (batch, ...)."""
        X = np.asarray(X, dtype=self.dtype)
        if self.input_shape is None:
            self.build(X.shape[1:])
        self._split = self._splitter(len(X))
        if self._split is not None:
            return self._split.forward(self, X)
        return run_forward(self._stages(), X)

    def _splitter(self, batch: int) -> BatchSplit | None:
        """The batch split for a pass of ``batch`` examples, or None to run unsplit: one
        thread, or parts too small to pay for their thread."""
        parts = self.threads
        if parts < 2 or batch < parts:
            return None
        if batch * self._values_per_example() < parts * self.split_min_values:
            return None
        if self._executor is None or self._executor.parts != parts:
            self._executor = BatchSplit(parts)
        return self._executor

    def _values_per_example(self) -> int:
        """How many values the layers output for one example: the element-wise work that
        the split shares out (a network of few values is mostly matrix products and Python,
        which it would not speed up)."""
        key = (self.input_shape, tuple(map(id, self.layers)))
        if self._values[0] != key:
            values = sum(math.prod(shape) for shape in self.output_shapes(self.input_shape))
            self._values = (key, values)
        return self._values[1]

    def _stages(self) -> list:
        """The layers as executed: fused units (``fused.plan``) or the layers themselves."""
        key = (self.fuse, tuple(map(id, self.layers)))
        if key != self._plan_key:
            self._plan = plan(self.layers) if self.fuse else list(self.layers)
            self._plan_key = key
        return self._plan

    @property
    def fused_output(self) -> bool:
        """Whether the last layer's activation and the loss combine into one exact gradient
        (``loss.backward_logits``) passed to the layer's ``backward_linear``."""
        last = self.layers[-1] if self.layers else None
        kind = getattr(self.loss, "fused_activation", None)
        return (
            kind is not None
            and hasattr(last, "backward_linear")
            and isinstance(getattr(last, "activation", None), kind)
        )

    @property
    def fused_softmax_cross_entropy(self) -> bool:
        return self.fused_output and isinstance(self.loss, CrossEntropy)

    def backward(self, target: np.ndarray, out: np.ndarray) -> float:
        """Loss of ``out`` against ``target`` (same shape); fills every layer's gradients."""
        target = np.asarray(target, dtype=self.dtype)
        if target.shape != out.shape:
            raise ShapeError(f"target shape {target.shape} does not match output {out.shape}")
        linear_last = self.fused_output
        loss = self.loss_value(target, out)
        if linear_last:
            dLdY = self.loss.backward_logits(target, out)
        else:
            dLdY = self.loss.backward(target, out)
        if self._split is not None:
            self._split.backward(self, dLdY, linear_last)
        else:
            run_backward(self._stages(), dLdY, linear_last)
        return loss

    def loss_value(self, target: np.ndarray, out: np.ndarray) -> float:
        """The loss of ``out`` against ``target``, touching no gradients."""
        target = np.asarray(target, dtype=self.dtype)
        if self.fused_output:
            split = self._split
            Z = self.layers[-1].cache["Z"] if split is None else split.last_cache("Z")
            return self.loss.forward_logits(target, Z)
        return self.loss.forward(target, out)

    def predict(self, X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, float]:
        """(Y_hat, loss) in evaluation mode; gradients and the training mode are unchanged."""
        was_training = self.training
        self.eval()
        try:
            Y_hat = self.forward(X)
            return Y_hat, self.loss_value(Y, Y_hat)
        finally:
            self._set_training(was_training)

    # --- parameters -------------------------------------------------------------
    def iter_parameters(self) -> Iterator[tuple[Layer, str, np.ndarray]]:
        """(layer, name, array) for every parameter, in layer order."""
        for layer in self.layers:
            for name, array in layer.parameters.items():
                yield layer, name, array

    def param_grads(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """(dotted key, parameter, gradient) triples, as optimizers take them."""
        return [
            (f"layers.{i}.{name}", array, layer.gradients[name])
            for i, layer in enumerate(self.layers)
            for name, array in layer.parameters.items()
        ]

    def trainable_param_grads(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """``param_grads`` without the layers named in ``frozen``: what the
        trainer hands the optimizer (frozen layers get no update and no weight decay)."""
        frozen = self.frozen_prefixes()
        return [item for item in self.param_grads() if not item[0].startswith(frozen)]

    def frozen_prefixes(self) -> tuple[str, ...]:
        """The state-key prefixes (``layers.3.``, ``layers.4.0.``) of the ``frozen`` layers."""
        return tuple(f"layers.{name}." for name in sorted(map(str, self.frozen)))

    def parameter_count(self) -> int:
        return int(sum(a.size for _, _, a in self.iter_parameters()))

    def state_arrays(self) -> list[tuple[str, np.ndarray]]:
        """(dotted key, live array) of every parameter and buffer (running statistics),
        layer by layer: ``layers.0.W``, ``layers.1.running_mean``, ``layers.3.0.W``."""
        return [
            (f"layers.{i}.{name}", array)
            for i, layer in enumerate(self.layers)
            for group in (layer.parameters, layer.buffers)
            for name, array in group.items()
        ]

    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """Copies of every parameter and buffer under dotted keys (``layers.0.W``)."""
        return OrderedDict((key, array.copy()) for key, array in self.state_arrays())

    def load_state_dict(self, state) -> None:
        """Copy arrays into the parameters and buffers; every key must match in name and
        shape."""
        own = dict(self.state_arrays())
        missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
        if missing or unexpected:
            raise CheckpointError(
                f"state does not match the network: missing {missing or 'none'}, "
                f"unexpected {unexpected or 'none'}"
            )
        for key, param in own.items():
            value = np.asarray(state[key])
            if value.shape != param.shape:
                raise CheckpointError(f"{key}: shape {value.shape} does not match {param.shape}")
            param[...] = value

    def get_config(self) -> dict:
        """``{layers, loss}`` as a config writes them: the loss a bare name when it has no
        arguments, else its full ``{type: ..., ...}`` mapping."""
        return {
            "layers": [layer.get_config() for layer in self.layers],
            "loss": compact(self.loss.get_config()),
        }

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"NeuralNetwork([\n  {inner}\n], loss={compact(self.loss.get_config())!r})"

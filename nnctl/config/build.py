"""Turn a validated Config into objects: the built network, its optimizer and schedule.

Building is deterministic: the network's generator is seeded from ``config.seed`` and the
layers are built in order from the data set's input shape, so the same config always gives
bit-identical weights.

``class_weights: balanced`` needs the training labels: ``resolve_class_weights`` writes the
weights into the config once they are known (``nnctl train`` does, before it writes the
run's config); a network built before that (``nnctl time``, ``gradcheck``) weighs every
class 1.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from nnctl.config.components import LAYER, OPTIMIZER, SCHEDULE, make
from nnctl.config.model import BALANCED, frozen_layers
from nnctl.core import NeuralNetwork
from nnctl.core.losses import balanced_class_weights
from nnctl.data import DataSpec, describe
from nnctl.errors import ConfigError

if TYPE_CHECKING:
    from nnctl.config import Config


@dataclass
class Experiment:
    """Everything a config describes, built.

    Attributes
    ----------
    network : NeuralNetwork
        Parameters created for ``spec.input_shape`` and seeded from ``config.seed``.
    optimizer : Optimizer
    schedule : Schedule or None
    spec : DataSpec
    config : Config
    """

    network: NeuralNetwork
    optimizer: object
    schedule: object | None
    spec: DataSpec
    config: Config


def build_network(config: Config, spec: DataSpec) -> NeuralNetwork:
    """The network of ``config.data["model"]`` with parameters for ``spec.input_shape``."""
    model = config.data["model"]
    layers = [make(LAYER, layer) for layer in model["layers"]]
    loss = model["loss"]
    if _balanced(loss):  # the labels are not known here: every class weighs 1
        loss = {**loss, "class_weights": [1.0] * spec.n_classes}
    network = NeuralNetwork(
        layers,
        loss,
        seed=config.data["seed"],
        dtype=model["dtype"],
        input_shape=spec.input_shape,
    )
    network.frozen = frozen_layers(model.get("freeze") or [], network.layers)
    return network


def _balanced(loss) -> bool:
    return isinstance(loss, dict) and loss.get("class_weights") == BALANCED


def resolve_class_weights(config: Config, labels: np.ndarray, n_classes: int) -> Config:
    """``config`` with ``class_weights: balanced`` replaced by ``n / (n_classes * count_c)``
    of the training ``labels`` (int, shape (N,)); ``config`` itself when it has none."""
    if not _balanced(config.data["model"]["loss"]):
        return config
    try:
        weights = balanced_class_weights(np.bincount(labels, minlength=n_classes))
    except ValueError as error:
        shown = str(config.path) if config.path else None
        raise ConfigError("model.loss.class_weights", str(error), file=shown) from None
    data = copy.deepcopy(config.data)
    data["model"]["loss"]["class_weights"] = weights
    return dataclasses.replace(config, data=data)


def build(config: Config) -> Experiment:
    """Build the network, optimizer and schedule of a validated ``config``."""
    spec = config.spec if config.spec is not None else describe(config.data["data"])
    schedule = config.data.get("schedule")
    return Experiment(
        network=build_network(config, spec),
        optimizer=make(OPTIMIZER, config.data["optimizer"]),
        schedule=make(SCHEDULE, schedule) if schedule else None,
        spec=spec,
        config=config,
    )

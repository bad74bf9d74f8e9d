"""Turn a validated Config into objects: the built network, its optimizer and schedule.

Building is deterministic: the network's generator is seeded from ``config.seed`` and the
layers are built in order from the data set's input shape, so the same config always gives
bit-identical weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from nnctl.config.components import LAYER, OPTIMIZER, SCHEDULE, make
from nnctl.config.model import frozen_indices
from nnctl.core import NeuralNetwork
from nnctl.data import DataSpec, describe

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
    network = NeuralNetwork(
        layers,
        model["loss"],
        seed=config.data["seed"],
        dtype=model["dtype"],
        input_shape=spec.input_shape,
    )
    network.frozen = frozen_indices(model.get("freeze") or [], model["layers"])
    return network


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

"""The pure-NumPy core: layers, activations, losses, initializers, optimizers, schedules.

Nothing here imports click, yaml or tqdm or does I/O.
"""

from nnctl.core.activations import (
    ACTIVATIONS,
    ELU,
    Activation,
    ArcTan,
    LeakyReLU,
    Linear,
    ReLU,
    Sigmoid,
    SoftMax,
    Tanh,
    initialize_activation,
)
from nnctl.core.conv import Conv2D, Pool2D
from nnctl.core.initializers import INITIALIZERS, initialize_weights
from nnctl.core.layers import LAYERS, Dropout, Flatten, FullyConnected, Layer
from nnctl.core.losses import L2, LOSSES, CrossEntropy, Loss, initialize_loss
from nnctl.core.network import NeuralNetwork

__all__ = [
    "ACTIVATIONS",
    "ELU",
    "INITIALIZERS",
    "L2",
    "LAYERS",
    "LOSSES",
    "Activation",
    "ArcTan",
    "Conv2D",
    "CrossEntropy",
    "Dropout",
    "Flatten",
    "FullyConnected",
    "Layer",
    "LeakyReLU",
    "Linear",
    "Loss",
    "NeuralNetwork",
    "Pool2D",
    "ReLU",
    "Sigmoid",
    "SoftMax",
    "Tanh",
    "initialize_activation",
    "initialize_loss",
    "initialize_weights",
]  # fmt: skip

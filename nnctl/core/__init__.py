"""The pure-NumPy core: layers, activations, losses, initializers, optimizers, schedules.

Nothing here imports click, yaml or tqdm or does I/O.
"""

from nnctl.core.activation_layer import ActivationLayer
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
from nnctl.core.blocks import Block, Concat, Residual, initialize_layer
from nnctl.core.conv import Conv2D, Pool2D
from nnctl.core.initializers import INITIALIZERS, initialize_weights
from nnctl.core.layers import LAYERS, Dropout, Flatten, FullyConnected, Layer
from nnctl.core.losses import (
    L1,
    L2,
    LOSSES,
    BinaryCrossEntropy,
    CrossEntropy,
    Huber,
    Loss,
    initialize_loss,
)
from nnctl.core.network import NeuralNetwork
from nnctl.core.normalization import BatchNorm, LayerNorm
from nnctl.core.pooling import GlobalAvgPool, GlobalMaxPool

__all__ = [
    "ACTIVATIONS",
    "ELU",
    "INITIALIZERS",
    "L1",
    "L2",
    "LAYERS",
    "LOSSES",
    "Activation",
    "ActivationLayer",
    "ArcTan",
    "BatchNorm",
    "BinaryCrossEntropy",
    "Block",
    "Concat",
    "Conv2D",
    "CrossEntropy",
    "Dropout",
    "Flatten",
    "FullyConnected",
    "GlobalAvgPool",
    "GlobalMaxPool",
    "Huber",
    "Layer",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "Loss",
    "NeuralNetwork",
    "Pool2D",
    "ReLU",
    "Residual",
    "Sigmoid",
    "SoftMax",
    "Tanh",
    "initialize_activation",
    "initialize_layer",
    "initialize_loss",
    "initialize_weights",
]  # fmt: skip

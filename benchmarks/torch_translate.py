"""Translate an nnctl config's resolved ``model.layers`` into a PyTorch module (NCHW), and
its ``data.augment`` list into PyTorch operations, for the twins in ``benchmarks/``.

The translation is independent of nnctl's layers: only the resolved config (the spec every
``nnctl train`` builds from) is read. It follows nnctl's documented semantics:
- conv2d ``pad: same`` with stride 1 is PyTorch's ``padding="same"``; integer pads map as is;
- ``batch_norm``'s ``momentum`` is Keras's (the weight of the running value), so PyTorch's
  ``momentum`` is ``1 - momentum``;
- a residual's ``auto`` shortcut is the identity when shapes match, else a 1x1 convolution
  without bias at the residual's stride (``projection`` always uses one);
- ``concat`` joins its branches on the channel (or feature) axis, NHWC's last = NCHW's 1;
- weights start from the config's initializer (he/xavier, normal/uniform), biases at zero,
  batch-norm scales at one, as nnctl initializes them;
- a softmax last layer with cross-entropy gives logits (the loss applies the softmax).

PyTorch is optional and never a dependency of nnctl (``pip install torch==2.13.0``).
"""

from __future__ import annotations

import math
import sys

import torch
from torch import nn

ACTIVATIONS = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "linear": None,
}
INITIALIZERS = {  # nnctl name -> (torch initializer, keyword arguments)
    "he_normal": (nn.init.kaiming_normal_, {"nonlinearity": "relu"}),
    "he_uniform": (nn.init.kaiming_uniform_, {"nonlinearity": "relu"}),
    "xavier_normal": (nn.init.xavier_normal_, {}),
    "xavier_uniform": (nn.init.xavier_uniform_, {}),
}


class Untranslatable(Exception):
    """A config feature this translator does not cover (the message names it)."""


def _init(weight: torch.Tensor, spec) -> None:
    name = spec if isinstance(spec, str) else spec.get("type")
    if name not in INITIALIZERS:
        raise Untranslatable(f"weight_init {name!r}")
    init, kwargs = INITIALIZERS[name]
    init(weight, **kwargs)


def _activation(name, where: str):
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise Untranslatable(f"{where}: activation {name!r}")
    return ACTIVATIONS[name]() if ACTIVATIONS[name] else None


class Residual(nn.Module):
    """``activation(F(x) + S(x))`` with S the identity or a 1x1 convolution without bias."""

    def __init__(self, body: nn.Module, shortcut: nn.Module | None, activation) -> None:
        super().__init__()
        self.body, self.shortcut = body, shortcut
        self.activation = activation or nn.Identity()

    def forward(self, x):
        s = x if self.shortcut is None else self.shortcut(x)
        return self.activation(self.body(x) + s)


class Concat(nn.Module):
    """Branches side by side, joined on axis 1 (channels or features)."""

    def __init__(self, branches: list[nn.Module]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x):
        return torch.cat([branch(x) for branch in self.branches], dim=1)


class GlobalPool(nn.Module):
    """Mean or max over the image axes: (N, C, H, W) -> (N, C)."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode

    def forward(self, x):
        return x.mean((2, 3)) if self.mode == "average" else x.amax((2, 3))


class Translator:
    """Builds modules layer by layer, tracking the NHWC (or vector) shape as nnctl does."""

    def __init__(self, final_logits: bool) -> None:
        self.final_logits = final_logits

    def sequence(self, layers: list[dict], shape: tuple, where: str, top: bool = False):
        modules = []
        for i, layer in enumerate(layers):
            last = top and i == len(layers) - 1
            new, shape = self.layer(layer, shape, f"{where}[{i}]", last)
            modules.extend(new)
        return nn.Sequential(*modules), shape

    def layer(self, spec: dict, shape: tuple, where: str, last: bool):
        kind = spec["type"]
        method = getattr(self, f"_{kind}", None)
        if method is None:
            raise Untranslatable(f"{where}: layer type {kind!r}")
        modules, shape = method(spec, shape, where)
        act = spec.get("activation", "linear") if kind not in ("activation", "residual") else None
        if act is not None:
            if last and act == "softmax" and self.final_logits:
                act = "linear"
            module = _activation(act, where)
            if module is not None:
                modules.append(module)
        return modules, shape

    # -- layers ---------------------------------------------------------------------------

    def _conv2d(self, spec, shape, where):
        rows, cols, channels = shape
        (kr, kc), stride = spec["kernel_shape"], spec["stride"]
        sr, sc = (stride, stride) if isinstance(stride, int) else stride
        pad = spec["pad"]
        if pad == "same":
            if (sr, sc) != (1, 1) or kr % 2 == 0 or kc % 2 == 0:
                raise Untranslatable(f"{where}: pad 'same' with a stride or an even kernel")
            padding, (pr, pc) = "same", (kr // 2, kc // 2)
        else:
            pr, pc = (0, 0) if pad == "valid" else (pad, pad) if isinstance(pad, int) else pad
            padding = (pr, pc)
        conv = nn.Conv2d(channels, spec["n_out"], (kr, kc), (sr, sc), padding, bias=spec["bias"])
        _init(conv.weight, spec["weight_init"])
        if conv.bias is not None:
            nn.init.zeros_(conv.bias)
        out = ((rows + 2 * pr - kr) // sr + 1, (cols + 2 * pc - kc) // sc + 1, spec["n_out"])
        return [conv], out

    def _fully_connected(self, spec, shape, where):
        if len(shape) != 1:
            raise Untranslatable(f"{where}: fully_connected on images (add a flatten)")
        linear = nn.Linear(shape[0], spec["n_out"], bias=spec["bias"])
        _init(linear.weight, spec["weight_init"])
        if linear.bias is not None:
            nn.init.zeros_(linear.bias)
        return [linear], (spec["n_out"],)

    def _pool2d(self, spec, shape, where):
        if spec["mode"] not in ("max", "average"):
            raise Untranslatable(f"{where}: pool2d mode {spec['mode']!r}")
        (kr, kc), stride, pad = spec["kernel_shape"], spec["stride"], spec["pad"]
        sr, sc = (stride, stride) if isinstance(stride, int) else stride
        pr, pc = (pad, pad) if isinstance(pad, int) else pad
        pool = nn.MaxPool2d if spec["mode"] == "max" else nn.AvgPool2d
        rows, cols, channels = shape
        out = ((rows + 2 * pr - kr) // sr + 1, (cols + 2 * pc - kc) // sc + 1, channels)
        return [pool((kr, kc), (sr, sc), (pr, pc))], out

    def _flatten(self, spec, shape, where):
        if len(shape) == 3:  # nnctl flattens NHWC: permute NCHW back before flattening
            return [Permute((0, 2, 3, 1)), nn.Flatten()], (math.prod(shape),)
        return [nn.Flatten()], (math.prod(shape),)

    def _dropout(self, spec, shape, where):
        return [nn.Dropout(spec["rate"])], shape

    def _batch_norm(self, spec, shape, where):
        norm = nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d
        return [norm(shape[-1], eps=spec["eps"], momentum=1.0 - spec["momentum"])], shape

    def _layer_norm(self, spec, shape, where):
        if len(shape) != 1:
            raise Untranslatable(f"{where}: layer_norm on images")
        return [nn.LayerNorm(shape[0], eps=spec["eps"])], shape

    def _global_avg_pool(self, spec, shape, where):
        return [GlobalPool("average")], (shape[-1],)

    def _global_max_pool(self, spec, shape, where):
        return [GlobalPool("max")], (shape[-1],)

    def _activation(self, spec, shape, where):
        module = _activation(spec["activation"], where)
        return ([module] if module is not None else []), shape

    def _residual(self, spec, shape, where):
        body, out = self.sequence(spec["layers"], shape, f"{where}.layers")
        shortcut = None
        if spec["shortcut"] == "projection" or (spec["shortcut"] == "auto" and out != shape):
            if len(shape) != 3:
                raise Untranslatable(f"{where}: a projection shortcut on vectors")
            stride = (math.ceil(shape[0] / out[0]), math.ceil(shape[1] / out[1]))
            shortcut = nn.Conv2d(shape[-1], out[-1], 1, stride, bias=False)
            nn.init.xavier_uniform_(shortcut.weight)
        return [Residual(body, shortcut, _activation(spec["activation"], where))], out

    def _concat(self, spec, shape, where):
        branches, shapes = [], []
        for j, layers in enumerate(spec["branches"]):
            branch, out = self.sequence(layers, shape, f"{where}.branches[{j}]")
            branches.append(branch)
            shapes.append(out)
        joined = (*shapes[0][:-1], sum(s[-1] for s in shapes))
        return [Concat(branches)], joined


class Permute(nn.Module):
    def __init__(self, order) -> None:
        super().__init__()
        self.order = order

    def forward(self, x):
        return x.permute(*self.order)


def torch_model(layers: list[dict], input_shape, final_logits: bool) -> nn.Module:
    """The config's layers as one ``nn.Sequential`` taking NCHW images (or vectors)."""
    try:
        model, _ = Translator(final_logits).sequence(
            layers, tuple(input_shape), "model.layers", top=True
        )
    except Untranslatable as error:
        sys.exit(f"{error}: not translated to PyTorch here")
    return model


# -- augmentation ---------------------------------------------------------------------------


def random_crop(x: torch.Tensor, pad: int, fill: float, generator) -> torch.Tensor:
    """Pad (N, C, H, W) by ``pad`` with ``fill`` and crop H x W at a random offset per image."""
    n, _, rows, cols = x.shape
    padded = nn.functional.pad(x, (pad, pad, pad, pad), value=fill)
    top = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    left = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    r = (top[:, None] + torch.arange(rows))[:, None, :, None]  # (N, 1, H, 1)
    c = (left[:, None] + torch.arange(cols))[:, None, None, :]  # (N, 1, 1, W)
    batch = torch.arange(n)[:, None, None, None]
    channel = torch.arange(x.shape[1])[None, :, None, None]
    return padded[batch, channel, r, c]


def flip(x: torch.Tensor, horizontal: bool, vertical: bool, p: float, generator):
    """Mirror each image of (N, C, H, W) left-right / upside down with probability ``p``."""
    for dim, enabled in ((3, horizontal), (2, vertical)):
        if enabled:
            chosen = (torch.rand(len(x), generator=generator) < p)[:, None, None, None]
            x = torch.where(chosen, x.flip(dim), x)
    return x


def augmenter(specs: list[dict] | None, fill: float, seed: int):
    """A function batch -> augmented batch for ``data.augment`` (crop and flip), drawing
    from its own ``torch.Generator``; None without augmentation."""
    if not specs:
        return None
    generator = torch.Generator().manual_seed(seed)
    steps = []
    for i, spec in enumerate(specs):
        if spec["type"] == "random_crop" and spec["padding_mode"] == "constant":
            steps.append(lambda x, s=spec: random_crop(x, s["pad"], fill, generator))
        elif spec["type"] == "flip":
            steps.append(
                lambda x, s=spec: flip(x, s["horizontal"], s["vertical"], s["p"], generator)
            )
        else:
            sys.exit(f"data.augment[{i}]: {spec['type']} is not translated to PyTorch here")

    def apply(x):
        for step in steps:
            x = step(x)
        return x

    return apply

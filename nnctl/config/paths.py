"""Key paths: ``("model", "layers", 2, "n_out")`` ⇄ ``"model.layers[2].n_out"``.

Every error names the value it is about by such a path, and the YAML loader records the
line of every path, so the two must agree on one spelling.
"""

from __future__ import annotations

import re

from nnctl.core.checks import show

Key = str | int
Path = tuple[Key, ...]

_TOKEN = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_\-]*)|\[(-?\d+)\]|\.(-?\d+)")


def format_path(parts: Path) -> str:
    """``("model", "layers", 2, "n_out")`` → ``"model.layers[2].n_out"``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def join(path: str, key: Key) -> str:
    """The path of ``key`` inside the value at ``path``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def parse_path(text: str) -> Path:
    """``"model.layers[0].n_out"`` (or ``model.layers.0.n_out``) → parts; ValueError if bad."""
    parts: list[Key] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or (pos == 0 and text.startswith(".")):
            raise ValueError(f"cannot parse key path {show(text)} at position {pos + 1}")
        name, index, dotted_index = match.groups()
        parts.append(name if name is not None else int(index or dotted_index))
        pos = match.end()
    if not parts:
        raise ValueError("empty key path")
    return tuple(parts)


def parent(path: str) -> str:
    """``"model.layers[2].n_out"`` → ``"model.layers[2]"`` → ``"model.layers"`` → ``"model"``."""
    match = re.search(r"(\.[^.\[\]]+|\[-?\d+\])$", path)
    return path[: match.start()] if match else ""

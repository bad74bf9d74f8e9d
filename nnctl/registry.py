"""Name → class registries, one per family of components.

A registry maps the snake_case names used in configs (``fully_connected``,
``he_uniform``, ``adam``) to the classes or factories that implement them.
Lookups that fail raise ConfigError naming the valid choices and the closest match.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterator
from typing import Any

#: The default of an argument or key that has none: the user must give it. The marker
#: ``inspect.signature`` uses, so constructor signatures and declared key tables agree.
REQUIRED = inspect.Parameter.empty


def did_you_mean(name: str, choices: list[str]) -> str:
    """Return ``"; did you mean 'x'?"`` for the closest choice, or ``""``."""
    close = difflib.get_close_matches(str(name), choices, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def compact(config: dict):
    """A component's config as written: ``{type: relu}`` → ``"relu"``; configs with
    arguments stay mappings (the inverse of "a bare name means ``{type: name}``")."""
    return config["type"] if len(config) == 1 else config


class Registry:
    """A named family of components (``LAYERS``, ``OPTIMIZERS``, ...)."""

    def __init__(self, family: str):
        self.family = family
        self._entries: dict[str, Any] = {}
        self._retired: dict[str, str] = {}  # removed name -> what to use instead

    def register(self, name: str) -> Callable[[Any], Any]:
        """Class decorator: ``@LAYERS.register("conv2d")``; sets ``cls.type_name``."""

        def add(obj: Any) -> Any:
            if name in self._entries:
                raise KeyError(f"{self.family} '{name}' is registered twice")
            self._entries[name] = obj
            if isinstance(obj, type):
                obj.type_name = name
            return obj

        return add

    def retire(self, name: str, hint: str) -> None:
        """Mark ``name`` as removed: looking it up raises ConfigError with ``hint``."""
        self._retired[name] = hint

    def get(self, name: str, path: str = "") -> Any:
        """The component registered as ``name``; ConfigError with suggestions if none."""
        from nnctl.errors import ConfigError

        if isinstance(name, str) and name in self._retired:
            raise ConfigError(path, f"{self.family} '{name}' was removed; {self._retired[name]}")
        if not isinstance(name, str) or name not in self._entries:
            choices = self.names()
            hint = did_you_mean(name, choices) if isinstance(name, str) else ""
            raise ConfigError(
                path,
                f"unknown {self.family} '{name}'{hint} (choose from {', '.join(choices)})",
            )
        return self._entries[name]

    def name_of(self, obj: Any) -> str:
        """The registered name of a class or instance."""
        cls = obj if isinstance(obj, type) else type(obj)
        for name, entry in self._entries.items():
            if entry is cls:
                return name
        raise KeyError(f"{cls.__name__} is not a registered {self.family}")

    def names(self) -> list[str]:
        return sorted(self._entries)

    def items(self) -> Iterator[tuple[str, Any]]:
        return iter(sorted(self._entries.items()))

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)

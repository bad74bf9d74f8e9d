"""Every YAML text nnctl reads (config files, ``--set`` values, sweep files, a run's
config.yaml) is parsed here, with the safe loader and the same limits.

Only plain data is accepted: mappings with string keys, lists, strings, numbers, booleans
and null. Tags that would construct Python objects (``!!python/object``) are refused with
a clear message; ``1e-3`` is read as a float (YAML 1.2), not as the string ``"1e-3"``.

Limits: no document nests deeper than ``MAX_DEPTH`` levels, and none holds more than
``MAX_NODES`` values once its aliases are expanded (an "alias bomb" of a few hundred bytes
would otherwise expand to gigabytes); a ``Budget`` shares that count between the files of
one config.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from nnctl.config.paths import join
from nnctl.core.checks import cut, show
from nnctl.errors import ConfigError

# Guards against alias bombs ("billion laughs") and deep nesting: a config is never this
# large (the largest example has about 60 values) nor this deep (about 6 levels).
MAX_NODES = 200_000
MAX_DEPTH = 100
MERGE_TAG = "tag:yaml.org,2002:merge"
STR_TAG = "tag:yaml.org,2002:str"


class LimitError(yaml.MarkedYAMLError):
    """A document nests too deeply or holds too many values."""


class Budget:
    """How many more values the documents of one config may hold, aliases expanded."""

    def __init__(self, nodes: int = MAX_NODES):
        self.limit = self.remaining = nodes

    def spend(self, node) -> None:
        """Count the values below ``node`` (an alias as often as it is used); LimitError
        as soon as the budget is exhausted, so a bomb is never expanded."""
        stack = [node]
        while stack:
            node = stack.pop()
            self.remaining -= 1
            if self.remaining < 0:
                problem = (
                    f"document too large: more than {self.limit:,} values once aliases are expanded"
                )
                raise LimitError(problem=problem, problem_mark=node.start_mark)
            if isinstance(node, yaml.SequenceNode):
                stack.extend(node.value)
            elif isinstance(node, yaml.MappingNode):
                stack.extend(item for pair in node.value for item in pair)


class SafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that reads ``1e-3`` and ``5E+2`` as floats and refuses to nest
    deeper than ``MAX_DEPTH`` (the composer is recursive: it would hit Python's limit)."""

    def __init__(self, stream):
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent, index):
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                problem = f"nested more than {MAX_DEPTH} levels deep"
                raise LimitError(problem=problem, problem_mark=self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


SafeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d[\d_]*)?(?:\.\d*)?[eE][-+]?\d+$"),
    list("-+0123456789."),
)


def _parse(text: str, budget: Budget | None, inspect=None):
    """The document in ``text`` (None if empty), after ``inspect(node)`` saw its nodes.

    Raises yaml.YAMLError: not YAML, a tag that is not plain data, or a LimitError.
    """
    loader = SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        (budget or Budget()).spend(node)
        if inspect is not None:
            inspect(node)
        try:
            return loader.construct_document(node)
        except ValueError as error:  # a date that does not exist, an integer too long
            problem = f"cannot read a value: {str(error).split(';')[0]}"
            raise yaml.YAMLError(problem) from None
    finally:
        loader.dispose()


def parse_scalar(text: str, budget: Budget | None = None):
    """A ``--set`` value as YAML (``0.01`` → float, ``true`` → bool, ``[3, 3]`` → list).

    Raises yaml.YAMLError (LimitError for a value too deep or too large)."""
    return _parse(text, budget)


def parse_document(text: str):
    """Any other YAML text (a run's config.yaml): plain data within the limits; ValueError
    naming the problem otherwise."""
    try:
        return _parse(text, None)
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ValueError(problem) from None


def read_text(path: Path, shown: str) -> str:
    """The file's text; ConfigError for a missing file, a directory or unreadable bytes."""
    if not path.exists():
        raise ConfigError("", "no such file", file=shown)
    if path.is_dir():
        raise ConfigError("", "is a directory, not a config file", file=shown)
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError("", f"is not UTF-8 text ({error.reason})", file=shown) from None
    except OSError as error:
        raise ConfigError("", f"cannot read: {error.strerror}", file=shown) from None


def load_yaml(text: str, shown: str, budget: Budget | None = None) -> tuple[object, dict[str, int]]:
    """Parse ``text``; return the data and a ``{key path: 1-based line}`` map.

    ``budget`` counts the values of several files together (a config and what it extends).
    """
    lines: dict[str, int] = {}
    try:
        data = _parse(text, budget, lambda node: _walk(node, "", lines, shown))
    except LimitError as error:
        mark = error.problem_mark
        raise ConfigError("", error.problem, file=shown, line=mark.line + 1) from None
    except yaml.constructor.ConstructorError as error:
        raise _tag_error(error, shown) from None
    except yaml.MarkedYAMLError as error:
        raise _syntax_error(error, shown) from None
    except yaml.YAMLError as error:
        raise ConfigError("", f"invalid YAML: {cut(str(error))}", file=shown) from None
    if data is None:
        raise ConfigError("", "file is empty; expected a mapping of config keys", file=shown)
    return data, lines


def _line(node) -> int:
    return node.start_mark.line + 1


def _walk(node, path: str, lines: dict[str, int], shown: str) -> None:
    """Record the line of every key and list item below ``node``; reject non-string keys."""
    if isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines.setdefault(join(path, index), _line(item))
            _walk(item, join(path, index), lines, shown)
    elif isinstance(node, yaml.MappingNode):
        _walk_mapping(node, path, lines, shown)


def _walk_mapping(node, path: str, lines: dict[str, int], shown: str) -> None:
    seen: dict[str, int] = {}
    for key_node, value_node in node.value:
        if key_node.tag == MERGE_TAG:
            merged = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for source in merged:
                _walk(source, path, lines, shown)
            continue
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != STR_TAG:
            where = path or "top level"
            raise ConfigError(
                path,
                f"keys must be strings; got {_written(key_node)} (quote it) in {where}",
                file=shown,
                line=_line(key_node),
            )
        key = key_node.value
        if key in seen:
            raise ConfigError(
                join(path, key),
                f"duplicate key '{key}' (first set on line {seen[key]})",
                file=shown,
                line=_line(key_node),
            )
        seen[key] = _line(key_node)
        lines[join(path, key)] = _line(key_node)
        _walk(value_node, join(path, key), lines, shown)


def _written(node) -> str:
    """A key as the message shows it: a scalar quoted (``'1'``), a list or mapping as it
    was written (``a list [a, b]``), cut to a readable length."""
    if isinstance(node, yaml.ScalarNode):
        return show(node.value)
    kind = "a list" if isinstance(node, yaml.SequenceNode) else "a mapping"
    start, end = node.start_mark, node.end_mark
    if not isinstance(start.buffer, str):
        return kind
    return f"{kind} {cut(' '.join(start.buffer[start.index : end.index].split()))}"


def _syntax_error(error: yaml.MarkedYAMLError, shown: str) -> ConfigError:
    mark = error.problem_mark or error.context_mark
    problem = error.problem or "syntax error"
    if error.context and problem.startswith("but "):
        problem = f"{error.context}, {problem}"
    elif error.context:
        problem = f"{problem} ({error.context})"
    return ConfigError(
        "", f"invalid YAML: {problem}", file=shown, line=mark.line + 1 if mark else None
    )


def _tag_error(error: yaml.constructor.ConstructorError, shown: str) -> ConfigError:
    match = re.search(r"tag '([^']+)'", error.problem or "")
    tag = match.group(1).replace("tag:yaml.org,2002:", "!!") if match else "?"
    mark = error.problem_mark
    return ConfigError(
        "",
        f"YAML tag '{tag}' is not allowed: configs hold plain data only "
        "(mappings, lists, strings, numbers, booleans, null)",
        file=shown,
        line=mark.line + 1 if mark else None,
    )

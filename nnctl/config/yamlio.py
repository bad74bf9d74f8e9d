"""Read one YAML file with the safe loader and remember the line of every key path.

Only plain data is accepted: mappings with string keys, lists, strings, numbers, booleans
and null. Tags that would construct Python objects (``!!python/object``) are refused with
a clear message; ``1e-3`` is read as a float (YAML 1.2), not as the string ``"1e-3"``.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from nnctl.config.paths import join
from nnctl.errors import ConfigError

# Guards against alias bombs ("billion laughs"): a config is never this large.
MAX_NODES = 200_000
MERGE_TAG = "tag:yaml.org,2002:merge"


class SafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads ``1e-3`` and ``5E+2`` as floats."""


SafeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d[\d_]*)?(?:\.\d*)?[eE][-+]?\d+$"),
    list("-+0123456789."),
)


def parse_scalar(text: str):
    """A ``--set`` value as YAML (``0.01`` → float, ``true`` → bool, ``[3, 3]`` → list)."""
    loader = SafeLoader(text)
    try:
        node = loader.get_single_node()
        return None if node is None else loader.construct_document(node)
    finally:
        loader.dispose()


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


def load_yaml(text: str, shown: str) -> tuple[object, dict[str, int]]:
    """Parse ``text``; return the data and a ``{key path: 1-based line}`` map."""
    loader = SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise ConfigError("", "file is empty; expected a mapping of config keys", file=shown)
        lines: dict[str, int] = {}
        _walk(node, "", lines, shown, [0])
        return loader.construct_document(node), lines
    except yaml.constructor.ConstructorError as error:
        raise _tag_error(error, shown) from None
    except yaml.MarkedYAMLError as error:
        raise _syntax_error(error, shown) from None
    except yaml.YAMLError as error:
        raise ConfigError("", f"invalid YAML: {error}", file=shown) from None
    finally:
        loader.dispose()


def _line(node) -> int:
    return node.start_mark.line + 1


def _walk(node, path: str, lines: dict[str, int], shown: str, count: list[int]) -> None:
    """Record the line of every key and list item below ``node``; reject non-string keys."""
    count[0] += 1
    if count[0] > MAX_NODES:
        raise ConfigError("", f"document too large (more than {MAX_NODES} values)", file=shown)
    if isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines.setdefault(join(path, index), _line(item))
            _walk(item, join(path, index), lines, shown, count)
    elif isinstance(node, yaml.MappingNode):
        _walk_mapping(node, path, lines, shown, count)


def _walk_mapping(node, path: str, lines: dict[str, int], shown: str, count: list[int]) -> None:
    seen: dict[str, int] = {}
    for key_node, value_node in node.value:
        if key_node.tag == MERGE_TAG:
            merged = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for source in merged:
                _walk(source, path, lines, shown, count)
            continue
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
            where = path or "top level"
            raise ConfigError(
                path,
                f"keys must be strings; got {key_node.value!r} (quote it) in {where}",
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
        _walk(value_node, join(path, key), lines, shown, count)


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

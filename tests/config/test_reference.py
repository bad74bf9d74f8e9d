"""docs/config-reference.md is generated from the code and must match it."""

from __future__ import annotations

from pathlib import Path

import pytest

from nnctl.config.components import FAMILIES
from nnctl.config.reference import family_section, generate
from nnctl.config.schema import TRAIN, TRAIN_SECTIONS
from nnctl.data import DATA_DEFAULTS, LOADERS
from nnctl.data.config import BUILTIN_KEYS, USER_KEYS

DOC = Path(__file__).parents[2] / "docs" / "config-reference.md"


def test_reference_is_up_to_date():
    assert DOC.read_text(encoding="utf-8") == generate(), (
        "docs/config-reference.md is stale: run "
        "`python -m nnctl.config.reference > docs/config-reference.md`"
    )


@pytest.mark.parametrize("family", FAMILIES, ids=[f.kind for f in FAMILIES])
def test_every_component_and_argument_is_documented(family):
    text = generate()
    for name in family.registry.names():
        assert f"### `{name}`" in text
        for argument in family.arguments(name):
            assert f"| `{argument}` |" in text


def test_every_train_key_is_documented():
    text = generate()
    for key in [*TRAIN, *TRAIN_SECTIONS]:
        assert f"`{key}`" in text


def test_every_data_key_is_documented():
    text = generate()
    keys = [*DATA_DEFAULTS, *BUILTIN_KEYS, *USER_KEYS]
    keys += [key for loader in LOADERS.names() for key in LOADERS.get(loader).keys]
    for key in keys:
        assert f"`{key}`" in text, key
    for key in [*DATA_DEFAULTS, *BUILTIN_KEYS, *USER_KEYS]:
        assert f"| `{key}` |" in text, key


@pytest.mark.parametrize("family", FAMILIES, ids=[f.kind for f in FAMILIES])
def test_every_component_describes_itself(family):
    """Each entry's text is the component's own docstring, never a base class's."""
    text = "\n".join(family_section(family.kind, family))
    classes = [family.registry.get(name) for name in family.registry.names()]
    for name, cls in zip(family.registry.names(), classes):
        own = vars(cls).get("__doc__")
        assert own, f"{family.kind} '{name}' has no docstring of its own"
        section = text.split(f"### `{name}`", 1)[1].split("###", 1)[0]
        assert " ".join(own.split("\n\n")[0].split()) in section
    for base in {cls.__mro__[1] for cls in classes} - set(classes):
        doc = vars(base).get("__doc__")
        if doc:
            assert " ".join(doc.split("\n\n")[0].split()) not in text, base

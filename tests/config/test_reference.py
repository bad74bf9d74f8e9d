"""docs/config-reference.md is generated from the code and must match it."""

from __future__ import annotations

from pathlib import Path

import pytest

from nnctl.config.components import FAMILIES
from nnctl.config.reference import generate
from nnctl.config.schema import TRAIN, TRAIN_SECTIONS

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

"""Fixtures for config tests: write YAML files and data files."""

from __future__ import annotations

import pytest
import yaml


@pytest.fixture
def write(tmp_path):
    """``write(content, name="c.yaml")``: a dict is dumped as YAML, a str written as is."""

    def _write(content, name: str = "c.yaml"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        text = content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
        path.write_text(text, encoding="utf-8")
        return path

    return _write


@pytest.fixture
def regression_csv(tmp_path):
    """A small CSV with two features and a real-valued target in column ``y``."""
    path = tmp_path / "reg.csv"
    rows = ["a,b,y"] + [f"{i},{i * 0.5},{i * 0.37 + 0.1:.3f}" for i in range(40)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path

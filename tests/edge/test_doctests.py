"""The docstring examples in edge_image run and hold."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "edge_image.contract.decode",
    "edge_image.config",
    "edge_image.preprocess",
    "edge_image.backends",
    "edge_image.draw",
    "edge_image.metrics",
    "edge_image.outputs",
    "edge_image.sdnotify",
    "edge_image.contract.errors",
    "edge_image.contract.fields",
    "edge_image.contract.manifest",
    "edge_image.contract.progress",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0

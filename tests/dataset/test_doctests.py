"""The examples in the dataset modules' docstrings are true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "training_scripts.dataset.model",
    "training_scripts.dataset.darknet_layout",
    "training_scripts.dataset.flickr27",
    "training_scripts.dataset.validate",
    "training_scripts.dataset.split",
    "training_scripts.dataset.write",
    "training_scripts.dataset.report",
    "training_scripts.dataset.anchors",
    "training_scripts.dataset.logos",
    "edge_image.contract.progress",
    "training_scripts.dataset.yolo",
    "training_scripts.cli.synth",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0

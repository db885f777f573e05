"""The usage examples in the darknet modules' docstrings run and hold."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["cfg", "profiles", "weights", "forward", "valid"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"training_scripts.darknet.{name}")
    result = doctest.testmod(module)
    assert result.failed == 0
    assert result.attempted > 0

"""Shared pytest set-up. Fixtures live in ``tests/fixtures/<area>.py``, one module per area,
so session-scoped artefacts (a darknet build, a synthetic dataset, a trained checkpoint,
a model bundle) are made once and reused across the suite."""

from __future__ import annotations

pytest_plugins = [
    "tests.fixtures.darknet",
    "tests.fixtures.data",
    "tests.fixtures.training",
    "tests.fixtures.bundle",
    "tests.fixtures.cdk",
]

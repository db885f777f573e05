"""Snapshot of the synthesized templates, asset hashes and the CDK version fingerprint masked.

Any change to the stacks shows up as a diff here; review it, then refresh the stored JSON with
``UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/cdk/test_snapshot.py``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.cdk import Synthesized

SNAPSHOTS = Path(__file__).parent / "snapshots"
_HASH = re.compile(r"\b[0-9a-f]{64}\b")


def normalize(value: Any) -> Any:
    """Replace 64-hex asset hashes with "<hash>" and the CDK metadata blob with "<analytics>"."""
    if isinstance(value, dict):
        return {k: "<analytics>" if k == "Analytics" else normalize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize(v) for v in value]
    if isinstance(value, str):
        return _HASH.sub("<hash>", value)
    return value


def test_normalize_masks_hashes_only() -> None:
    key = "a" * 64 + ".zip"
    assert normalize({"S3Key": key, "N": 3, "L": ["x", {"Analytics": "v2:deflate64:..."}]}) == {
        "S3Key": "<hash>.zip",
        "N": 3,
        "L": ["x", {"Analytics": "<analytics>"}],
    }


@pytest.mark.parametrize("which", ["synthesized", "synthesized_variant"])
def test_templates_match_snapshot(which: str, request: pytest.FixtureRequest) -> None:
    synth: Synthesized = request.getfixturevalue(which)
    update = os.environ.get("UPDATE_SNAPSHOTS") == "1"
    for name, template in sorted(synth.templates.items()):
        path = SNAPSHOTS / f"{name}.json"
        actual = json.dumps(normalize(template), indent=1, sort_keys=True) + "\n"
        if update:
            path.write_text(actual)
        assert path.exists(), f"{path} missing: run with UPDATE_SNAPSHOTS=1 and review the new file"
        assert json.loads(path.read_text()) == json.loads(actual), f"{name} differs from {path}"

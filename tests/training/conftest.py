"""Fixtures local to the training tests."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FAKE = Path(__file__).with_name("fake_darknet.py")


@pytest.fixture()
def fake_darknet(tmp_path: Path) -> Path:
    """An executable wrapper that runs fake_darknet.py (pjreddie's behaviour) with this interpreter."""
    wrapper = tmp_path / "darknet"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="{REPO}" exec "{sys.executable}" "{FAKE}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return wrapper

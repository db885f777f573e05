"""The darkflow role's loader patch, run through the role on a fixture loader.py.

The fixture (files/darkflow_loader_fixture.py.txt) reproduces the lines of darkflow's
darkflow/utils/loader.py that matter: the header is unpacked into major/minor/revision/seen and
``self.offset = 16`` follows. After the role's patch-loader tasks the walker must read weights
with a 16-byte header (0.1.0, the original VOC weights) and a 20-byte header (0.2.0, every
self-trained file) exactly to their end, and a second run must change nothing.
"""

from __future__ import annotations

import importlib.util
import shutil
import struct
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from tests.ansible.runner import run_playbook

FIXTURE = Path(__file__).parent / "files" / "darkflow_loader_fixture.py.txt"
PATCHED_MARK = "# edgeyolo: header by version"

PLAYBOOK = """\
- name: Patch a darkflow loader with the role's tasks
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Run the darkflow role's patch-loader entry point
      ansible.builtin.include_role:
        name: darkflow
        tasks_from: patch-loader.yml
      vars:
        darkflow_loader_path: "{{ loader }}"
"""


def _patch(tmp_path: Path, loader: Path):
    playbook = tmp_path / "patch.yml"
    playbook.write_text(PLAYBOOK, encoding="utf-8")
    return run_playbook(
        playbook,
        inventory="localhost,",
        tmp=tmp_path,
        extra_vars={"loader": str(loader), "ansible_python_interpreter": sys.executable},
        timeout=300,
    )


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"loader_{abs(hash(path))}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _weights(path: Path, major: int, minor: int, values: np.ndarray) -> Path:
    """A darknet .weights file: header (seen as int64 from version 0.2) then float32 values."""
    seen = struct.pack("<q", 12800) if major * 10 + minor >= 2 else struct.pack("<i", 12800)
    path.write_bytes(struct.pack("<3i", major, minor, 0) + seen + values.astype("<f4").tobytes())
    return path


def _read_all(module: ModuleType, path: Path, count: int) -> tuple[int, np.ndarray, bool]:
    walker = module.weights_walker(str(path))
    start = walker.offset
    values = np.array(walker.walk(count)).reshape(-1)
    return start, values, walker.eof


@pytest.fixture(scope="module")
def patched(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    tmp = tmp_path_factory.mktemp("darkflow")
    loader = tmp / "loader.py"
    shutil.copy(FIXTURE, loader)
    runs = [_patch(tmp, loader), _patch(tmp, loader)]
    return loader, runs


def test_patch_applies_once_then_changes_nothing(patched: tuple[Path, list]) -> None:
    loader, (first, second) = patched
    assert first.returncode == 0, first.tail()
    assert first.changed() == 1, first.tail()
    assert second.returncode == 0, second.tail()
    assert second.changed() == 0, second.tail()
    text = loader.read_text(encoding="utf-8")
    assert text.count(PATCHED_MARK) == 1
    assert "            self.offset = 16\n" not in text
    # Only the offset line differs from the fixture.
    before = FIXTURE.read_text(encoding="utf-8").splitlines()
    after = text.splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert len(changed) == 1 and changed[0][0].strip() == "self.offset = 16"
    assert changed[0][1].startswith("            self.offset = 20 if (major * 10 + minor >= 2")


@pytest.mark.parametrize(("major", "minor", "header"), [(0, 1, 16), (0, 2, 20), (1, 0, 20)])
def test_patched_loader_reads_both_header_sizes(
    patched: tuple[Path, list], tmp_path: Path, major: int, minor: int, header: int
) -> None:
    loader, _ = patched
    module = _load(loader)
    values = np.linspace(-1.5, 2.5, 37, dtype=np.float32)
    weights = _weights(tmp_path / f"v{major}{minor}.weights", major, minor, values)
    assert weights.stat().st_size == header + 4 * values.size
    start, read, eof = _read_all(module, weights, values.size)
    assert start == header
    np.testing.assert_array_equal(read, values)
    assert eof  # the walker ended exactly at the file size: darkflow's size assertion holds


def test_unpatched_fixture_reproduces_the_bug(tmp_path: Path) -> None:
    """Without the patch a 20-byte header is read from byte 16: values shift, 4 bytes are left over."""
    module = _load(shutil.copy(FIXTURE, tmp_path / "loader.py"))
    values = np.arange(1, 9, dtype=np.float32)
    start, read, eof = _read_all(module, _weights(tmp_path / "self.weights", 0, 2, values), values.size)
    assert start == 16
    assert not eof
    assert not np.array_equal(read, values)


def test_seed_hardcoded_20_is_replaced_too(tmp_path: Path) -> None:
    """The seed's fix (`self.offset = 20`) broke the 16-byte VOC weights; the role rewrites it as well."""
    loader = tmp_path / "loader.py"
    loader.write_text(
        FIXTURE.read_text(encoding="utf-8").replace("self.offset = 16", "self.offset = 20"), encoding="utf-8"
    )
    run = _patch(tmp_path, loader)
    assert run.returncode == 0, run.tail()
    module = _load(loader)
    values = np.arange(5, dtype=np.float32)
    start, read, eof = _read_all(module, _weights(tmp_path / "voc.weights", 0, 1, values), values.size)
    assert (start, eof) == (16, True)
    np.testing.assert_array_equal(read, values)


def test_loader_without_the_line_fails_clearly(tmp_path: Path) -> None:
    loader = tmp_path / "loader.py"
    loader.write_text(
        FIXTURE.read_text(encoding="utf-8").replace("self.offset = 16", "self.offset = header_size(path)"),
        encoding="utf-8",
    )
    run = _patch(tmp_path, loader)
    assert run.returncode != 0
    assert "no `self.offset = 16` line to patch" in run.output

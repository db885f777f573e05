"""The import graph matches the README's architecture (read from the source, not run).

- ``edge_image.contract`` (the bundle contract) imports nothing from the rest of the project,
  and from outside the standard library only numpy and cryptography;
- ``training_scripts`` and ``cdk`` import from ``edge_image`` only its contract, except the
  system benchmark, which measures the edge service itself;
- importing the contract's modules loads neither the edge service nor numpy (but ``decode``)
  nor training code, so an Ansible controller can run them with the standard library.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "edge_image" / "contract"
#: training-side modules that drive the edge service itself, and why
EDGE_SERVICE_USERS = {
    "training_scripts/bench.py": "the system benchmark measures the edge service's FPS per backend",
}


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """``(line, absolute module name)`` of every import in ``path`` (relative ones resolved)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                yield node.lineno, ".".join([*base, node.module] if node.module else base)
            else:
                assert node.module is not None
                yield node.lineno, node.module


def _python_files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def test_the_contract_imports_only_itself_the_standard_library_numpy_and_cryptography() -> None:
    allowed = set(sys.stdlib_module_names) | {"__future__", "numpy", "cryptography"}
    bad = [
        f"{path.relative_to(ROOT)}:{line}: {name}"
        for path in _python_files("edge_image/contract")
        for line, name in _imports(path)
        if not (name == "edge_image.contract" or name.startswith("edge_image.contract."))
        and name.split(".")[0] not in allowed
    ]
    assert bad == []
    assert len(_python_files("edge_image/contract")) >= 6


def test_training_and_cdk_code_import_only_the_contract_from_edge_image() -> None:
    bad = []
    for path in _python_files("training_scripts", "cdk"):
        relative = path.relative_to(ROOT).as_posix()
        for line, name in _imports(path):
            if name.split(".")[0] != "edge_image" or name.startswith("edge_image.contract"):
                continue
            if relative not in EDGE_SERVICE_USERS:
                bad.append(f"{relative}:{line}: {name}")
    assert bad == []


def test_nothing_imports_the_removed_re_exports() -> None:
    gone = {"training_scripts.errors", "training_scripts.atomic"} | {
        f"edge_image.{m}" for m in ("errors", "atomic", "manifest", "signing", "decode", "progress")
    }
    hits = [
        f"{path.relative_to(ROOT)}:{line}: {name}"
        for path in _python_files("training_scripts", "cdk", "edge_image", "tests")
        for line, name in _imports(path)
        if name in gone
    ]
    assert hits == []
    assert not (ROOT / "training_scripts" / "errors.py").exists()


def test_importing_the_contract_loads_no_service_training_or_third_party_code() -> None:
    code = (
        "import sys\n"
        "import edge_image.contract.manifest, edge_image.contract.signing, edge_image.contract.errors\n"
        "import edge_image.contract.atomic, edge_image.contract.progress\n"
        "tops = {'numpy', 'cv2', 'cryptography', 'training_scripts', 'aiohttp', 'yaml'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in tops\n"
        "             or (m.startswith('edge_image.') and not m.startswith('edge_image.contract'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]", out.stdout

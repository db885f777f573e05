"""Check that the collections pinned in ansible/requirements.yml are the ones Ansible loads.

Galaxy is not reachable from CI, so instead of ``ansible-galaxy collection install -r`` the
Makefile runs ``python ansible/check_collections.py``: it reads the pins, asks
``ansible-galaxy collection list --format json`` what is installed (the pinned ``ansible``
PyPI package bundles them in the virtualenv), prints one line per collection and exits 1 when
one is missing or at another version.

Inputs: ``--requirements FILE`` (default: requirements.yml beside this script),
``--galaxy BIN`` (default: ansible-galaxy next to the running Python). Output: lines
``ok amazon.aws 10.1.2`` / ``error: ...``; exit status 0 or 1.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml


def read_pins(path: Path) -> dict[str, str]:
    """``{name: version}`` from a requirements.yml ``collections:`` list (one-line errors).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "r.yml"
    >>> _ = p.write_text("collections:\\n  - name: a.b\\n    version: '1.2.3'\\n")
    >>> read_pins(p)
    {'a.b': '1.2.3'}
    """
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise SystemExit(f"error: {path}: cannot read ({exc})") from None
    pins: dict[str, str] = {}
    for index, entry in enumerate(document.get("collections") or [], start=1):
        if not isinstance(entry, dict) or "name" not in entry or "version" not in entry:
            raise SystemExit(f"error: {path}: collections entry {index} needs name and version")
        version = str(entry["version"])
        if not version[:1].isdigit():
            raise SystemExit(f"error: {path}: {entry['name']}: pin an exact version, got {version!r}")
        pins[str(entry["name"])] = version
    if not pins:
        raise SystemExit(f"error: {path}: no collections listed")
    return pins


def installed_collections(listing: dict[str, dict[str, dict[str, str]]]) -> dict[str, str]:
    """``{name: version}`` from ``ansible-galaxy collection list --format json`` output; the first
    path wins, as it does for Ansible's loader.

    >>> installed_collections({"/p1": {"a.b": {"version": "1.0.0"}}, "/p2": {"a.b": {"version": "2.0.0"}}})
    {'a.b': '1.0.0'}
    """
    found: dict[str, str] = {}
    for collections in listing.values():
        for name, info in collections.items():
            found.setdefault(name, str(info.get("version", "")))
    return found


def compare(pins: dict[str, str], installed: dict[str, str]) -> list[str]:
    """One line per pinned collection: ``ok NAME VERSION`` or ``error: ...``.

    >>> compare({"a.b": "1.0.0", "c.d": "2.0.0"}, {"a.b": "1.0.0", "c.d": "2.1.0"})
    ['ok a.b 1.0.0', 'error: c.d: pinned 2.0.0, installed 2.1.0']
    """
    lines = []
    for name, version in sorted(pins.items()):
        have = installed.get(name)
        if have is None:
            lines.append(f"error: {name}: pinned {version}, not installed")
        elif have != version:
            lines.append(f"error: {name}: pinned {version}, installed {have}")
        else:
            lines.append(f"ok {name} {version}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requirements", type=Path, default=Path(__file__).with_name("requirements.yml"))
    parser.add_argument("--galaxy", default=str(Path(sys.executable).with_name("ansible-galaxy")))
    args = parser.parse_args(argv)
    pins = read_pins(args.requirements)
    proc = subprocess.run(
        [args.galaxy, "collection", "list", "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        print(f"error: {args.galaxy} collection list failed: {proc.stderr.strip()}", file=sys.stderr)
        return 1
    lines = compare(pins, installed_collections(json.loads(proc.stdout)))
    print("\n".join(lines))
    return 1 if any(line.startswith("error:") for line in lines) else 0


if __name__ == "__main__":
    sys.exit(main())

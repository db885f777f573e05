"""The error type for bad input anywhere in the project, and the JSON readers that raise it."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any


class UserError(Exception):
    """Bad input or environment; the message is one line naming the file/line/field.

    Command-line entry points print it as ``error: <message>`` and exit with ``exit_code``.

    >>> str(UserError("config.yml: server.port: must be an integer"))
    'config.yml: server.port: must be an integer'
    """

    exit_code = 2


def run_command(args: argparse.Namespace) -> int:
    """Call ``args.func(args)`` for a CLI: :class:`UserError` → ``error: ...`` on stderr and its
    exit code; Ctrl-C → ``error: interrupted`` and 130."""
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


def parse_json(data: bytes | str, *, where: str) -> Any:
    """Parse JSON ``data``; bad input is one :class:`UserError` line naming ``where``, the line and
    the column: ``WHERE:LINE:COLUMN: invalid JSON (why)`` (or ``WHERE: not UTF-8 text``).

    The one JSON-error-to-UserError conversion of the project.

    >>> parse_json(b'{"a": 1}', where="x.json")
    {'a': 1}
    >>> try:
    ...     parse_json('{\\n  "a": }', where="x.json")
    ... except UserError as exc:
    ...     print(exc)
    x.json:2:8: invalid JSON (Expecting value)
    """
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise UserError(f"{where}: not UTF-8 text ({exc.reason})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{where}:{exc.lineno}:{exc.colno}: invalid JSON ({exc.msg})") from None


def read_json(path: str | os.PathLike[str], *, missing: str = "not found") -> Any:
    """:func:`parse_json` of the file ``path``; a missing file is ``PATH: <missing>``, an
    unreadable one ``PATH: cannot read (why)``."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: {missing}") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from None
    return parse_json(data, where=str(path))

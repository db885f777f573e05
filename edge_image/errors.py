"""The error type for bad input anywhere in the project (also re-exported by training_scripts)."""

from __future__ import annotations

import argparse
import sys


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

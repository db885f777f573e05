"""The error type for bad input anywhere in the project (also re-exported by training_scripts)."""

from __future__ import annotations


class UserError(Exception):
    """Bad input or environment; the message is one line naming the file/line/field.

    Command-line entry points print it as ``error: <message>`` and exit with ``exit_code``.

    >>> str(UserError("config.yml: server.port: must be an integer"))
    'config.yml: server.port: must be an integer'
    """

    exit_code = 2

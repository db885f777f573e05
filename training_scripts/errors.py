"""The one error type the CLI turns into a one-line message and a non-zero exit.

It is defined in :mod:`edge_image.errors` so that both packages raise the same class.
"""

from __future__ import annotations

from edge_image.errors import UserError

__all__ = ["UserError"]

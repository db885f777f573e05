"""Atomic outputs (temp sibling, then rename); defined in :mod:`edge_image.atomic`, which the
edge service needs on its own, and re-exported here for the training-side tools."""

from __future__ import annotations

from edge_image.atomic import atomic_dir, fsync_dir, fsync_file, write_bytes, write_text

__all__ = ["atomic_dir", "fsync_dir", "fsync_file", "write_bytes", "write_text"]

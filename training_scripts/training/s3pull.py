"""Pull a training run's S3 prefix into its run directory without letting S3 overrule the host.

The training unit's ``ExecStartPre`` runs this before every start, so that a replacement spot host
(empty disk) resumes from what the old one pushed. ``aws s3 sync`` is the wrong tool for that
direction: it downloads whenever sizes differ, so an older, shorter ``metrics.csv`` in S3 replaces
the newer one on a host that kept its disk; and it would pull ``run.json``, the file whose
``command`` the unit executes, from a bucket that more principals can write than the host's root.

Rules (:func:`pull`):

- ``run.json`` (:data:`NEVER_PULLED`) is never pulled: the playbook writes it on the host.
- An object is downloaded only when the local file is missing or older than the object's
  ``LastModified``; the download lands in a temporary file beside the target and is renamed into
  place, with the object's ``LastModified`` as its mtime (so the next pull skips it).
- Keys that would leave the run directory (``..``, absolute, backslashes) and targets that are or
  sit under symlinks are refused and reported, never followed.

Input: an S3 client, ``s3://bucket/prefix`` and the run directory. Output: :class:`PullResult`
(what was downloaded, kept, excluded or refused), one line per download on ``log``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_image.contract.atomic import fsync_dir
from edge_image.contract.manifest import first_symlink, safe_relpath
from training_scripts.training.spot import split_s3_uri

#: Files of a run directory that only the host's playbook writes.
NEVER_PULLED: frozenset[str] = frozenset({"run.json"})


@dataclass
class PullResult:
    """Relative paths by outcome."""

    downloaded: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def line(self) -> str:
        """One summary line, e.g. ``pulled 3, kept 2 newer or current, excluded run.json, refused 0``."""
        excluded = ", ".join(self.excluded) or "nothing"
        return (
            f"pulled {len(self.downloaded)}, kept {len(self.kept)} newer or current, "
            f"excluded {excluded}, refused {len(self.refused)}"
        )


def _objects(s3: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        found.extend(page.get("Contents", []))
    return found


def pull(
    s3: Any,
    uri: str,
    run_dir: str | os.PathLike[str],
    *,
    never: frozenset[str] = NEVER_PULLED,
    log: Callable[[str], None] = print,
) -> PullResult:
    """Download the objects under ``uri`` that are missing or older in ``run_dir`` (see the module doc)."""
    bucket, prefix = split_s3_uri(uri)
    root = Path(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    base = f"{prefix}/" if prefix else ""
    result = PullResult()
    for obj in sorted(_objects(s3, bucket, base), key=lambda o: o["Key"]):
        rel = obj["Key"][len(base) :]
        if not rel or rel.endswith("/"):
            continue  # the console's folder markers
        if not safe_relpath(rel) or first_symlink(root, rel) is not None:
            log(f"s3-pull: refused s3://{bucket}/{obj['Key']}: it would leave {root} or follow a symlink")
            result.refused.append(rel)
            continue
        if rel in never:
            result.excluded.append(rel)
            continue
        target = root / rel
        remote_mtime = obj["LastModified"].timestamp()
        if target.exists() and target.stat().st_mtime >= remote_mtime:
            result.kept.append(rel)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        try:
            with os.fdopen(handle, "wb") as out:
                s3.download_fileobj(bucket, obj["Key"], out)
                out.flush()
                os.fsync(out.fileno())
            os.utime(temp, (remote_mtime, remote_mtime))
            os.replace(temp, target)
            fsync_dir(target.parent)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        log(f"s3-pull: {rel} ({obj['Size']} bytes)")
        result.downloaded.append(rel)
    return result

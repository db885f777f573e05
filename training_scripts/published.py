"""Where a published bundle lives, and ``latest.json``, the pointer devices follow.

One place for the published layout, used by ``roles/publish`` (through the ``publish-layout``
command, for both targets) and read back by ``summary``::

    ROOT/NAME/VERSION/            the bundle's files       (ROOT: a directory or s3://BUCKET/PREFIX)
    ROOT/NAME/VERSION/extra/      report, plots, selection.json
    ROOT/NAME/VERSION.tar.gz      the signed archive (immutable once published)
    ROOT/NAME/latest.tar.gz       a copy of the released archive
    ROOT/NAME/latest.json         LatestPointer, written last
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

from edge_image.contract.errors import UserError, read_json
from edge_image.contract.fields import Fields


def _join(*parts: str) -> str:
    """Join with ``/`` (S3 keys and POSIX paths alike), without doubled slashes."""
    return "/".join(p.strip("/") if i else p.rstrip("/") for i, p in enumerate(parts) if p)


@dataclass(frozen=True)
class PublishedLayout:
    """The locations of version ``version`` of ``name`` under ``root``.

    >>> layout = PublishedLayout("s3://b/models", "m", "v1")
    >>> layout.version_dir, layout.archive, layout.key(layout.latest_json)
    ('s3://b/models/m/v1', 's3://b/models/m/v1.tar.gz', 'models/m/latest.json')
    >>> PublishedLayout("/srv/published/", "m", "v1").extra_dir
    '/srv/published/m/v1/extra'
    """

    root: str
    name: str
    version: str

    def __post_init__(self) -> None:
        for field_name in ("name", "version"):
            value = getattr(self, field_name)
            if not value or "/" in value or value in (".", ".."):
                raise UserError(f"publish layout: {field_name} {value!r} must be one path segment")

    @property
    def model_dir(self) -> str:
        return _join(self.root, self.name)

    @property
    def version_dir(self) -> str:
        return _join(self.model_dir, self.version)

    @property
    def extra_dir(self) -> str:
        return _join(self.version_dir, "extra")

    @property
    def archive(self) -> str:
        return _join(self.model_dir, f"{self.version}.tar.gz")

    @property
    def latest_archive(self) -> str:
        return _join(self.model_dir, "latest.tar.gz")

    @property
    def latest_json(self) -> str:
        return _join(self.model_dir, "latest.json")

    def key(self, location: str) -> str:
        """The S3 key of ``location`` (``s3://BUCKET/KEY`` → ``KEY``); a path stays as it is."""
        if not location.startswith("s3://"):
            return location
        return location[len("s3://") :].split("/", 1)[1] if "/" in location[5:] else ""

    def to_dict(self) -> dict[str, str]:
        """Every location (and, under s3://, every key) by name, for the publish role."""
        locations = {
            "model_dir": self.model_dir,
            "version_dir": self.version_dir,
            "extra_dir": self.extra_dir,
            "archive": self.archive,
            "latest_archive": self.latest_archive,
            "latest_json": self.latest_json,
        }
        keys = (
            {f"{k}_key": self.key(v) for k, v in locations.items()} if self.root.startswith("s3://") else {}
        )
        return locations | keys

    def pointer(self, *, manifest_sha256: str, archive_sha256: str) -> LatestPointer:
        """The ``latest.json`` that releases this version."""
        return LatestPointer(
            name=self.name,
            version=self.version,
            path=self.version_dir,
            archive=self.archive,
            manifest_sha256=manifest_sha256,
            archive_sha256=archive_sha256,
        )


@dataclass(frozen=True)
class LatestPointer:
    """``latest.json``: which version is released, where, and the checksums a reader must find."""

    name: str
    version: str
    path: str
    archive: str
    manifest_sha256: str
    archive_sha256: str

    def to_json(self) -> str:
        """Indented JSON with sorted keys and a final newline (what the publish role writes)."""
        return json.dumps(asdict(self), indent=4, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, doc: object, *, where: str) -> LatestPointer:
        """Check a parsed ``latest.json``; :class:`UserError` names the missing or bad field."""
        fields = Fields(where, "", doc, hint="not a latest.json: was it written by publish?")
        return cls(**{name: fields.text(name) for name in cls.__dataclass_fields__})

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> LatestPointer:
        """Read and check a local ``latest.json``."""
        return cls.from_dict(read_json(path, missing="published latest.json not found"), where=str(path))

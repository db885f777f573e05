"""``python -m training_scripts publish-layout``: where ``roles/publish`` puts a version.

Prints one JSON object: ``layout`` (every location of :class:`training_scripts.published.PublishedLayout`,
with S3 keys under an ``s3://`` root) and, given both checksums, ``latest`` (the ``latest.json``
text that releases the version). The role calls this instead of spelling the layout out itself.
"""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``publish-layout`` command."""
    parser = subparsers.add_parser(
        "publish-layout",
        help="print where a published version and latest.json go (JSON)",
        description=__doc__,
    )
    parser.add_argument("--root", required=True, help="published directory, or s3://BUCKET/PREFIX")
    parser.add_argument("--name", required=True, help="model name")
    parser.add_argument("--version", required=True, help="bundle version")
    parser.add_argument("--manifest-sha256", default="", help="the bundle manifest's sha256 (for latest)")
    parser.add_argument("--archive-sha256", default="", help="the archive's sha256 (for latest)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the layout (and the pointer) as JSON."""
    from training_scripts.published import PublishedLayout

    layout = PublishedLayout(args.root, args.name, args.version)
    out: dict[str, object] = {"layout": layout.to_dict()}
    if args.manifest_sha256 and args.archive_sha256:
        pointer = layout.pointer(manifest_sha256=args.manifest_sha256, archive_sha256=args.archive_sha256)
        out["latest"] = pointer.to_json()
    print(json.dumps(out, sort_keys=True))
    return 0

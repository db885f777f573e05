"""Empty a versioned bucket (every object version and delete marker) and delete it, with progress."""

from __future__ import annotations

import sys
import time
from typing import Any

BATCH = 1000  # DeleteObjects limit


def list_versions(s3: Any, bucket: str) -> list[dict[str, str]]:
    """Every object version and delete marker as {"Key", "VersionId"} (for DeleteObjects)."""
    found = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
            found.append({"Key": item["Key"], "VersionId": item["VersionId"]})
    return found


def purge_bucket(s3: Any, bucket: str) -> int:
    """Delete every version and delete marker, then the bucket; returns the number of entries deleted.

    Prints progress (percent, rate, ETA) to stderr. Raises RuntimeError listing the first entry
    S3 refused to delete."""
    entries = list_versions(s3, bucket)
    start = time.monotonic()
    for first in range(0, len(entries), BATCH):
        batch = entries[first : first + BATCH]
        result = s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
        if result.get("Errors"):
            err = result["Errors"][0]
            raise RuntimeError(f"s3://{bucket}/{err['Key']} ({err['VersionId']}): {err['Message']}")
        done = first + len(batch)
        elapsed = max(time.monotonic() - start, 1e-6)
        rate = done / elapsed
        eta = (len(entries) - done) / rate
        print(
            f"  s3://{bucket}: {done}/{len(entries)} versions deleted ({100 * done / len(entries):.0f} %, "
            f"{rate:.0f}/s, ETA {eta:.0f} s)",
            file=sys.stderr,
        )
    s3.delete_bucket(Bucket=bucket)
    print(f"  s3://{bucket}: bucket deleted", file=sys.stderr)
    return len(entries)


def bucket_exists(s3: Any, bucket: str) -> bool:
    """True when the bucket exists (and is visible to these credentials)."""
    from botocore.exceptions import ClientError

    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchBucket", "NotFound"):
            return False
        raise
    return True

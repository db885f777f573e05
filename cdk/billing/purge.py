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


def _delete_versions(s3: Any, bucket: str, entries: list[dict[str, str]]) -> None:
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


def purge_bucket(s3: Any, bucket: str, *, attempts: int = 5, pause: float = 2.0) -> int:
    """Delete every version and delete marker, then the bucket; returns the number of entries deleted.

    S3 keeps delivering server access logs for a while after the last request, so the bucket may
    be non-empty again when it is deleted (``BucketNotEmpty``): then it is emptied again, up to
    ``attempts`` times, ``pause`` seconds apart (doubling). Prints progress (percent, rate, ETA) to
    stderr. Raises RuntimeError with one line: the first entry S3 refused to delete, or a bucket
    still receiving objects after the last attempt.
    """
    from botocore.exceptions import ClientError

    deleted = 0
    for attempt in range(1, attempts + 1):
        entries = list_versions(s3, bucket)
        _delete_versions(s3, bucket, entries)
        deleted += len(entries)
        try:
            s3.delete_bucket(Bucket=bucket)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if error.get("Code") != "BucketNotEmpty":
                raise RuntimeError(f"s3://{bucket}: {error.get('Message', exc)}") from None
            if attempt == attempts:
                raise RuntimeError(
                    f"s3://{bucket}: still receiving objects after {attempts} attempts (late access-log "
                    "deliveries?); run the teardown with --purge again in a few minutes"
                ) from None
            print(
                f"  s3://{bucket}: new objects arrived, emptying it again ({attempt}/{attempts})",
                file=sys.stderr,
            )
            time.sleep(pause * 2 ** (attempt - 1))
            continue
        print(f"  s3://{bucket}: bucket deleted", file=sys.stderr)
        break
    return deleted


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

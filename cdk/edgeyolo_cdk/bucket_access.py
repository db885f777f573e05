"""Who may do what under which prefix of the artifact bucket: one table, two grants.

Layout of the bucket (what the roles read and write)::

    datasets/     dataset archives (roles/dataset)            training host: read
    pretrained/   initial weights (roles/train)               training host: read
    checkpoints/  run directories synced by roles/train       training host: read, write
    runs/         run records                                 training host: read, write
    models/       bundles and archives (roles/publish)        training host: read, write
    models/*/latest.json, models/*/latest.tar.gz              release step only

- :func:`grant_training_host` gives the training host's role exactly :data:`TRAINING_HOST`: read and
  write per prefix, no ``s3:DeleteObject*`` anywhere (an explicit deny, so no later grant can add it),
  and an explicit deny on the release keys: the host makes versions, it does not decide which one
  devices deploy.
- :class:`ReleasePolicy` is the narrower, separate step: a managed policy (stack output
  ``ReleasePolicyArn``) for whoever releases (the operator's user or role): read ``models/``, write
  only the release keys. roles/publish runs that step on the controller.

Input: the bucket and the role. Output: IAM statements on them; nothing else is granted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct


@dataclass(frozen=True)
class PrefixAccess:
    """``prefix`` (ending in ``/``) and whether the principal may read and/or write under it."""

    prefix: str
    read: bool
    write: bool


#: The training host's rights, prefix by prefix.
TRAINING_HOST: tuple[PrefixAccess, ...] = (
    PrefixAccess("datasets/", read=True, write=False),
    PrefixAccess("pretrained/", read=True, write=False),
    PrefixAccess("checkpoints/", read=True, write=True),
    PrefixAccess("runs/", read=True, write=True),
    PrefixAccess("models/", read=True, write=True),
)

#: The objects devices deploy from: written by the release step only.
RELEASE_KEYS: tuple[str, ...] = ("models/*/latest.json", "models/*/latest.tar.gz")

#: Object-level actions per right (multipart: uploads over the CLI's 8 MiB threshold).
READ_ACTIONS = ("s3:GetObject",)
WRITE_ACTIONS = ("s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts")
DELETE_ACTIONS = ("s3:DeleteObject", "s3:DeleteObjectVersion", "s3:DeleteObjectTagging")


def _objects(bucket: s3.IBucket, patterns: Sequence[str]) -> list[str]:
    return [bucket.arn_for_objects(f"{p}*" if p.endswith("/") else p) for p in patterns]


def grant_training_host(
    role: iam.IRole, bucket: s3.IBucket, table: Sequence[PrefixAccess] = TRAINING_HOST
) -> None:
    """Grant ``table`` on ``bucket`` to ``role``, plus the explicit denies (deletes, release keys)."""
    readable = [a.prefix for a in table if a.read]
    writable = [a.prefix for a in table if a.write]
    statements = [
        iam.PolicyStatement(
            sid="ListReadablePrefixes",
            actions=["s3:ListBucket"],
            resources=[bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{p}*" for p in readable]}},
        ),
        iam.PolicyStatement(
            sid="BucketLocation", actions=["s3:GetBucketLocation"], resources=[bucket.bucket_arn]
        ),
        iam.PolicyStatement(
            sid="ReadPrefixes", actions=list(READ_ACTIONS), resources=_objects(bucket, readable)
        ),
        iam.PolicyStatement(
            sid="WritePrefixes", actions=list(WRITE_ACTIONS), resources=_objects(bucket, writable)
        ),
        iam.PolicyStatement(
            sid="NoDeletes",
            effect=iam.Effect.DENY,
            actions=list(DELETE_ACTIONS),
            resources=[bucket.arn_for_objects("*")],
        ),
        iam.PolicyStatement(
            sid="NoRelease",
            effect=iam.Effect.DENY,
            actions=list(WRITE_ACTIONS),
            resources=_objects(bucket, RELEASE_KEYS),
        ),
    ]
    for statement in statements:
        role.add_to_principal_policy(statement)


class ReleasePolicy(Construct):
    """``policy``: read ``models/``, write :data:`RELEASE_KEYS`; attach it to whoever releases."""

    def __init__(self, scope: Construct, construct_id: str, *, bucket: s3.IBucket) -> None:
        super().__init__(scope, construct_id)
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            description="Release a model version: point models/<name>/latest.{json,tar.gz} at it.",
            statements=[
                iam.PolicyStatement(
                    sid="ListModels",
                    actions=["s3:ListBucket"],
                    resources=[bucket.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": ["models/*"]}},
                ),
                iam.PolicyStatement(
                    sid="ReadModels", actions=list(READ_ACTIONS), resources=_objects(bucket, ["models/"])
                ),
                iam.PolicyStatement(
                    sid="WriteRelease", actions=["s3:PutObject"], resources=_objects(bucket, RELEASE_KEYS)
                ),
            ],
        )
        NagSuppressions.add_resource_suppressions(
            self.policy,
            [
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    reason="Object ARNs under models/ (model names and versions are not known in advance); "
                    "writes are limited to the two release keys per model.",
                    applies_to=[{"regex": "/^Resource::<.*Bucket.*\\.Arn>/models/.*$/"}],
                )
            ],
        )

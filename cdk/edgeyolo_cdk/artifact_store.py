"""ArtifactStore: the S3 bucket for datasets, checkpoints and model bundles, plus its access-log bucket.

Versioned (a half-uploaded or overwritten checkpoint can be recovered), SSE-S3 encrypted, all public
access blocked, TLS enforced, old noncurrent checkpoint versions expired by a lifecycle rule. Retained
when the stack is deleted unless the stage is a throwaway one (then destroyed with its objects).
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct


@dataclass(frozen=True, kw_only=True)
class ArtifactStoreProps:
    """``throwaway``: destroy + auto-delete instead of retain; lifecycle: how long / how many
    noncurrent versions of an object (a checkpoint overwritten by a newer upload) are kept."""

    throwaway: bool
    noncurrent_version_days: int
    noncurrent_versions_to_keep: int


class ArtifactStore(Construct):
    """Creates ``bucket`` (artifacts) and ``log_bucket`` (its server access logs)."""

    def __init__(self, scope: Construct, construct_id: str, *, props: ArtifactStoreProps) -> None:
        super().__init__(scope, construct_id)
        removal = RemovalPolicy.DESTROY if props.throwaway else RemovalPolicy.RETAIN
        common = {
            "encryption": s3.BucketEncryption.S3_MANAGED,
            "block_public_access": s3.BlockPublicAccess.BLOCK_ALL,
            "enforce_ssl": True,
            "removal_policy": removal,
            "auto_delete_objects": props.throwaway,
        }
        self.log_bucket = s3.Bucket(
            self,
            "AccessLogs",
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[s3.LifecycleRule(id="expire-access-logs", expiration=Duration.days(90))],
            **common,
        )
        NagSuppressions.add_resource_suppressions(
            self.log_bucket,
            [
                NagPackSuppression(
                    id="AwsSolutions-S1",
                    reason="This is the access-log target itself; logging it would log its own log "
                    "deliveries forever.",
                )
            ],
        )
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            versioned=True,
            server_access_logs_bucket=self.log_bucket,
            server_access_logs_prefix="artifacts/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-old-checkpoint-versions",
                    noncurrent_version_expiration=Duration.days(props.noncurrent_version_days),
                    noncurrent_versions_to_retain=props.noncurrent_versions_to_keep or None,
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                    expired_object_delete_marker=True,
                )
            ],
            **common,
        )

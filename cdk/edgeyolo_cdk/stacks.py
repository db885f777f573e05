"""The two stacks and the app builder.

``EdgeYolo-<stage>-Artifacts``: artifact + access-log buckets (retained), the release policy (output
ReleasePolicyArn), optional cost budget.
``EdgeYolo-<stage>-Training``: VPC, GPU host, idle-stop alarm; outputs InstanceId, BucketName, Region,
GpuArch ("7.0"), GpuSm ("sm_70"), CudaHome, Ami and Spot
("true": the train role starts the spot interruption watcher). Teardown deletes only the training stack.
"""

from __future__ import annotations

from aws_cdk import App, Aspects, CfnOutput, Environment, Stack, Tags
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks
from constructs import Construct

from cdk.edgeyolo_cdk.artifact_store import ArtifactStore, ArtifactStoreProps
from cdk.edgeyolo_cdk.bucket_access import ReleasePolicy
from cdk.edgeyolo_cdk.budget import CostBudget, CostBudgetProps
from cdk.edgeyolo_cdk.config import (
    OUTPUT_AMI,
    OUTPUT_BUCKET_NAME,
    OUTPUT_CUDA_HOME,
    OUTPUT_GPU_ARCH,
    OUTPUT_GPU_SM,
    OUTPUT_INSTANCE_ID,
    OUTPUT_REGION,
    OUTPUT_RELEASE_POLICY,
    OUTPUT_SIGNING_KEY,
    OUTPUT_SPOT,
    DeployConfig,
)
from cdk.edgeyolo_cdk.idle_stop import IdleStopAlarm, IdleStopProps
from cdk.edgeyolo_cdk.network import TrainingNetwork, TrainingNetworkProps
from cdk.edgeyolo_cdk.signing_key import BundleSigningKey, BundleSigningKeyProps
from cdk.edgeyolo_cdk.training_host import TrainingHost, TrainingHostProps


class ArtifactsStack(Stack):
    """Long-lived storage; ``bucket`` is what the training stack and teardown use."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: DeployConfig, env: Environment
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            env=env,
            description=f"{config.project} {config.stage}: artifact bucket (datasets, checkpoints, bundles)",
        )
        store = ArtifactStore(
            self,
            "Artifacts",
            props=ArtifactStoreProps(
                throwaway=config.throwaway,
                noncurrent_version_days=config.noncurrent_version_days,
                noncurrent_versions_to_keep=config.noncurrent_versions_to_keep,
            ),
        )
        self.bucket: s3.IBucket = store.bucket
        if config.throwaway:
            # W3005: CDK's generated auto-delete provider declares a DependsOn its GetAtt already implies.
            self.template_options.metadata = {"cfn-lint": {"config": {"ignore_checks": ["W3005"]}}}
        if config.budget_email:
            CostBudget(
                self,
                "Budget",
                props=CostBudgetProps(
                    name=f"{config.project}-{config.stage}-monthly",
                    monthly_usd=config.budget_monthly_usd,
                    email=config.budget_email,
                ),
            )
        release = ReleasePolicy(self, "Release", bucket=self.bucket)
        signing = BundleSigningKey(
            self,
            "Signing",
            props=BundleSigningKeyProps(
                alias=config.signing_key_alias,
                signer_role_name=config.training_role_name,
                throwaway=config.throwaway,
            ),
        )
        self.signing_key: kms.IKey = signing.key
        CfnOutput(self, OUTPUT_BUCKET_NAME, value=self.bucket.bucket_name, description="Artifact bucket")
        CfnOutput(self, OUTPUT_REGION, value=self.region, description="Region of the stacks")
        CfnOutput(
            self,
            OUTPUT_RELEASE_POLICY,
            value=release.policy.managed_policy_arn,
            description="Attach to whoever releases models (writes models/<name>/latest.*); the host cannot",
        )
        CfnOutput(
            self,
            OUTPUT_SIGNING_KEY,
            value=config.signing_key_alias,
            description="KMS key that signs bundles (publish_sign kms:<this>); devices trust its public key",
        )


class TrainingStack(Stack):
    """The billable part: one GPU instance in its own VPC, stopped by an alarm when idle."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeployConfig,
        env: Environment,
        bucket: s3.IBucket,
        signing_key: kms.IKey,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            env=env,
            description=f"{config.project} {config.stage}: GPU training host ({config.instance_type})",
        )
        # Re-exporting the artifact bucket name here (W6001: output of an import) is deliberate: Ansible
        # and teardown read every value they need from this one stack's outputs. W3010 (hard-coded zone)
        # only when availabilityZone is configured: pinning the zone that offers the GPU type is the point.
        ignore = ["W6001"] + (["W3010"] if config.availability_zone else [])
        self.template_options.metadata = {"cfn-lint": {"config": {"ignore_checks": ignore}}}
        network = TrainingNetwork(
            self, "Network", props=TrainingNetworkProps(availability_zone=config.availability_zone)
        )
        host = TrainingHost(
            self,
            "Host",
            props=TrainingHostProps(
                vpc=network.vpc,
                bucket=bucket,
                signing_key=signing_key,
                role_name=config.training_role_name,
                name=f"{config.project}-{config.stage}-training",
                instance_type=config.instance_type,
                gpu=config.gpu,
                dlami=config.row.dlami,
                ami_ssm_parameter=config.ami_ssm_parameter,
                ami_id=config.ami_id,
                region=config.region,
                root_volume_gib=config.root_volume_gib,
                spot=config.spot,
                spot_max_price=config.spot_max_price,
                ssh_cidr=config.ssh_cidr,
                key_name=config.key_name,
                tags=config.tags,
            ),
        )
        IdleStopAlarm(
            self,
            "IdleStop",
            props=IdleStopProps(
                instance=host.instance,
                minutes=config.idle_stop_minutes,
                cpu_percent=config.idle_cpu_percent,
            ),
        )
        self.instance = host.instance
        CfnOutput(self, OUTPUT_INSTANCE_ID, value=host.instance.instance_id, description="Training host")
        CfnOutput(self, OUTPUT_BUCKET_NAME, value=bucket.bucket_name, description="Artifact bucket")
        CfnOutput(self, OUTPUT_REGION, value=self.region, description="Region of the stacks")
        CfnOutput(
            self,
            OUTPUT_SIGNING_KEY,
            value=config.signing_key_alias,
            description="KMS key the host signs bundles with (publish_sign kms:<this>)",
        )
        CfnOutput(
            self,
            OUTPUT_GPU_ARCH,
            value=config.gpu.compute,
            description=f"{config.gpu.name} compute capability (darknet ARCH)",
        )
        CfnOutput(self, OUTPUT_GPU_SM, value=config.gpu.sm, description=f"{config.gpu.name} nvcc sm_ name")
        CfnOutput(
            self,
            OUTPUT_CUDA_HOME,
            value=config.cuda_home,
            description=f"CUDA {config.cuda} on the AMI (darknet_cuda_home; the GPU matrix in cdk/README.md)",
        )
        CfnOutput(
            self,
            OUTPUT_AMI,
            value=config.ami_id or config.ami_ssm_parameter or config.row.dlami.title,
            description="The AMI the host boots (pinned id, SSM parameter, or DLAMI by name)",
        )
        CfnOutput(
            self,
            OUTPUT_SPOT,
            value="true" if config.spot else "false",
            description="Spot host: the train role watches for the 2-minute notice (train_spot_watch)",
        )


def add_stacks(app: App, config: DeployConfig, *, nag: bool = True) -> tuple[ArtifactsStack, TrainingStack]:
    """Add both stacks for ``config`` to ``app``, tag everything, and (``nag``) run cdk-nag AwsSolutions."""
    # Region-specific, account-agnostic: synthesis never looks anything up (no credentials needed);
    # `cdk deploy` deploys into the account of the credentials it runs with.
    env = Environment(region=config.region)
    artifacts = ArtifactsStack(app, config.artifacts_stack_name, config=config, env=env)
    training = TrainingStack(
        app,
        config.training_stack_name,
        config=config,
        env=env,
        bucket=artifacts.bucket,
        signing_key=artifacts.signing_key,
    )
    for key, value in config.tags.items():
        Tags.of(app).add(key, value)
    if nag:
        Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    return artifacts, training

"""TrainingHost: the GPU instance darknet trains on, reachable through SSM Session Manager.

- AMI: from the GPU matrix (``gpu.MATRIX``): a DLAMI SSM public parameter (resolved by CloudFormation
  at deploy time), or, for a DLAMI found by exact name and owner (p3.2xlarge), the ``TrainingAmiId``
  parameter that ``make deploy`` fills with ``python -m cdk.ami``; ``ami_id`` / ``ami_ssm_parameter``
  override both.
- Launch template: IMDSv2 required; optional spot (persistent request, stop on interruption, so the
  idle alarm can stop it and the EBS volume with the checkpoints survives).
- Encrypted gp3 root volume; tags propagate to it so teardown finds leftovers.
- Security group: egress only, plus SSH from ``ssh_cidr`` when one is configured.
- Role: AmazonSSMManagedInstanceCore + the prefix-scoped bucket rights of ``bucket_access.TRAINING_HOST``
  (no deletes, no release keys), nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import CfnParameter, Tags
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from cdk.edgeyolo_cdk.bucket_access import grant_training_host
from cdk.edgeyolo_cdk.config import ROLE_TRAINING_HOST, TAG_ROLE
from cdk.edgeyolo_cdk.gpu import Dlami, GpuInfo

AMI_PARAMETER = "TrainingAmiId"


@dataclass(frozen=True, kw_only=True)
class TrainingHostProps:
    """See cdk/README.md for the matching cdk.json keys."""

    vpc: ec2.IVpc
    bucket: s3.IBucket
    signing_key: kms.IKey
    role_name: str
    name: str
    instance_type: str
    gpu: GpuInfo
    dlami: Dlami
    ami_ssm_parameter: str | None
    ami_id: str | None
    region: str
    root_volume_gib: int
    spot: bool
    spot_max_price: float | None
    ssh_cidr: str | None
    key_name: str | None
    tags: dict[str, str]


def _machine_image(scope: Construct, props: TrainingHostProps) -> ec2.IMachineImage:
    """The pinned id, the SSM parameter (override or the matrix's), or the name-resolved parameter."""
    if props.ami_id:
        return ec2.MachineImage.generic_linux({props.region: props.ami_id})
    ssm = props.ami_ssm_parameter or props.dlami.ssm_parameter
    if ssm:
        return ec2.MachineImage.from_ssm_parameter(ssm, os=ec2.OperatingSystemType.LINUX)
    param = CfnParameter(
        scope,
        AMI_PARAMETER,
        type="AWS::EC2::Image::Id",
        description=f"{props.dlami.title} (owner {props.dlami.owner}, name {props.dlami.image_name!r}): "
        "`make deploy` fills it with `python -m cdk.ami`",
    )
    # The parameter belongs to the stack (its logical id is what `--parameters` names).
    param.override_logical_id(AMI_PARAMETER)
    return ec2.MachineImage.generic_linux({props.region: param.value_as_string})


class TrainingHost(Construct):
    """Creates ``instance``, ``role``, ``security_group`` and ``launch_template``."""

    def __init__(self, scope: Construct, construct_id: str, *, props: TrainingHostProps) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "Role",
            role_name=props.role_name,
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description="Training host: SSM Session Manager + prefix-scoped rights on the artifact bucket.",
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name("AmazonSSMManagedInstanceCore")],
        )
        grant_training_host(self.role, props.bucket)
        props.signing_key.grant(self.role, "kms:Sign", "kms:GetPublicKey")

        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=props.vpc,
            description="Training host: no ingress unless an SSH CIDR is configured",
            allow_all_outbound=True,
        )
        if props.ssh_cidr:
            peer = ec2.Peer.ipv6(props.ssh_cidr) if ":" in props.ssh_cidr else ec2.Peer.ipv4(props.ssh_cidr)
            self.security_group.add_ingress_rule(peer, ec2.Port.tcp(22), "SSH from the configured CIDR")

        spot_options = None
        if props.spot:
            spot_options = ec2.LaunchTemplateSpotOptions(
                request_type=ec2.SpotRequestType.PERSISTENT,
                interruption_behavior=ec2.SpotInstanceInterruption.STOP,
                max_price=props.spot_max_price,
            )
        self.launch_template = ec2.LaunchTemplate(
            self,
            "LaunchTemplate",
            require_imdsv2=True,
            spot_options=spot_options,
        )

        key_pair = ec2.KeyPair.from_key_pair_name(self, "KeyPair", props.key_name) if props.key_name else None
        self.instance = ec2.Instance(
            self,
            "Instance",
            instance_name=props.name,
            instance_type=ec2.InstanceType(props.instance_type),
            machine_image=_machine_image(self, props),
            vpc=props.vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            security_group=self.security_group,
            role=self.role,
            key_pair=key_pair,
            # A public address is how the host reaches SSM, S3 and apt without a NAT gateway.
            associate_public_ip_address=True,
            detailed_monitoring=True,
            ebs_optimized=True,
            propagate_tags_to_volume_on_creation=True,
            block_devices=[
                ec2.BlockDevice(
                    device_name=props.dlami.root_device,
                    volume=ec2.BlockDeviceVolume.ebs(
                        props.root_volume_gib,
                        volume_type=ec2.EbsDeviceVolumeType.GP3,
                        encrypted=True,
                        delete_on_termination=True,
                    ),
                )
            ],
        )
        # One launch template carries IMDSv2 and the spot options (ec2.Instance's own require_imdsv2
        # would add a second, fixed-name template that collides between stages).
        cfn_instance: ec2.CfnInstance = self.instance.node.default_child  # type: ignore[assignment]
        cfn_instance.launch_template = ec2.CfnInstance.LaunchTemplateSpecificationProperty(
            launch_template_id=self.launch_template.launch_template_id,
            version=self.launch_template.latest_version_number,
        )
        # Tag what the instance launches (its network interface, the spot request) with the project tags,
        # so teardown's tag sweep finds anything a failed delete leaves behind. The root volume gets the
        # instance's tags through PropagateTagsToVolumeOnCreation (a second, launch-template volume tag
        # specification would compete with it).
        launched = {**props.tags, TAG_ROLE: ROLE_TRAINING_HOST}
        resource_types = ["network-interface"] + (["spot-instances-request"] if props.spot else [])
        cfn_template: ec2.CfnLaunchTemplate = self.launch_template.node.default_child  # type: ignore[assignment]
        cfn_template.add_property_override(
            "LaunchTemplateData.TagSpecifications",
            [
                {"ResourceType": kind, "Tags": [{"Key": k, "Value": v} for k, v in sorted(launched.items())]}
                for kind in resource_types
            ],
        )
        # The primary interface goes with the instance (AWS's default, stated so that no emulator or
        # future default leaves an interface that blocks deleting the subnet/VPC).
        cfn_instance.add_property_override("NetworkInterfaces.0.DeleteOnTermination", True)
        Tags.of(self.instance).add(TAG_ROLE, ROLE_TRAINING_HOST)
        Tags.of(self.instance).add("GpuArch", props.gpu.compute)
        Tags.of(self.instance).add("GpuSm", props.gpu.sm)
        self._suppress(props)

    def _suppress(self, props: TrainingHostProps) -> None:
        NagSuppressions.add_resource_suppressions(
            self.instance,
            [
                NagPackSuppression(
                    id="AwsSolutions-EC29",
                    reason="Teardown must be able to delete the stack and terminate the host; every "
                    "checkpoint is synced to the retained, versioned S3 bucket.",
                )
            ],
        )
        NagSuppressions.add_resource_suppressions(
            self.role,
            [
                NagPackSuppression(
                    id="AwsSolutions-IAM4",
                    reason="AmazonSSMManagedInstanceCore is AWS's documented minimum for Session Manager.",
                    applies_to=["Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore"],
                ),
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    reason="Object ARNs under the bucket prefixes of bucket_access.TRAINING_HOST (run ids, "
                    "model names and versions are not known in advance); the bucket-wide object ARN appears "
                    "only in the explicit deny of deletes.",
                    applies_to=[
                        {"regex": "/^Resource::<.*Bucket.*\\.Arn>/[a-z]+/.*$/"},
                        {"regex": "/^Resource::<.*Bucket.*\\.Arn>/\\*$/"},
                    ],
                ),
            ],
            apply_to_children=True,
        )

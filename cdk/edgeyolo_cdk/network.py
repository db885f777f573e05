"""TrainingNetwork: a one-AZ VPC with a public subnet and no NAT gateway.

The training host needs outbound HTTPS only (SSM, S3, apt, pip); a public subnet with an internet
gateway gives that for free, where a NAT gateway or SSM interface endpoints would bill by the hour.
Nothing reaches the host from outside: its security group has no ingress unless an SSH CIDR is set.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_ec2 as ec2
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct


@dataclass(frozen=True, kw_only=True)
class TrainingNetworkProps:
    """``availability_zone``: where the subnet (and so the GPU host) goes; None = the region's first
    zone (CloudFormation ``Fn::GetAZs``), no account lookup at synth. GPU types are not offered in
    every zone. ``cidr``: the VPC range (one /24 public subnet is cut from it)."""

    availability_zone: str | None = None
    cidr: str = "10.42.0.0/16"


class TrainingNetwork(Construct):
    """Creates ``vpc`` with one public subnet."""

    def __init__(self, scope: Construct, construct_id: str, *, props: TrainingNetworkProps) -> None:
        super().__init__(scope, construct_id)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(props.cidr),
            max_azs=None if props.availability_zone else 1,
            availability_zones=[props.availability_zone] if props.availability_zone else None,
            nat_gateways=0,
            restrict_default_security_group=False,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24)
            ],
        )
        NagSuppressions.add_resource_suppressions(
            self.vpc,
            [
                NagPackSuppression(
                    id="AwsSolutions-VPC7",
                    reason="Single training host with no ingress rules; flow logs would bill for "
                    "logging its S3/apt downloads and add nothing the security group does not show.",
                )
            ],
        )

"""Deploy the synthesized templates into a local moto server through CloudFormation and check the
resources it created. Emulator adjustments live in tests.fixtures.cdk.emulator_template (SSM-typed
AMI parameter given a plain AMI id, route resources moto cannot delete removed); moto limits are noted
where an assertion reads elsewhere."""

from __future__ import annotations

import json

import boto3
import pytest
from moto.iam.access_control import IAMPolicy, PermissionResult

from tests.fixtures.cdk import REGION, Synthesized, deploy_to_moto, emulator_template

pytestmark = pytest.mark.slow


def _tags(tag_list: list[dict[str, str]]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tag_list}


def test_stacks_deploy_with_expected_resources(synthesized: Synthesized, aws_env: str) -> None:
    outputs = deploy_to_moto(synthesized)
    training = outputs["EdgeYolo-dev-Training"]
    assert (training["GpuArch"], training["GpuSm"], training["Region"]) == ("7.0", "sm_70", REGION)
    bucket = training["BucketName"]
    assert outputs["EdgeYolo-dev-Artifacts"]["BucketName"] == bucket

    s3 = boto3.client("s3", region_name=REGION)
    # Versioning and the public access block are applied by deploy_to_moto (moto's CloudFormation
    # ignores them); this checks they land on the artifact bucket. Lifecycle rules and access logging
    # moto ignores too, and it skips AWS::S3::BucketPolicy (the TLS-only policy) as an unsupported
    # type: those are asserted on the template in test_stacks.py.
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    tags = _tags(s3.get_bucket_tagging(Bucket=bucket)["TagSet"])
    assert (tags["Project"], tags["Stage"]) == ("edgeyolo", "dev")

    ec2 = boto3.client("ec2", region_name=REGION)
    (reservation,) = ec2.describe_instances(InstanceIds=[training["InstanceId"]])["Reservations"]
    (instance,) = reservation["Instances"]
    assert instance["InstanceType"] == "p3.2xlarge"
    assert instance["State"]["Name"] == "running"
    itags = _tags(instance["Tags"])
    assert (itags["Project"], itags["Stage"], itags["Role"], itags["GpuSm"]) == (
        "edgeyolo",
        "dev",
        "training-host",
        "sm_70",
    )
    # moto does not apply launch-template metadata options to the instance (it reports HttpTokens
    # "optional"), so IMDSv2 is checked on the launch template the instance was created from.
    (template,) = ec2.describe_launch_templates()["LaunchTemplates"]
    (version,) = ec2.describe_launch_template_versions(LaunchTemplateId=template["LaunchTemplateId"])[
        "LaunchTemplateVersions"
    ]
    assert version["LaunchTemplateData"]["MetadataOptions"]["HttpTokens"] == "required"
    (volume,) = ec2.describe_volumes(
        Filters=[{"Name": "attachment.instance-id", "Values": [instance["InstanceId"]]}]
    )["Volumes"]
    assert (volume["Size"], volume["VolumeType"], volume["Encrypted"]) == (150, "gp3", True)
    groups = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [instance["VpcId"]]}])
    assert all(g["IpPermissions"] == [] for g in groups["SecurityGroups"] if g["GroupName"] != "default")

    iam = boto3.client("iam", region_name=REGION)
    profile_name = instance["IamInstanceProfile"]["Arn"].rsplit("/", 1)[1]
    (role,) = iam.get_instance_profile(InstanceProfileName=profile_name)["InstanceProfile"]["Roles"]
    assert "ec2.amazonaws.com" in str(role["AssumeRolePolicyDocument"])
    # moto's AWS::IAM::Role ignores ManagedPolicyArns (SSM core is asserted on the template); the
    # inline policy from bucket_access is attached and names only the bucket and its objects.
    (policy_name,) = iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]
    document = iam.get_role_policy(RoleName=role["RoleName"], PolicyName=policy_name)["PolicyDocument"]
    resources = {
        r
        for s in document["Statement"]
        for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])
    }
    kms = boto3.client("kms", region_name=REGION)
    aliases = {a["AliasName"]: a["TargetKeyId"] for a in kms.list_aliases()["Aliases"]}
    (key_arn,) = [r for r in resources if r.startswith("arn:aws:kms:")]
    assert key_arn.split("/")[-1] == aliases["alias/edgeyolo-dev-bundles"].split("/")[-1]
    assert all(
        r in (f"arn:aws:s3:::{bucket}", key_arn) or r.startswith(f"arn:aws:s3:::{bucket}/") for r in resources
    )
    policy = IAMPolicy(json.dumps(document))
    _assert_training_host_rights(policy, bucket)
    # the host signs bundles with the stack's KMS key, and does nothing else with KMS
    allowed = {a for a in ("kms:Sign", "kms:GetPublicKey", "kms:Decrypt", "kms:ScheduleKeyDeletion")
               if policy.is_action_permitted(a, key_arn) == PermissionResult.PERMITTED}  # fmt: skip
    assert allowed == {"kms:Sign", "kms:GetPublicKey"}
    assert role["RoleName"] == "edgeyolo-dev-training-host"  # the key policy's Deny names it by ARN

    # moto's CloudFormation has no AWS::CloudWatch::Alarm model: it records the resource (with an empty
    # type) without creating an alarm, so the alarm is asserted on the template
    # (test_idle_alarm_stops_the_instance). Every resource of the deployed template was processed:
    cfn = boto3.client("cloudformation", region_name=REGION)
    for name, template in synthesized.templates.items():
        summaries = cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]
        body, _ = emulator_template(template, "ami-12345678")
        assert len(summaries) == len(json.loads(body)["Resources"])
        assert {r["ResourceStatus"] for r in summaries} == {"CREATE_COMPLETE"}


# (action, key, allowed): what the deployed training host role may do, evaluated by moto's IAM
# policy engine on the policy CloudFormation attached.
TRAINING_HOST_RIGHTS = [
    ("s3:GetObject", "datasets/flickr_logos_27_dataset.tar.gz", True),
    ("s3:GetObject", "pretrained/yolov2-tiny-voc.weights", True),
    ("s3:PutObject", "datasets/flickr_logos_27_dataset.tar.gz", False),  # poisoning the dataset
    ("s3:PutObject", "pretrained/yolov2-tiny-voc.weights", False),
    ("s3:PutObject", "checkpoints/run1/backup/x_1000.weights", True),
    ("s3:PutObject", "runs/run1/run.json", True),
    ("s3:PutObject", "models/m/v1/model.onnx", True),
    ("s3:PutObject", "models/m/v1.tar.gz", True),
    ("s3:PutObject", "models/m/latest.json", False),  # releasing is the separate step
    ("s3:PutObject", "models/m/latest.tar.gz", False),
    ("s3:DeleteObject", "checkpoints/run1/backup/x_1000.weights", False),  # wiping checkpoints
    ("s3:DeleteObjectVersion", "models/m/v1.tar.gz", False),
    ("s3:PutObject", "somewhere-else/x", False),
]


def _assert_training_host_rights(policy: IAMPolicy, bucket: str) -> None:
    got = [
        (
            action,
            key,
            policy.is_action_permitted(action, f"arn:aws:s3:::{bucket}/{key}") == PermissionResult.PERMITTED,
        )
        for action, key, _ in TRAINING_HOST_RIGHTS
    ]
    assert got == TRAINING_HOST_RIGHTS

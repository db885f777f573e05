"""Template assertions on properties (never logical ids), for the cdk.json configuration and for a
variant with every optional feature on."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match, Template

from tests.fixtures.cdk import Synthesized

PROJECT_TAGS = [{"Key": "Project", "Value": "edgeyolo"}, {"Key": "Stage", "Value": "dev"}]
TAGGABLE = {
    "AWS::S3::Bucket",
    "AWS::EC2::VPC",
    "AWS::EC2::Subnet",
    "AWS::EC2::RouteTable",
    "AWS::EC2::InternetGateway",
    "AWS::EC2::SecurityGroup",
    "AWS::EC2::Instance",
    "AWS::IAM::Role",
    "AWS::CloudWatch::Alarm",
}


def _template(synth: Synthesized, suffix: str) -> Template:
    return Template.from_json(synth.template(suffix))


def test_stack_names_and_outputs(synthesized: Synthesized) -> None:
    assert sorted(synthesized.templates) == ["EdgeYolo-dev-Artifacts", "EdgeYolo-dev-Training"]
    training = _template(synthesized, "-Training")
    training.has_output("GpuArch", {"Value": "7.0"})
    training.has_output("GpuSm", {"Value": "sm_70"})
    training.has_output("Region", {"Value": "us-east-1"})
    training.has_output("Spot", {"Value": "false"})
    training.has_output("InstanceId", {"Value": {"Ref": Match.any_value()}})
    artifacts = _template(synthesized, "-Artifacts")
    artifacts.has_output("BucketName", {"Value": {"Ref": Match.any_value()}})
    # the training stack's BucketName is the Artifacts stack's exported bucket name
    bucket_ref = artifacts.to_json()["Outputs"]["BucketName"]["Value"]
    exports = {
        o["Export"]["Name"]
        for o in artifacts.to_json()["Outputs"].values()
        if o["Value"] == bucket_ref and "Export" in o
    }
    training_bucket = training.to_json()["Outputs"]["BucketName"]["Value"]
    assert training_bucket["Fn::ImportValue"] in exports


def test_artifact_bucket_is_versioned_encrypted_private_retained(synthesized: Synthesized) -> None:
    artifacts = _template(synthesized, "-Artifacts")
    artifacts.resource_count_is("AWS::S3::Bucket", 2)
    artifacts.has_resource(
        "AWS::S3::Bucket",
        {
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": Match.object_like(
                {
                    "VersioningConfiguration": {"Status": "Enabled"},
                    "BucketEncryption": {
                        "ServerSideEncryptionConfiguration": [
                            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                        ]
                    },
                    "PublicAccessBlockConfiguration": {
                        "BlockPublicAcls": True,
                        "BlockPublicPolicy": True,
                        "IgnorePublicAcls": True,
                        "RestrictPublicBuckets": True,
                    },
                    "LoggingConfiguration": {
                        "DestinationBucketName": {"Ref": Match.any_value()},
                        "LogFilePrefix": "artifacts/",
                    },
                    "LifecycleConfiguration": {
                        "Rules": [
                            Match.object_like(
                                {
                                    "NoncurrentVersionExpiration": {
                                        "NoncurrentDays": 30,
                                        "NewerNoncurrentVersions": 3,
                                    },
                                    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
                                    "Status": "Enabled",
                                }
                            )
                        ]
                    },
                    "Tags": Match.array_with(PROJECT_TAGS),
                }
            ),
        },
    )
    # Both buckets deny plain HTTP.
    policies = artifacts.find_resources("AWS::S3::BucketPolicy")
    assert len(policies) == 2
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        )
    artifacts.resource_count_is("AWS::Budgets::Budget", 0)
    artifacts.resource_count_is("Custom::S3AutoDeleteObjects", 0)


def test_training_host_properties(synthesized: Synthesized) -> None:
    training = _template(synthesized, "-Training")
    training.resource_count_is("AWS::EC2::Instance", 1)
    training.has_resource_properties(
        "AWS::EC2::Instance",
        {
            "InstanceType": "p3.2xlarge",
            "Monitoring": True,
            "PropagateTagsToVolumeOnCreation": True,
            "BlockDeviceMappings": [
                {
                    "DeviceName": "/dev/xvda",
                    "Ebs": {
                        "DeleteOnTermination": True,
                        "Encrypted": True,
                        "VolumeSize": 150,
                        "VolumeType": "gp3",
                    },
                }
            ],
            "ImageId": {"Ref": Match.any_value()},
            "LaunchTemplate": {"LaunchTemplateId": {"Ref": Match.any_value()}, "Version": Match.any_value()},
            "Tags": Match.array_with([*PROJECT_TAGS[:1], {"Key": "Role", "Value": "training-host"}]),
            "NetworkInterfaces": [
                Match.object_like(
                    {"DeviceIndex": "0", "AssociatePublicIpAddress": True, "DeleteOnTermination": True}
                )
            ],
        },
    )
    # p3.2xlarge: no SSM-resolved (latest) DLAMI; a plain image-id parameter that `make deploy` fills
    # with the last DLAMI that drives a V100 (python -m cdk.ami), found by name and owner.
    assert training.find_parameters("*", {"Type": "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>"}) == {}
    (ami_param,) = training.find_parameters("*", {"Type": "AWS::EC2::Image::Id"}).values()
    assert "Default" not in ami_param
    assert "Proprietary Nvidia Driver AMI (Amazon Linux 2) Version 71.6" in ami_param["Description"]
    # One launch template: IMDSv2, no spot, and tags for what the instance launches.
    training.resource_count_is("AWS::EC2::LaunchTemplate", 1)
    template = next(iter(training.find_resources("AWS::EC2::LaunchTemplate").values()))
    data = template["Properties"]["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert "InstanceMarketOptions" not in data
    assert [spec["ResourceType"] for spec in data["TagSpecifications"]] == ["network-interface"]
    assert {"Key": "Project", "Value": "edgeyolo"} in data["TagSpecifications"][0]["Tags"]
    # No ingress at all by default: access is through SSM Session Manager.
    training.has_resource_properties("AWS::EC2::SecurityGroup", {"SecurityGroupIngress": Match.absent()})
    training.resource_count_is("AWS::EC2::SecurityGroupIngress", 0)
    training.resource_count_is("AWS::EC2::NatGateway", 0)


def test_role_has_ssm_core_and_the_bucket_only(synthesized: Synthesized) -> None:
    training = _template(synthesized, "-Training")
    roles = training.find_resources("AWS::IAM::Role")
    assert len(roles) == 1
    (role,) = roles.values()
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "ec2.amazonaws.com"
    }
    managed = json.dumps(role["Properties"]["ManagedPolicyArns"])
    assert "AmazonSSMManagedInstanceCore" in managed
    assert len(role["Properties"]["ManagedPolicyArns"]) == 1
    (policy,) = training.find_resources("AWS::IAM::Policy").values()
    everything = policy["Properties"]["PolicyDocument"]["Statement"]
    actions = {
        a for s in everything for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    # S3 on the bucket, and signing bundles with the Artifacts stack's KMS key: nothing else
    assert {a for a in actions if not a.startswith("s3:")} == {"kms:Sign", "kms:GetPublicKey"}
    statements = [s for s in everything if "kms:" not in json.dumps(s["Action"])]
    # every resource is the artifact bucket's ARN or an object ARN under it, imported from the Artifacts
    # stack: find the export whose value is the ARN of the versioned bucket (by properties, not by name)
    artifacts = _template(synthesized, "-Artifacts").to_json()
    (bucket_id,) = [
        rid
        for rid, res in artifacts["Resources"].items()
        if res["Type"] == "AWS::S3::Bucket"
        and res["Properties"].get("VersioningConfiguration", {}).get("Status") == "Enabled"
    ]
    arn_exports = {
        out["Export"]["Name"]
        for out in artifacts["Outputs"].values()
        if "Export" in out and out["Value"] == {"Fn::GetAtt": [bucket_id, "Arn"]}
    }
    assert len(arn_exports) == 1
    arn = {"Fn::ImportValue": next(iter(arn_exports))}

    def scoped(resource: object) -> str:
        """The object pattern of ``resource`` ("" for the bucket itself)."""
        if resource == arn:
            return ""
        assert isinstance(resource, dict) and resource["Fn::Join"][1][0] == arn, resource
        return resource["Fn::Join"][1][1]

    by_effect: dict[tuple[str, str], set[str]] = {}
    for statement in statements:
        targets = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        acts = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        for action in acts:
            by_effect.setdefault((statement["Effect"], action), set()).update(scoped(r) for r in targets)
    assert by_effect[("Allow", "s3:GetObject")] == {
        f"/{p}*" for p in ("datasets/", "pretrained/", "checkpoints/", "runs/", "models/")
    }
    assert by_effect[("Allow", "s3:PutObject")] == {"/checkpoints/*", "/runs/*", "/models/*"}
    assert by_effect[("Deny", "s3:DeleteObject")] == by_effect[("Deny", "s3:DeleteObjectVersion")] == {"/*"}
    assert by_effect[("Deny", "s3:PutObject")] == {"/models/*/latest.json", "/models/*/latest.tar.gz"}
    assert not any(effect == "Allow" and action.startswith("s3:Delete") for effect, action in by_effect)
    listing = next(s for s in statements if s["Action"] == "s3:ListBucket")
    assert listing["Condition"]["StringLike"]["s3:prefix"] == [
        "datasets/*",
        "pretrained/*",
        "checkpoints/*",
        "runs/*",
        "models/*",
    ]


def test_release_policy_writes_only_the_latest_keys(synthesized: Synthesized) -> None:
    artifacts = _template(synthesized, "-Artifacts")
    (policy,) = artifacts.find_resources("AWS::IAM::ManagedPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    puts = [s for s in statements if "s3:PutObject" in json.dumps(s["Action"])]
    assert len(puts) == 1 and puts[0]["Effect"] == "Allow"
    patterns = sorted(r["Fn::Join"][1][-1] for r in puts[0]["Resource"])
    assert patterns == ["/models/*/latest.json", "/models/*/latest.tar.gz"]
    assert not any("Delete" in json.dumps(s["Action"]) for s in statements)
    outputs = artifacts.to_json()["Outputs"]
    assert "ReleasePolicyArn" in outputs


def test_idle_alarm_stops_the_instance(synthesized: Synthesized) -> None:
    training = _template(synthesized, "-Training")
    training.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "AWS/EC2",
            "MetricName": "CPUUtilization",
            "Dimensions": [{"Name": "InstanceId", "Value": {"Ref": Match.any_value()}}],
            "ComparisonOperator": "LessThanThreshold",
            "Threshold": 5,
            "Period": 300,
            "EvaluationPeriods": 12,
            "TreatMissingData": "notBreaching",
            "AlarmActions": [
                {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":automate:us-east-1:ec2:stop"]]}
            ],
        },
    )


def test_every_taggable_resource_carries_project_and_stage(synthesized: Synthesized) -> None:
    seen = set()
    for name, template in synthesized.templates.items():
        stage = name.split("-")[1]
        for resource in template["Resources"].values():
            if resource["Type"] not in TAGGABLE:
                continue
            seen.add(resource["Type"])
            tags = {t["Key"]: t["Value"] for t in resource["Properties"]["Tags"]}
            assert (tags["Project"], tags["Stage"]) == ("edgeyolo", stage), resource["Type"]
    assert seen == TAGGABLE


def test_variant_spot_ssh_budget_throwaway(synthesized_variant: Synthesized) -> None:
    synth = synthesized_variant
    assert sorted(synth.templates) == ["EdgeYolo-scratch-Artifacts", "EdgeYolo-scratch-Training"]
    training = _template(synth, "-Training")
    training.has_output("GpuArch", {"Value": "7.5"})
    training.has_output("GpuSm", {"Value": "sm_75"})
    training.has_output("Spot", {"Value": "true"})  # the train role's spot watcher (aws inventory)
    training.has_resource_properties(
        "AWS::EC2::Instance",
        {
            "InstanceType": "g4dn.xlarge",
            "ImageId": "ami-0123456789abcdef0",
            "KeyName": "edgeyolo-key",
            "BlockDeviceMappings": [Match.object_like({"Ebs": Match.object_like({"VolumeSize": 200})})],
        },
    )
    assert training.find_parameters("*", {"Type": "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>"}) == {}
    training.has_resource_properties(
        "AWS::EC2::LaunchTemplate",
        {
            "LaunchTemplateData": Match.object_like(
                {
                    "MetadataOptions": Match.object_like({"HttpTokens": "required"}),
                    "TagSpecifications": [
                        Match.object_like({"ResourceType": "network-interface"}),
                        Match.object_like({"ResourceType": "spot-instances-request"}),
                    ],
                    "InstanceMarketOptions": {
                        "MarketType": "spot",
                        "SpotOptions": {
                            "InstanceInterruptionBehavior": "stop",
                            "MaxPrice": "0.3",
                            "SpotInstanceType": "persistent",
                        },
                    },
                }
            )
        },
    )
    training.has_resource_properties(
        "AWS::EC2::SecurityGroup",
        {
            "SecurityGroupIngress": [
                Match.object_like(
                    {"CidrIp": "203.0.113.0/24", "FromPort": 22, "ToPort": 22, "IpProtocol": "tcp"}
                )
            ]
        },
    )
    training.has_resource_properties("AWS::CloudWatch::Alarm", {"EvaluationPeriods": 6})
    artifacts = _template(synth, "-Artifacts")
    artifacts.has_resource("AWS::S3::Bucket", {"DeletionPolicy": "Delete", "UpdateReplacePolicy": "Delete"})
    artifacts.resource_count_is("Custom::S3AutoDeleteObjects", 2)
    artifacts.has_resource_properties(
        "AWS::Budgets::Budget",
        {
            "Budget": {
                "BudgetName": "edgeyolo-scratch-monthly",
                "BudgetType": "COST",
                "TimeUnit": "MONTHLY",
                "BudgetLimit": {"Amount": 50, "Unit": "USD"},
            },
            "NotificationsWithSubscribers": Match.array_with(
                [
                    {
                        "Notification": Match.object_like({"NotificationType": "ACTUAL", "Threshold": 80}),
                        "Subscribers": [{"Address": "ops@example.com", "SubscriptionType": "EMAIL"}],
                    }
                ]
            ),
        },
    )


def test_signing_key_signs_for_the_training_host_only(synthesized: Synthesized) -> None:
    artifacts = _template(synthesized, "-Artifacts")
    (key,) = artifacts.find_resources("AWS::KMS::Key").values()
    props = key["Properties"]
    assert (props["KeySpec"], props["KeyUsage"]) == ("ECC_NIST_P256", "SIGN_VERIFY")
    assert key["DeletionPolicy"] == "Retain"  # bundles signed with it stay verifiable
    statements = {s["Sid"]: s for s in props["KeyPolicy"]["Statement"]}
    assert "kms:Sign" not in statements["AdministerButNotSign"]["Action"]
    deny = statements["OnlyTheTrainingHostSigns"]
    assert (deny["Effect"], deny["Action"], deny["Principal"]) == ("Deny", "kms:Sign", {"AWS": "*"})
    arn = json.dumps(deny["Condition"]["StringNotEquals"]["aws:PrincipalArn"])
    assert ":role/edgeyolo-dev-training-host" in arn
    training = _template(synthesized, "-Training")
    (role,) = training.find_resources("AWS::IAM::Role").values()
    assert role["Properties"]["RoleName"] == "edgeyolo-dev-training-host"
    assert training.to_json()["Outputs"]["SigningKey"]["Value"] == "alias/edgeyolo-dev-bundles"

"""make teardown / make status against a local moto server with the synthesized stacks deployed.

moto notes (why some checks read the way they do): moto's EC2 does not copy launch-template tag
specifications or PropagateTagsToVolumeOnCreation onto the root volume/ENI, so in the emulator only
the instance itself carries the project tags; the planted strays are tagged explicitly. moto does not
execute SSM commands: it records them and reports Success, so --pull checks the command sent.
"""

from __future__ import annotations

import subprocess
import sys

import boto3
import pytest

from cdk.billing import status as status_cli
from cdk.billing import teardown as teardown_cli
from cdk.billing.sweep import delete_leftovers, find_leftovers, find_spot_requests
from tests.fixtures.cdk import REGION, REPO, Synthesized, deploy_to_moto

pytestmark = pytest.mark.slow

TAGS = {"Project": "edgeyolo", "Stage": "dev"}
TAG_SPEC = [{"Key": k, "Value": v} for k, v in TAGS.items()]


def _instance(instance_id: str) -> dict:
    ec2 = boto3.client("ec2", region_name=REGION)
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def _stack_names() -> set[str]:
    cfn = boto3.client("cloudformation", region_name=REGION)
    return {s["StackName"] for s in cfn.describe_stacks()["Stacks"] if s["StackStatus"] != "DELETE_COMPLETE"}


def test_status_then_stop_only_keeps_a_stopped_instance(
    synthesized: Synthesized, aws_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = deploy_to_moto(synthesized)
    instance_id = outputs["EdgeYolo-dev-Training"]["InstanceId"]

    assert status_cli.main([]) == 0
    out = capsys.readouterr().out
    assert "stack EdgeYolo-dev-Training: CREATE_COMPLETE" in out
    row = next(line for line in out.splitlines() if line.startswith("instance"))
    assert instance_id in row and "running" in row and "p3.2xlarge" in row and "3.0600" in row
    assert "UTC" in row  # since
    # the root volume too, found through its attachment (moto does not tag it; AWS would)
    volume = next(line for line in out.splitlines() if line.startswith("volume"))
    assert "in-use" in volume and "150 GiB gp3" in volume and "0.0164" in volume
    assert "estimated total: $3.08/h" in out
    assert "prices: mid-2026, third-party tables" in out

    assert teardown_cli.main(["--stop-only", "--timeout", "60"]) == 0
    out = capsys.readouterr().out
    assert instance_id in out and "stopped" in out
    assert _instance(instance_id)["State"]["Name"] == "stopped"
    assert _stack_names() == {"EdgeYolo-dev-Artifacts", "EdgeYolo-dev-Training"}

    assert status_cli.main([]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("instance"))
    assert "stopped" in row and "0.0000" in row
    assert "estimated total: $0.02/h" in out  # a stopped host's volume still bills


def test_teardown_reports_strays_then_sweep_removes_them(
    synthesized: Synthesized, aws_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = deploy_to_moto(synthesized)
    instance_id = outputs["EdgeYolo-dev-Training"]["InstanceId"]
    bucket = outputs["EdgeYolo-dev-Artifacts"]["BucketName"]
    ec2 = boto3.client("ec2", region_name=REGION)
    volume = ec2.create_volume(
        AvailabilityZone=f"{REGION}a",
        Size=20,
        VolumeType="gp3",
        TagSpecifications=[{"ResourceType": "volume", "Tags": TAG_SPEC}],
    )["VolumeId"]
    eip = ec2.allocate_address(
        Domain="vpc", TagSpecifications=[{"ResourceType": "elastic-ip", "Tags": TAG_SPEC}]
    )["AllocationId"]
    snapshot = ec2.create_snapshot(
        VolumeId=volume, TagSpecifications=[{"ResourceType": "snapshot", "Tags": TAG_SPEC}]
    )["SnapshotId"]
    default_subnet = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])[
        "Subnets"
    ][0]
    eni = ec2.create_network_interface(
        SubnetId=default_subnet["SubnetId"],
        TagSpecifications=[{"ResourceType": "network-interface", "Tags": TAG_SPEC}],
    )["NetworkInterface"]["NetworkInterfaceId"]
    # Another project's volume must be left alone.
    other = ec2.create_volume(
        AvailabilityZone=f"{REGION}a",
        Size=5,
        TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "Project", "Value": "other"}]}],
    )["VolumeId"]

    assert teardown_cli.main(["--timeout", "60"]) == 1
    out = capsys.readouterr().out
    kinds = ("volume", "elastic-ip", "instance", "snapshot", "network-interface")
    table = [line for line in out.splitlines() if line.startswith(kinds)]
    assert sorted(line.split()[1] for line in table) == sorted([volume, eip, snapshot, eni]), out
    assert "4 billable resource(s) remain" in out
    assert "problem:" not in out
    assert f"kept: stack EdgeYolo-dev-Artifacts with s3://{bucket}" in out
    assert _instance(instance_id)["State"]["Name"] == "terminated"
    assert _stack_names() == {"EdgeYolo-dev-Artifacts"}

    assert teardown_cli.main(["--sweep", "--timeout", "60"]) == 0
    out = capsys.readouterr().out
    assert "nothing billable left with these tags" in out
    assert find_leftovers(ec2, TAGS) == []
    assert [v["VolumeId"] for v in ec2.describe_volumes()["Volumes"] if v["VolumeId"] in (volume, other)] == [
        other
    ]
    assert ec2.describe_addresses()["Addresses"] == []
    assert ec2.describe_snapshots(Filters=[{"Name": "snapshot-id", "Values": [snapshot]}])["Snapshots"] == []
    assert eni not in {
        n["NetworkInterfaceId"] for n in ec2.describe_network_interfaces()["NetworkInterfaces"]
    }
    # The retained bucket survives a plain teardown.
    assert boto3.client("s3", region_name=REGION).head_bucket(Bucket=bucket)


def test_purge_deletes_the_versioned_bucket(
    synthesized: Synthesized, aws_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = deploy_to_moto(synthesized)
    bucket = outputs["EdgeYolo-dev-Artifacts"]["BucketName"]
    s3 = boto3.client("s3", region_name=REGION)
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    for i in range(3):
        s3.put_object(Bucket=bucket, Key="checkpoints/run1/model.backup", Body=b"w" * (i + 1))
    s3.put_object(Bucket=bucket, Key="models/bundle.tar.gz", Body=b"bundle")
    s3.delete_object(Bucket=bucket, Key="models/bundle.tar.gz")  # leaves a delete marker
    listing = s3.list_object_versions(Bucket=bucket)
    assert (len(listing["Versions"]), len(listing["DeleteMarkers"])) == (4, 1)

    # Without the confirmation nothing happens.
    assert teardown_cli.main(["--purge"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: --purge deletes s3://{bucket} and its access-log bucket with every version; "
        f"confirm with --confirm-purge {bucket}"
    )
    assert _stack_names() == {"EdgeYolo-dev-Artifacts", "EdgeYolo-dev-Training"}

    code = teardown_cli.main(["--purge", "--confirm-purge", bucket, "--timeout", "60"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "nothing billable left" in out
    assert _stack_names() == set()
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert not [n for n in names if n.startswith("edgeyolo-dev-artifacts")], names


def test_pull_sends_the_sync_command_through_ssm(
    synthesized: Synthesized, aws_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = deploy_to_moto(synthesized)["EdgeYolo-dev-Training"]
    assert teardown_cli.main(["--pull", "--timeout", "60"]) == 0
    (command,) = boto3.client("ssm", region_name=REGION).list_commands()["Commands"]
    assert command["DocumentName"] == "AWS-RunShellScript"
    assert command["InstanceIds"] == [outputs["InstanceId"]]
    assert command["Parameters"]["commands"][-1] == (
        f'"$AWS" s3 sync /var/lib/edgeyolo/train/runs s3://{outputs["BucketName"]}/checkpoints '
        "--only-show-errors"
    )
    assert "nothing billable left" in capsys.readouterr().out


@pytest.mark.parametrize("cli", [teardown_cli, status_cli])
def test_clear_errors_for_wrong_region_or_no_credentials(
    cli, aws_env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["--region", "us-east-9"]) == 2
    assert capsys.readouterr().err == (
        "error: --region: unknown AWS region 'us-east-9' (e.g. us-east-1, eu-west-1)\n"
    )
    assert cli.main(["--region", "useast1"]) == 2
    assert capsys.readouterr().err == (
        "error: cdk.json context + command line: region: 'useast1' is not an AWS region name like us-east-1\n"
    )
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert cli.main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no AWS credentials found: set AWS_PROFILE")
    assert err.count("\n") == 1


def test_teardown_in_a_region_without_the_stacks(aws_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert teardown_cli.main(["--region", "eu-west-1"]) == 2
    assert capsys.readouterr().err == (
        "error: no EdgeYolo-dev-* stacks and nothing tagged {'Project': 'edgeyolo', 'Stage': 'dev'} "
        "in eu-west-1 (wrong --region or --stage?)\n"
    )


def test_cli_entry_point_exits_non_zero_with_one_line(aws_env: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cdk.billing.status", "--region", "xx-nowhere-1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr == "error: --region: unknown AWS region 'xx-nowhere-1' (e.g. us-east-1, eu-west-1)\n"
    assert proc.stdout == ""


def test_spot_request_cancelled_before_the_stack_and_its_replacement_swept(
    synthesized: Synthesized,
    aws_env: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A persistent spot request (the stack's spot option) relaunches a terminated host: teardown
    cancels it before deleting the stack, and --sweep terminates an untagged replacement it launched."""
    outputs = deploy_to_moto(synthesized)
    ec2 = boto3.client("ec2", region_name=REGION)
    image = _instance(outputs["EdgeYolo-dev-Training"]["InstanceId"])["ImageId"]
    request = ec2.request_spot_instances(
        InstanceCount=1,
        Type="persistent",
        LaunchSpecification={"ImageId": image, "InstanceType": "g4dn.xlarge"},
        TagSpecifications=[{"ResourceType": "spot-instances-request", "Tags": TAG_SPEC}],
    )["SpotInstanceRequests"][0]
    request_id = request["SpotInstanceRequestId"]
    # the replacement it launched carries no project tag (only the request and the interface do)
    replacement = ec2.run_instances(ImageId=image, InstanceType="g4dn.xlarge", MinCount=1, MaxCount=1)
    replacement_id = replacement["Instances"][0]["InstanceId"]

    # plain teardown: the request is cancelled first, the replacement it launched (untagged, not the
    # stack's) is terminated, the stack goes, nothing is left to relaunch. moto does not fulfil spot
    # requests, so the request's InstanceId is filled in as AWS would.
    real_find = teardown_cli.find_spot_requests

    def fulfilled(ec2_client, tags):  # type: ignore[no-untyped-def]
        found = real_find(ec2_client, tags)
        for request_found in found:
            request_found.raw["InstanceId"] = replacement_id
        return found

    monkeypatch.setattr(teardown_cli, "find_spot_requests", fulfilled)
    code = teardown_cli.main(["--timeout", "60"])
    out, err = capsys.readouterr()
    assert code == 0, out
    assert f"cancelled spot requests {request_id}" in err
    assert err.index("cancelled spot requests") < err.index(f"terminating {replacement_id}")
    assert err.index(f"terminating {replacement_id}") < err.index("deleting EdgeYolo-dev-Training")
    assert _instance(replacement_id)["State"]["Name"] == "terminated"
    assert find_spot_requests(ec2, TAGS) == [] and _stack_names() == {"EdgeYolo-dev-Artifacts"}
    monkeypatch.setattr(teardown_cli, "find_spot_requests", real_find)
    replacement_id = ec2.run_instances(ImageId=image, InstanceType="g4dn.xlarge", MinCount=1, MaxCount=1)[
        "Instances"
    ][0]["InstanceId"]

    # a request that is still open (say, cancelled by nobody after a failed delete) is a leftover,
    # and --sweep takes its untagged instance with it
    moto_request = ec2.request_spot_instances(
        InstanceCount=1,
        Type="persistent",
        LaunchSpecification={"ImageId": image, "InstanceType": "g4dn.xlarge"},
        TagSpecifications=[{"ResourceType": "spot-instances-request", "Tags": TAG_SPEC}],
    )["SpotInstanceRequests"][0]["SpotInstanceRequestId"]
    leftovers = find_leftovers(ec2, TAGS)
    (spot,) = [x for x in leftovers if x.kind == "spot-request"]
    assert spot.id == moto_request
    spot.raw["InstanceId"] = replacement_id  # moto does not fulfil requests: name the instance it launched
    assert delete_leftovers(ec2, leftovers, 60) == []
    assert _instance(replacement_id)["State"]["Name"] == "terminated"
    assert find_leftovers(ec2, TAGS) == []


def test_purge_refused_when_the_stack_lost_its_bucket_output(
    synthesized: Synthesized,
    aws_env: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A rolled-back Artifacts stack has no BucketName output: --purge cannot confirm what it would
    delete, so it refuses (before, ``None == None`` let it through)."""
    deploy_to_moto(synthesized)
    real = teardown_cli.describe_stack

    def without_outputs(cfn, name):  # type: ignore[no-untyped-def]
        stack = real(cfn, name)
        return None if stack is None else {**stack, "Outputs": [], "StackStatus": "UPDATE_ROLLBACK_COMPLETE"}

    monkeypatch.setattr(teardown_cli, "describe_stack", without_outputs)
    assert teardown_cli.main(["--purge"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(
        "error: --purge: stack EdgeYolo-dev-Artifacts (UPDATE_ROLLBACK_COMPLETE) has no BucketName"
    )
    assert teardown_cli.main(["--pull"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--pull: stack EdgeYolo-dev-Training" in err and "has no InstanceId or BucketName output" in err
    assert _stack_names() == {"EdgeYolo-dev-Artifacts", "EdgeYolo-dev-Training"}

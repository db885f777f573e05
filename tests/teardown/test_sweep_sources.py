"""What the sweep finds beyond tagged resources, and the purge's retry (moto in-process, and
botocore's Stubber where moto cannot put a resource into the state AWS leaves it in).

Each test is named after the bill it stops.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from cdk.billing.purge import purge_bucket
from cdk.billing.sweep import LIVE_SPOT_STATES, delete_leftovers, find_leftovers, find_spot_requests

REGION = "us-east-1"
BUCKET = "edgeyolo-dev-access-logs"
TAGS = {"Project": "edgeyolo", "Stage": "dev"}
TAG_SPEC = [{"Key": k, "Value": v} for k, v in TAGS.items()]


@pytest.fixture
def ec2(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        yield boto3.client("ec2", region_name=REGION)


def _tagged_instance(ec2: Any) -> str:
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    return ec2.run_instances(
        ImageId=image, InstanceType="t3.micro", MinCount=1, MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": TAG_SPEC}],
    )["Instances"][0]["InstanceId"]  # fmt: skip


def test_disabled_persistent_spot_request_is_found_and_cancelled() -> None:
    """The idle alarm stops the spot host; AWS then leaves its persistent request ``disabled``, and
    a later start relaunches it. The sweep asks for that state and cancels the request."""
    client = boto3.client("ec2", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    request = {
        "SpotInstanceRequestId": "sir-disabled1",
        "State": "disabled",
        "Type": "persistent",
        "InstanceId": "i-0123456789abcdef0",
        "LaunchSpecification": {"InstanceType": "p3.2xlarge"},
    }
    expected_filters = [
        {"Name": "tag:Project", "Values": ["edgeyolo"]},
        {"Name": "tag:Stage", "Values": ["dev"]},
        {"Name": "state", "Values": LIVE_SPOT_STATES},
    ]
    with Stubber(client) as stub:
        stub.add_response(
            "describe_spot_instance_requests",
            {"SpotInstanceRequests": [request], "NextToken": "page-2"},
            {"Filters": expected_filters},
        )
        stub.add_response(
            "describe_spot_instance_requests",
            {"SpotInstanceRequests": []},
            {"Filters": expected_filters, "NextToken": "page-2"},
        )
        (found,) = find_spot_requests(client, TAGS)
        assert (found.id, found.state) == ("sir-disabled1", "disabled")
        stub.add_response(
            "cancel_spot_instance_requests",
            {"CancelledSpotInstanceRequests": [{"SpotInstanceRequestId": "sir-disabled1"}]},
            {"SpotInstanceRequestIds": ["sir-disabled1"]},
        )
        stub.add_response("terminate_instances", {"TerminatingInstances": []}, {"InstanceIds": ANY})
        stub.add_response(
            "describe_instances",
            {
                "Reservations": [
                    {"Instances": [{"InstanceId": request["InstanceId"], "State": {"Name": "terminated"}}]}
                ]
            },
            {"InstanceIds": [request["InstanceId"]]},
        )
        assert delete_leftovers(client, [found], timeout=5) == []
        stub.assert_no_pending_responses()


def test_untagged_ami_and_snapshots_made_from_a_project_instance_are_found_and_deleted(ec2: Any) -> None:
    """Someone makes an AMI of the training host to keep its environment: neither the AMI nor its
    snapshot carries the project tags, both bill after teardown. Found by their source (the
    AMI's SourceInstanceId, the snapshot's CreateImage description), deregistered, then deleted."""
    instance = _tagged_instance(ec2)
    ami = ec2.create_image(InstanceId=instance, Name="edgeyolo-host-backup")["ImageId"]
    (mapping,) = ec2.describe_images(ImageIds=[ami])["Images"][0]["BlockDeviceMappings"]
    image_snapshot = mapping["Ebs"]["SnapshotId"]
    foreign_instance = ec2.run_instances(
        ImageId=ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"],
        InstanceType="t3.micro", MinCount=1, MaxCount=1,
    )["Instances"][0]["InstanceId"]  # fmt: skip
    foreign_ami = ec2.create_image(InstanceId=foreign_instance, Name="someone-elses")["ImageId"]
    ec2.terminate_instances(InstanceIds=[instance])  # the host is gone, its image is not

    leftovers = find_leftovers(ec2, TAGS)
    found = {(x.kind, x.id) for x in leftovers}
    assert ("image", ami) in found and ("snapshot", image_snapshot) in found
    assert not any(x.id in (foreign_ami, foreign_instance) for x in leftovers)
    assert [x.kind for x in leftovers] == sorted(
        (x.kind for x in leftovers), key=["instance", "image", "volume", "snapshot"].index
    )
    assert delete_leftovers(ec2, leftovers, timeout=10) == []
    assert ec2.describe_images(ImageIds=[ami])["Images"] == []
    assert image_snapshot not in {
        s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    }
    assert find_leftovers(ec2, TAGS) == []
    assert ec2.describe_images(ImageIds=[foreign_ami])["Images"]  # not ours: kept


def test_detached_volumes_and_snapshots_of_project_volumes_are_found(ec2: Any) -> None:
    """A data volume detached from the host (DeleteOnTermination false), a snapshot of it, and a
    volume restored from that snapshot: untagged, each found through the one before."""
    instance = _tagged_instance(ec2)
    zone = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]["Placement"][
        "AvailabilityZone"
    ]
    data = ec2.create_volume(AvailabilityZone=zone, Size=100, VolumeType="gp3")["VolumeId"]
    ec2.attach_volume(VolumeId=data, InstanceId=instance, Device="/dev/sdf")
    snapshot = ec2.create_snapshot(VolumeId=data)["SnapshotId"]
    restored = ec2.create_volume(AvailabilityZone=zone, SnapshotId=snapshot, VolumeType="gp3")["VolumeId"]
    stranger = ec2.create_volume(AvailabilityZone=zone, Size=8, VolumeType="gp3")["VolumeId"]

    found = {(x.kind, x.id) for x in find_leftovers(ec2, TAGS)}
    assert {("volume", data), ("snapshot", snapshot), ("volume", restored)} <= found
    assert ("volume", stranger) not in found


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        for i in range(3):
            client.put_object(Bucket=BUCKET, Key=f"access/{i}", Body=b"log line\n")
        yield client


class LateLogs:
    """An S3 client where ``deliveries`` access-log objects arrive right after each batch delete,
    as S3's log delivery does for a while after the last request."""

    def __init__(self, client: Any, deliveries: int) -> None:
        self._client = client
        self.deliveries = deliveries

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def delete_objects(self, **kwargs: Any) -> Any:
        result = self._client.delete_objects(**kwargs)
        if self.deliveries:
            self.deliveries -= 1
            self._client.put_object(Bucket=kwargs["Bucket"], Key="access/late", Body=b"late\n")
        return result


def test_bucket_receiving_late_access_logs_is_emptied_again_and_deleted(
    s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert purge_bucket(LateLogs(s3, deliveries=2), BUCKET, pause=0.01) == 5
    assert BUCKET not in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert "new objects arrived, emptying it again (2/5)" in capsys.readouterr().err


def test_bucket_that_keeps_receiving_is_one_line_error_not_a_traceback(s3: Any) -> None:
    with pytest.raises(RuntimeError) as caught:
        purge_bucket(LateLogs(s3, deliveries=99), BUCKET, attempts=3, pause=0.01)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"s3://{BUCKET}: still receiving objects after 3 attempts")

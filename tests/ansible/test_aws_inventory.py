"""The aws inventory and train.yml's stack-output play against a local moto server.

No AWS account here: moto (CloudFormation, EC2, S3) stands in, reached through botocore's
standard AWS_ENDPOINT_URL setting, which the amazon.aws plugins and modules honour because
they leave endpoint_url unset. Checked: the aws_ec2 plugin keeps only the running instance
tagged Project=edgeyolo, Stage=$EDGEYOLO_STAGE, Role=training-host and puts it in group
`training` with its SSM instance id; the first play of train.yml reads the stack's outputs so
that the group vars resolve the bucket (SSM file transfer, dataset, publish) and the darknet
ARCH from GpuSm.
"""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import yaml
from moto.server import ThreadedMotoServer

from tests.ansible.runner import ANSIBLE_DIR, REPO, VENV_BIN, ansible_env

STAGE = "ci"
REGION = "us-east-1"
TEMPLATE = {
    "Resources": {"Artifacts": {"Type": "AWS::S3::Bucket"}},
    "Outputs": {
        "BucketName": {"Value": {"Ref": "Artifacts"}},
        "GpuSm": {"Value": "sm_75"},
        "CudaHome": {"Value": "/usr/local/cuda-12.9"},
        "Spot": {"Value": "true"},
        "Region": {"Value": REGION},
    },
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A moto server with the training stack and three instances; yields the environment and ids."""
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "EDGEYOLO_STAGE": STAGE,
    }
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    ec2 = session.client("ec2", endpoint_url=env["AWS_ENDPOINT_URL"])
    image = ec2.describe_images()["Images"][0]["ImageId"]

    def instance(tags: dict[str, str]) -> str:
        spec = [{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]
        made = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, TagSpecifications=spec)
        return made["Instances"][0]["InstanceId"]

    ids = {
        "training": instance({"Project": "edgeyolo", "Stage": STAGE, "Role": "training-host"}),
        "other_stage": instance({"Project": "edgeyolo", "Stage": "prod", "Role": "training-host"}),
        "other_role": instance({"Project": "edgeyolo", "Stage": STAGE, "Role": "bastion"}),
    }
    cfn = session.client("cloudformation", endpoint_url=env["AWS_ENDPOINT_URL"])
    cfn.create_stack(StackName=f"EdgeYolo-{STAGE}-Training", TemplateBody=json.dumps(TEMPLATE))
    outputs = cfn.describe_stacks(StackName=f"EdgeYolo-{STAGE}-Training")["Stacks"][0]["Outputs"]
    env["bucket"] = next(o["OutputValue"] for o in outputs if o["OutputKey"] == "BucketName")
    env.update({f"id_{k}": v for k, v in ids.items()})
    yield env
    server.stop()


def _plain(value: object) -> object:
    """ansible-inventory --list wraps untrusted strings as {"__ansible_unsafe": value}."""
    if isinstance(value, dict) and set(value) == {"__ansible_unsafe"}:
        return value["__ansible_unsafe"]
    return value


def _env(aws: dict[str, str], tmp: Path) -> dict[str, str]:
    env = ansible_env(tmp)
    env.update({k: v for k, v in aws.items() if k.isupper()})
    return env


def test_inventory_finds_only_the_tagged_training_host(aws: dict[str, str], tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(VENV_BIN / "ansible-inventory"), "-i", "ansible/inventories/aws", "--list"],
        cwd=REPO,
        env=_env(aws, tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    inventory = json.loads(proc.stdout)
    assert inventory["training"]["hosts"] == [aws["id_training"]]
    host = inventory["_meta"]["hostvars"][aws["id_training"]]
    assert _plain(host["ansible_aws_ssm_instance_id"]) == aws["id_training"]
    assert _plain(host["ansible_connection"]) == "amazon.aws.aws_ssm"
    assert host["darknet_gpu"] is True and host["darknet_cudnn_half"] is True
    assert _plain(host["ec2_instance_type"]) == "m1.small"  # moto's default for run_instances
    assert f"stage_{STAGE}" in inventory


def test_stack_outputs_play_resolves_bucket_and_arch(aws: dict[str, str], tmp_path: Path) -> None:
    """train.yml's first play, as written, then the group vars that depend on it."""
    plays = yaml.safe_load((ANSIBLE_DIR / "train.yml").read_text(encoding="utf-8"))
    show = {
        "name": "Show what the group vars resolve to",
        "hosts": "training",
        "gather_facts": False,
        "tasks": [
            {
                "name": "Print the resolved values (on the controller: no SSM session needed)",
                "ansible.builtin.debug": {
                    "msg": "RESOLVED {{ {'bucket': edgeyolo_bucket, "
                    "'ssm_bucket': ansible_aws_ssm_bucket_name, "
                    "'arch': darknet_cuda_arch, 'cuda': darknet_cuda_home, 'dataset': dataset_archive_url, "
                    "'publish': publish_s3_bucket, 'spot': train_spot_watch} | to_json }}"
                },
                "delegate_to": "localhost",
            }
        ],
    }
    playbook = tmp_path / "stack.yml"
    playbook.write_text(yaml.safe_dump([plays[0], show], sort_keys=False), encoding="utf-8")
    proc = subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "-i", "ansible/inventories/aws", str(playbook)],
        cwd=REPO,
        env=_env(aws, tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    line = next(x for x in proc.stdout.splitlines() if "RESOLVED" in x)
    resolved = json.loads(line.split("RESOLVED", 1)[1].strip().rstrip('"').replace('\\"', '"'))
    bucket = aws["bucket"]
    assert resolved == {
        "bucket": bucket,
        "ssm_bucket": bucket,
        "arch": "sm_75",
        "cuda": "/usr/local/cuda-12.9",
        "dataset": f"s3://{bucket}/datasets/flickr_logos_27_dataset.tar.gz",
        "publish": bucket,
        "spot": True,
    }

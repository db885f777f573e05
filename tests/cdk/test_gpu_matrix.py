"""The GPU compatibility matrix: every row agrees with itself, every refusal is one line naming a
working choice, the README's table is the rendered matrix, and the AMI resolver finds images by
name and owner (moto)."""

from __future__ import annotations

import re

import boto3
import pytest

from cdk.ami import deploy_parameters, find_image
from cdk.edgeyolo_cdk.config import parse_context
from cdk.edgeyolo_cdk.gpu import (
    CUDA_COMPUTE_RANGE,
    MATRIX,
    OPEN_MODULE_MIN_COMPUTE,
    ROW_BY_INSTANCE_TYPE,
    render_markdown,
)
from edge_image.contract.errors import UserError
from tests.fixtures.cdk import REPO, base_context

OSS_SSM = "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id"


def _version(text: str) -> tuple[int, int]:
    major, minor = text.split(".")
    return int(major), int(minor)


@pytest.mark.parametrize("row", MATRIX, ids=[r.instance_type for r in MATRIX])
def test_each_row_is_consistent_and_parses(row) -> None:
    """The row's CUDA compiles its GPU, its driver runs that CUDA and drives that GPU, the DLAMI is
    findable, and the context with that instance type parses to the row's CUDA home."""
    lo, hi = CUDA_COMPUTE_RANGE[_version(row.cuda)[0]]
    assert lo <= row.gpu.compute_int <= hi
    assert _version(row.cuda) <= _version(row.driver.max_cuda)
    assert row.gpu.compute_int >= row.driver.min_compute
    assert (row.dlami.ssm_parameter is None) != (row.dlami.image_name is None)
    if "OSS" in row.dlami.title:
        assert row.gpu.compute_int >= OPEN_MODULE_MIN_COMPUTE
    cfg = parse_context({**base_context(), "instanceType": row.instance_type})
    assert (cfg.gpu, cfg.cuda_home, cfg.row.dlami) == (row.gpu, f"/usr/local/cuda-{row.cuda}", row.dlami)


def test_default_p3_takes_the_last_dlami_that_drives_a_v100() -> None:
    row = ROW_BY_INSTANCE_TYPE["p3.2xlarge"]
    assert MATRIX[0] is row
    assert (row.gpu.name, row.gpu.sm, row.driver.name, row.cuda) == ("V100", "sm_70", "R570", "12.3")
    assert row.dlami.ssm_parameter is None and "latest" not in (row.dlami.image_name or "")
    assert row.dlami.image_name.endswith("Version 71.6*") and row.dlami.owner == "amazon"
    cfg = parse_context(base_context())
    assert cfg.row is row and cfg.ami_ssm_parameter is None


@pytest.mark.parametrize(
    ("context", "message"),
    [
        (
            {"amiSsmParameter": OSS_SSM},
            "amiSsmParameter: the OSS-driver DLAMIs use NVIDIA's open kernel module, which cannot drive a "
            "V100 (sm_70); use instanceType=p3.2xlarge with its default AMI and cudaVersion=12.3",
        ),
        (
            {"cudaVersion": "13.0"},
            "cudaVersion: CUDA 13.0 cannot compile sm_70 (V100); use instanceType=p3.2xlarge with its "
            "default AMI and cudaVersion=12.3",
        ),
        (
            {"cudaVersion": "12.9"},
            "cudaVersion: CUDA 12.9 needs a newer driver than R570 (runs CUDA <= 12.8)",
        ),
        (
            {"instanceType": "g4dn.xlarge", "cudaVersion": "13.4"},
            "cudaVersion: CUDA 13.4 needs a newer driver than R595 (runs CUDA <= 13.2)",
        ),
        ({"cudaVersion": "10.2"}, "cudaVersion: CUDA 10.2 cannot compile sm_70 (V100)"),
        ({"cudaVersion": "12"}, "cudaVersion: '12' is not a CUDA version like 12.3"),
        ({"instanceType": "p2.xlarge"}, "working choices: p3.2xlarge (V100), g4dn.xlarge (T4)"),
    ],
)
def test_refusals_are_one_line_and_name_a_working_choice(context: dict, message: str) -> None:
    with pytest.raises(UserError) as info:
        parse_context({**base_context(), **context})
    text = str(info.value)
    assert text.startswith("cdk.json context: ") and "\n" not in text
    assert message in text


def test_newer_gpus_accept_cuda_13_and_the_oss_dlami() -> None:
    cfg = parse_context({"instanceType": "g6.xlarge", "cudaVersion": "13.2", "amiSsmParameter": OSS_SSM})
    assert (cfg.gpu.sm, cfg.cuda_home) == ("sm_89", "/usr/local/cuda-13.2")


def test_readme_matrix_is_the_rendered_table() -> None:
    text = (REPO / "cdk" / "README.md").read_text()
    block = re.search(r"<!-- gpu-matrix -->\n(.*?)<!-- /gpu-matrix -->", text, re.S)
    assert block, "cdk/README.md has no <!-- gpu-matrix --> block"
    assert block.group(1) == render_markdown()
    first_row = render_markdown().splitlines()[2]
    assert first_row.startswith("| `p3.2xlarge` | V100 | sm_70 | R570 |")


def test_resolver_picks_the_newest_available_image_by_name_and_owner(aws_env: str) -> None:
    """moto server: images made here are owned by the caller ("self"); the resolver filters by the
    row's name pattern and owner and returns the newest match; no match is a one-line error."""
    import dataclasses

    row = ROW_BY_INSTANCE_TYPE["p3.2xlarge"]
    dlami = dataclasses.replace(row.dlami, owner="self")
    ec2 = boto3.client("ec2", region_name="us-east-1")
    base = ec2.describe_images()["Images"][0]["ImageId"]
    inst = ec2.run_instances(ImageId=base, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    name = row.dlami.image_name.rstrip("*")
    made = [
        ec2.create_image(InstanceId=inst, Name=n)["ImageId"]
        for n in (f"{name} 2026-01-02", name.replace("71.6", "73.1"))
    ]
    assert find_image(ec2, dlami) == made[0]  # 73.1 (no P3) does not match
    missing = dataclasses.replace(dlami, image_name="Deep Learning Base Nothing*")
    with pytest.raises(UserError, match="no available image named 'Deep Learning Base Nothing\\*'"):
        find_image(ec2, missing)
    cfg = parse_context(base_context())
    assert deploy_parameters(dataclasses.replace(cfg, ami_id="ami-0123456789abcdef0"), ec2) == ""
    ssm_cfg = parse_context({**base_context(), "instanceType": "g5.xlarge"})
    assert deploy_parameters(ssm_cfg, ec2) == ""

"""cdk.json context -> DeployConfig: defaults, typed values, and one-line errors for bad values."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest

from cdk.edgeyolo_cdk.config import DeployConfig, parse_context
from edge_image.contract.errors import UserError
from tests.fixtures.cdk import NODE_MAJOR, REPO, base_context


def test_cdk_json_defaults_parse_into_typed_config() -> None:
    cfg = parse_context(base_context())
    assert cfg.instance_type == "p3.2xlarge"
    assert (cfg.gpu.name, cfg.gpu.compute, cfg.gpu.sm) == ("V100", "7.0", "sm_70")
    # No AMI override: the GPU matrix's DLAMI for a V100 (not the latest OSS-driver DLAMI).
    assert (cfg.ami_ssm_parameter, cfg.ami_id, cfg.cuda_version) == (None, None, None)
    assert cfg.row.dlami.image_name.startswith("Deep Learning Base Proprietary Nvidia Driver AMI")
    assert (cfg.cuda, cfg.cuda_home) == ("12.3", "/usr/local/cuda-12.3")
    assert (cfg.ssh_cidr, cfg.spot, cfg.throwaway, cfg.budget_email) == (None, False, False, None)
    assert (cfg.artifacts_stack_name, cfg.training_stack_name) == (
        "EdgeYolo-dev-Artifacts",
        "EdgeYolo-dev-Training",
    )
    assert cfg.tags == {"Project": "edgeyolo", "Stage": "dev"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.stage = "prod"  # type: ignore[misc]


def test_command_line_strings_are_converted() -> None:
    """`cdk synth -c spot=true -c rootVolumeGiB=300` passes strings."""
    cfg = parse_context({"spot": "true", "rootVolumeGiB": "300", "idleCpuPercent": "2.5", "stage": "exp1"})
    assert (cfg.spot, cfg.root_volume_gib, cfg.idle_cpu_percent) == (True, 300, 2.5)
    assert cfg.training_stack_name == "EdgeYolo-exp1-Training"


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"sshCidr": "0.0.0.0/0", "keyName": "k"}, "sshCidr: 0.0.0.0/0 opens SSH to the whole internet"),
        ({"sshCidr": "::/0", "keyName": "k"}, "sshCidr: ::/0 opens SSH to the whole internet"),
        ({"sshCidr": "10.0.0.0/8", "keyName": "k"}, "sshCidr: 10.0.0.0/8 is broader than /16"),
        ({"sshCidr": "10.1.2.3/24", "keyName": "k"}, "sshCidr: '10.1.2.3/24' is not a network"),
        ({"sshCidr": "203.0.113.0/24"}, "sshCidr: SSH ingress needs keyName"),
        ({"instanceType": "p2.xlarge"}, "instanceType: 'p2.xlarge' is not in the GPU matrix"),
        ({"rootVolumeGiB": 20}, "rootVolumeGiB: 20 is outside 75..16384"),
        ({"rootVolumeGiB": 99999}, "rootVolumeGiB: 99999 is outside 75..16384"),
        ({"rootVolumeGiB": "big"}, "rootVolumeGiB: expected an integer, got 'big'"),
        ({"rootVolumeGiB": 100.5}, "rootVolumeGiB: expected an integer, got 100.5"),
        ({"rootVolumeGiB": True}, "rootVolumeGiB: expected an integer, got True"),
        ({"idleStopMinutes": 42}, "idleStopMinutes: 42 is not a multiple of 5"),
        ({"idleStopMinutes": 5}, "idleStopMinutes: 5 is outside 10..1440"),
        ({"spot": "yes"}, "spot: expected true or false, got 'yes'"),
        ({"spotMaxPrice": 0.5}, "spotMaxPrice: only meaningful with spot=true"),
        ({"stage": "prod", "throwaway": True}, "throwaway: stage 'prod' keeps its data"),
        ({"stage": "Dev"}, "stage: 'Dev' is not a stage name"),
        ({"instancetype": "g5.xlarge"}, "instancetype: unknown key"),
        ({"amiId": "ami-123"}, "amiId: 'ami-123' is not an AMI id"),
        ({"budgetEmail": "nobody"}, "budgetEmail: 'nobody' is not an e-mail address"),
        ({"budgetMonthlyUsd": 10}, "budgetMonthlyUsd: set budgetEmail too"),
        ({"region": "useast1"}, "region: 'useast1' is not an AWS region name"),
        (
            {"availabilityZone": "eu-west-1a"},
            "availabilityZone: 'eu-west-1a' is not a zone of region us-east-1",
        ),
    ],
)
def test_bad_values_give_one_line_errors(context: dict, message: str) -> None:
    with pytest.raises(UserError) as info:
        parse_context({**base_context(), **context})
    text = str(info.value)
    assert text.startswith("cdk.json context: ")
    assert message in text
    assert "\n" not in text


def test_cdk_internal_context_keys_are_ignored() -> None:
    cfg = parse_context({"@aws-cdk/core:newStyleStackSynthesis": True, "aws:cdk:enable-path-metadata": True})
    assert cfg == DeployConfig()


def test_app_prints_one_line_error_and_exits_2(tmp_path) -> None:
    """What `cdk synth -c sshCidr=0.0.0.0/0` shows: the CLI hands context over in CDK_CONTEXT_JSON."""
    env = {
        **os.environ,
        "CDK_CONTEXT_JSON": json.dumps({"sshCidr": "0.0.0.0/0", "keyName": "k"}),
        "CDK_OUTDIR": str(tmp_path),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": NODE_MAJOR,
    }
    proc = subprocess.run(
        [sys.executable, "-m", "cdk.app"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: cdk.json context: sshCidr: 0.0.0.0/0 opens SSH to the whole internet; give your own "
        "address range (or leave it unset and use SSM Session Manager)"
    ]

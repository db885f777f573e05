"""The deployment configuration: cdk.json context -> one frozen, validated ``DeployConfig``.

Parsed once (in ``cdk/app.py``, and by the teardown/status tools for the names and tags); every bad
value raises ``UserError`` with one line naming the context key. Plain Python: no aws_cdk import.

>>> cfg = parse_context({"stage": "dev", "instanceType": "g4dn.xlarge"})
>>> (cfg.training_stack_name, cfg.gpu.sm, cfg.tags)
('EdgeYolo-dev-Training', 'sm_75', {'Project': 'edgeyolo', 'Stage': 'dev'})
>>> parse_context({"rootVolumeGiB": 20})
Traceback (most recent call last):
...
edge_image.contract.errors.UserError: cdk.json context: rootVolumeGiB: 20 is outside 75..16384
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cdk.edgeyolo_cdk.gpu import (
    DEFAULT_INSTANCE_TYPE,
    ROW_BY_INSTANCE_TYPE,
    GpuInfo,
    MatrixRow,
    check_combination,
)
from edge_image.contract.errors import UserError, read_json

# Tag contract shared with the Ansible inventory (amazon.aws.aws_ec2 filters) and cdk.billing.
TAG_PROJECT = "Project"
TAG_STAGE = "Stage"
TAG_ROLE = "Role"
ROLE_TRAINING_HOST = "training-host"

# Output names of the training stack (read by Ansible and teardown).
OUTPUT_INSTANCE_ID = "InstanceId"
OUTPUT_BUCKET_NAME = "BucketName"
OUTPUT_REGION = "Region"
OUTPUT_GPU_ARCH = "GpuArch"
OUTPUT_GPU_SM = "GpuSm"
OUTPUT_CUDA_HOME = "CudaHome"
OUTPUT_AMI = "Ami"
OUTPUT_SPOT = "Spot"
OUTPUT_RELEASE_POLICY = "ReleasePolicyArn"
OUTPUT_SIGNING_KEY = "SigningKey"

# The AMI comes from the GPU matrix (cdk/edgeyolo_cdk/gpu.py): p3.2xlarge cannot use the current
# OSS-driver DLAMIs. ``amiSsmParameter`` / ``amiId`` override it; ``cudaVersion`` overrides the CUDA.

CONTEXT_SOURCE = "cdk.json context"

_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
_STAGE_RE = re.compile(r"^[a-z][a-z0-9]{0,11}$")
_REGION_RE = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
_AMI_RE = re.compile(r"^ami-[0-9a-f]{8}([0-9a-f]{9})?$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_KEY_NAME_RE = re.compile(r"^[\w.\- ]{1,255}$")
_SSM_PATH_RE = re.compile(r"^/[\w./-]+$")
_CUDA_RE = re.compile(r"^\d{2}\.\d$")

MIN_ROOT_GIB = 75  # the DLAMI root snapshot is smaller; datasets and checkpoints need the rest
MAX_ROOT_GIB = 16384  # gp3 maximum
MIN_SSH_PREFIX = 16
PROTECTED_STAGES = frozenset({"prod", "production"})

_KNOWN_KEYS = frozenset(
    {
        "project",
        "stage",
        "region",
        "availabilityZone",
        "instanceType",
        "amiSsmParameter",
        "amiId",
        "cudaVersion",
        "spot",
        "spotMaxPrice",
        "rootVolumeGiB",
        "sshCidr",
        "keyName",
        "idleStopMinutes",
        "idleCpuPercent",
        "noncurrentVersionDays",
        "noncurrentVersionsToKeep",
        "throwaway",
        "budgetEmail",
        "budgetMonthlyUsd",
    }
)


@dataclass(frozen=True, kw_only=True)
class DeployConfig:
    """Everything the stacks need; see cdk/README.md for each context key."""

    project: str = "edgeyolo"
    stage: str = "dev"
    region: str = "us-east-1"
    availability_zone: str | None = None
    instance_type: str = DEFAULT_INSTANCE_TYPE
    ami_ssm_parameter: str | None = None
    ami_id: str | None = None
    cuda_version: str | None = None
    spot: bool = False
    spot_max_price: float | None = None
    root_volume_gib: int = 150
    ssh_cidr: str | None = None
    key_name: str | None = None
    idle_stop_minutes: int = 60
    idle_cpu_percent: float = 5.0
    noncurrent_version_days: int = 30
    noncurrent_versions_to_keep: int = 3
    throwaway: bool = False
    budget_email: str | None = None
    budget_monthly_usd: float = 200.0
    row: MatrixRow = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "row", ROW_BY_INSTANCE_TYPE[self.instance_type])

    @property
    def gpu(self) -> GpuInfo:
        """The instance type's GPU (from the matrix)."""
        return self.row.gpu

    @property
    def cuda(self) -> str:
        """The CUDA version darknet is built with: ``cudaVersion`` or the matrix's."""
        return self.cuda_version or self.row.cuda

    @property
    def cuda_home(self) -> str:
        """``/usr/local/cuda-<cuda>`` on the DLAMI (which carries several CUDA versions)."""
        return f"/usr/local/cuda-{self.cuda}"

    @property
    def stack_prefix(self) -> str:
        """``EdgeYolo-<stage>``: the prefix of both stack names."""
        return f"EdgeYolo-{self.stage}"

    @property
    def training_role_name(self) -> str:
        """The training host's IAM role name (fixed: the signing key's policy names it by ARN)."""
        return f"{self.project}-{self.stage}-training-host"

    @property
    def signing_key_alias(self) -> str:
        """The bundle-signing KMS key's alias."""
        return f"alias/{self.project}-{self.stage}-bundles"

    @property
    def artifacts_stack_name(self) -> str:
        return f"{self.stack_prefix}-Artifacts"

    @property
    def training_stack_name(self) -> str:
        return f"{self.stack_prefix}-Training"

    @property
    def tags(self) -> dict[str, str]:
        """Tags on every resource (the training instance also gets ``Role=training-host``)."""
        return {TAG_PROJECT: self.project, TAG_STAGE: self.stage}


def _bad(key: str, message: str, source: str = CONTEXT_SOURCE) -> UserError:
    return UserError(f"{source}: {key}: {message}")


def _as_str(ctx: Mapping[str, Any], key: str, default: str | None) -> str | None:
    value = ctx.get(key, default)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _bad(key, f"expected a string, got {value!r}")
    return value.strip()


def _as_bool(ctx: Mapping[str, Any], key: str, default: bool) -> bool:
    value = ctx.get(key, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise _bad(key, f"expected true or false, got {value!r}")


def _as_number(
    ctx: Mapping[str, Any], key: str, default: float, lo: float, hi: float, integer: bool
) -> float:
    value = ctx.get(key, default)
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool):
        raise _bad(key, f"expected {kind}, got {value!r}")
    if isinstance(value, str):
        try:
            value = int(value) if integer else float(value)
        except ValueError:
            raise _bad(key, f"expected {kind}, got {value!r}") from None
    if integer and isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int | float) or (integer and not isinstance(value, int)):
        raise _bad(key, f"expected {kind}, got {value!r}")
    if not lo <= value <= hi:
        raise _bad(key, f"{value} is outside {lo:g}..{hi:g}")
    return value


def _matching(ctx: Mapping[str, Any], key: str, default: str | None, pattern: re.Pattern[str], what: str):
    value = _as_str(ctx, key, default)
    if value is not None and not pattern.match(value):
        raise _bad(key, f"{value!r} is not {what}")
    return value


def _ssh_cidr(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise _bad("sshCidr", f"{value!r} is not a network address range ({exc})") from None
    if net.prefixlen == 0:
        raise _bad(
            "sshCidr",
            f"{value} opens SSH to the whole internet; give your own address range "
            "(or leave it unset and use SSM Session Manager)",
        )
    min_prefix = MIN_SSH_PREFIX if net.version == 4 else 48
    if net.prefixlen < min_prefix:
        raise _bad("sshCidr", f"{value} is broader than /{min_prefix}; give your own address range")
    return str(net)


def parse_context(ctx: Mapping[str, Any], *, source: str = CONTEXT_SOURCE) -> DeployConfig:
    """Validate the app's context (cdk.json ``context`` plus ``-c key=value``) into a DeployConfig.

    Keys with ':' or a leading '@' belong to the CDK itself and are ignored; any other unknown key is an
    error (a typo would otherwise silently deploy the default). ``source`` starts every error message.
    """
    try:
        return _parse(ctx)
    except UserError as exc:
        if source == CONTEXT_SOURCE:
            raise
        raise UserError(str(exc).replace(CONTEXT_SOURCE, source, 1)) from None


def _parse(ctx: Mapping[str, Any]) -> DeployConfig:
    for key in ctx:
        if ":" in key or key.startswith("@"):
            continue
        if key not in _KNOWN_KEYS:
            raise _bad(key, f"unknown key (known: {', '.join(sorted(_KNOWN_KEYS))})")

    instance_type = _as_str(ctx, "instanceType", DEFAULT_INSTANCE_TYPE)
    if instance_type not in ROW_BY_INSTANCE_TYPE:
        choices = ", ".join(f"{t} ({r.gpu.name})" for t, r in ROW_BY_INSTANCE_TYPE.items())
        raise _bad("instanceType", f"{instance_type!r} is not in the GPU matrix; working choices: {choices}")
    ami_ssm_parameter = _matching(ctx, "amiSsmParameter", None, _SSM_PATH_RE, "an SSM parameter path")
    cuda_version = _matching(ctx, "cudaVersion", None, _CUDA_RE, "a CUDA version like 12.3")
    try:
        check_combination(
            ROW_BY_INSTANCE_TYPE[instance_type], ami_ssm_parameter=ami_ssm_parameter, cuda=cuda_version
        )
    except UserError as exc:
        raise UserError(f"{CONTEXT_SOURCE}: {exc} (instanceType {instance_type})") from None
    stage = _matching(ctx, "stage", "dev", _STAGE_RE, "a stage name (lower-case letters/digits, <= 12)")
    throwaway = _as_bool(ctx, "throwaway", False)
    if throwaway and stage in PROTECTED_STAGES:
        raise _bad("throwaway", f"stage {stage!r} keeps its data; throwaway (delete bucket) is refused")
    ssh_cidr = _ssh_cidr(_as_str(ctx, "sshCidr", None))
    key_name = _matching(ctx, "keyName", None, _KEY_NAME_RE, "an EC2 key pair name")
    if ssh_cidr and not key_name:
        raise _bad("sshCidr", "SSH ingress needs keyName (an existing EC2 key pair) as well")
    spot = _as_bool(ctx, "spot", False)
    spot_max_price = ctx.get("spotMaxPrice")
    if spot_max_price is not None:
        if not spot:
            raise _bad("spotMaxPrice", "only meaningful with spot=true")
        spot_max_price = _as_number(ctx, "spotMaxPrice", 0.0, 0.01, 100.0, integer=False)
    idle_minutes = int(_as_number(ctx, "idleStopMinutes", 60, 10, 1440, integer=True))
    if idle_minutes % 5:
        raise _bad(
            "idleStopMinutes", f"{idle_minutes} is not a multiple of 5 (the alarm uses 5-minute periods)"
        )
    region = _matching(ctx, "region", "us-east-1", _REGION_RE, "an AWS region name like us-east-1")
    availability_zone = _as_str(ctx, "availabilityZone", None)
    if availability_zone is not None and not re.fullmatch(re.escape(region) + r"[a-z]", availability_zone):
        raise _bad(
            "availabilityZone", f"{availability_zone!r} is not a zone of region {region} (like {region}a)"
        )
    budget_email = _matching(ctx, "budgetEmail", None, _EMAIL_RE, "an e-mail address")
    if "budgetMonthlyUsd" in ctx and not budget_email:
        raise _bad("budgetMonthlyUsd", "set budgetEmail too (the budget only exists to send that e-mail)")

    return DeployConfig(
        project=_matching(ctx, "project", "edgeyolo", _NAME_RE, "a project name (lower-case, <= 20)"),
        stage=stage,
        region=region,
        availability_zone=availability_zone,
        instance_type=instance_type,
        ami_ssm_parameter=ami_ssm_parameter,
        cuda_version=cuda_version,
        ami_id=_matching(ctx, "amiId", None, _AMI_RE, "an AMI id like ami-0123456789abcdef0"),
        spot=spot,
        spot_max_price=spot_max_price,
        root_volume_gib=int(_as_number(ctx, "rootVolumeGiB", 150, MIN_ROOT_GIB, MAX_ROOT_GIB, integer=True)),
        ssh_cidr=ssh_cidr,
        key_name=key_name,
        idle_stop_minutes=idle_minutes,
        idle_cpu_percent=_as_number(ctx, "idleCpuPercent", 5.0, 0.5, 90.0, integer=False),
        noncurrent_version_days=int(_as_number(ctx, "noncurrentVersionDays", 30, 1, 3650, integer=True)),
        noncurrent_versions_to_keep=int(_as_number(ctx, "noncurrentVersionsToKeep", 3, 0, 100, integer=True)),
        throwaway=throwaway,
        budget_email=budget_email,
        budget_monthly_usd=_as_number(ctx, "budgetMonthlyUsd", 200.0, 1.0, 1_000_000.0, integer=False),
    )


def load_cdk_json(path: Path) -> dict[str, Any]:
    """The ``context`` object of a cdk.json file (for tools that run outside the CDK CLI)."""
    data = read_json(path, missing="not found (run from the repository root)")
    context = data.get("context", {})
    if not isinstance(context, dict):
        raise UserError(f"{path}: context: expected an object")
    return context

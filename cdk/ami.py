"""``python -m cdk.ami [-c key=value ...]``: the deploy-time AMI for a matrix row found by name and owner.

For an instance type whose DLAMI has no usable SSM parameter (p3.2xlarge: the last DLAMI that still
drives a V100, see cdk/edgeyolo_cdk/gpu.py), ``make deploy`` runs this with its CDK_ARGS and passes
what it prints to ``cdk deploy``: ``--parameters <TrainingStack>:TrainingAmiId=ami-...``. For rows with
an SSM parameter, or when ``amiId`` / ``amiSsmParameter`` is set, it prints nothing (CloudFormation
resolves the AMI). Uses the credentials and region of the deployment (boto3's usual chain).

Input: the cdk.json context plus ``-c key=value`` overrides (as the CDK CLI takes them). Output: one
line on stdout (possibly empty); a missing image is a one-line error and exit 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cdk.edgeyolo_cdk.config import DeployConfig, load_cdk_json, parse_context
from cdk.edgeyolo_cdk.gpu import Dlami
from cdk.edgeyolo_cdk.training_host import AMI_PARAMETER
from edge_image.contract.errors import UserError, run_command


def find_image(ec2: Any, dlami: Dlami) -> str:
    """The id of the newest available image named ``dlami.image_name`` owned by ``dlami.owner``."""
    images = ec2.describe_images(
        Owners=[dlami.owner],
        Filters=[
            {"Name": "name", "Values": [dlami.image_name]},
            {"Name": "state", "Values": ["available"]},
            {"Name": "architecture", "Values": ["x86_64"]},
        ],
    )["Images"]
    if not images:
        raise UserError(
            f"no available image named {dlami.image_name!r} owned by {dlami.owner} in "
            f"{ec2.meta.region_name} (deregistered?): pin one with -c amiId=ami-..."
        )
    return max(images, key=lambda image: image["CreationDate"])["ImageId"]


def deploy_parameters(config: DeployConfig, ec2: Any) -> str:
    """``--parameters <stack>:TrainingAmiId=<id>`` for a name-resolved DLAMI, else ''."""
    dlami = config.row.dlami
    if config.ami_id or config.ami_ssm_parameter or dlami.ssm_parameter:
        return ""
    return f"--parameters {config.training_stack_name}:{AMI_PARAMETER}={find_image(ec2, dlami)}"


def _context(pairs: list[str], cdk_json: Path) -> dict[str, Any]:
    context = load_cdk_json(cdk_json)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise UserError(f"-c {pair}: expected key=value")
        context[key] = value
    return context


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cdk.ami", description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--context", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--cdk-json", type=Path, default=Path("cdk.json"))

    def run(args: argparse.Namespace) -> int:
        import boto3

        config = parse_context(_context(args.context, args.cdk_json))
        print(deploy_parameters(config, boto3.client("ec2", region_name=config.region)))
        return 0

    parser.set_defaults(func=run)
    args, _cdk_flags = parser.parse_known_args(argv)  # other CDK CLI flags pass through
    return run_command(args)


if __name__ == "__main__":
    sys.exit(main())

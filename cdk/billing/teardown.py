"""``make teardown``: stop paying for the GPU, with proof.

    python -m cdk.billing.teardown [--stage dev] [--region us-east-1]
        [--pull]                         sync the host's runs to s3://<bucket>/checkpoints first
        [--stop-only]                    only stop the instance (keeps it and its disk)
        [--purge --confirm-purge NAME]   also delete the artifact + log buckets, every version
        [--sweep]                        delete tagged leftovers the stack deletion did not remove

Steps: (pull) -> delete ``EdgeYolo-<stage>-Training`` -> (purge: delete ``EdgeYolo-<stage>-Artifacts``
and empty + delete its retained buckets) -> scan the region for resources tagged Project/Stage that
still bill (instances not terminated, volumes, snapshots, Elastic IPs, open spot requests, network
interfaces) -> (sweep: delete them, scan again). Prints the table; exit 0 only when nothing is left,
1 while something remains, 2 for bad input (wrong region, no credentials, ...).
"""

from __future__ import annotations

import argparse
import sys

from cdk.billing.pull import DEFAULT_HOST_DIR, DEFAULT_PREFIX, build_sync_commands, pull_to_s3
from cdk.billing.purge import bucket_exists, purge_bucket
from cdk.billing.session import Aws, connect, run_cli
from cdk.billing.stacks import delete_stack, describe_stack, outputs, physical_ids
from cdk.billing.sweep import (
    LEFTOVER_HEADERS,
    cancel_spot_requests,
    delete_leftovers,
    find_instances,
    find_leftovers,
    find_spot_requests,
    leftover_rows,
    request_instances,
    terminate_instances,
    wait_until,
)
from cdk.billing.table import render_table
from cdk.billing.target import add_target_arguments, target_config
from cdk.edgeyolo_cdk.config import (
    OUTPUT_BUCKET_NAME,
    OUTPUT_INSTANCE_ID,
    ROLE_TRAINING_HOST,
    TAG_PROJECT,
    TAG_ROLE,
    DeployConfig,
)
from edge_image.contract.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cdk.billing.teardown",
        description="Delete the training stack and prove nothing tagged for the project still bills.",
    )
    add_target_arguments(parser)
    parser.add_argument("--pull", action="store_true", help="sync the host's runs to S3 before deleting")
    parser.add_argument("--pull-dir", default=DEFAULT_HOST_DIR, help="directory on the host to sync")
    parser.add_argument("--pull-prefix", default=DEFAULT_PREFIX, help="key prefix in the artifact bucket")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--stop-only", action="store_true", help="stop the instance, delete nothing")
    mode.add_argument("--purge", action="store_true", help="also delete the artifact buckets (all versions)")
    parser.add_argument("--confirm-purge", metavar="BUCKET", help="the artifact bucket's name, for --purge")
    parser.add_argument("--sweep", action="store_true", help="delete tagged leftovers, then check again")
    parser.add_argument(
        "--all-stages", action="store_true", help="sweep by the Project tag only (every stage's leftovers)"
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for each step")
    return parser


def _stop_only(aws: Aws, config: DeployConfig, timeout: float) -> int:
    hosts = find_instances(aws.ec2, {**config.tags, TAG_ROLE: ROLE_TRAINING_HOST})
    if not hosts:
        raise UserError(f"--stop-only: no training host tagged {config.tags} in {aws.region}")
    ids = [h.id for h in hosts if h.state in ("pending", "running")]
    if ids:
        aws.ec2.stop_instances(InstanceIds=ids)
        print(f"  stopping {', '.join(ids)}", file=sys.stderr)

        def stopped() -> bool:
            return all(h.state == "stopped" for h in find_instances(aws.ec2, config.tags) if h.id in ids)

        wait_until(stopped, "waiting for the host to stop", timeout)
    hosts = find_instances(aws.ec2, {**config.tags, TAG_ROLE: ROLE_TRAINING_HOST})
    print(render_table(["instance", "state", "detail"], [[h.id, h.state, h.detail] for h in hosts]))
    print("stopped: compute billing ends; the root volume (EBS) still bills until `make teardown`.")
    return 0 if all(h.state == "stopped" for h in hosts) else 1


def _pull(aws: Aws, args: argparse.Namespace, training: dict | None) -> None:
    if training is None:
        raise UserError("--pull: there is no training stack (nothing to pull from)")
    out = outputs(training)
    missing = [key for key in (OUTPUT_INSTANCE_ID, OUTPUT_BUCKET_NAME) if not out.get(key)]
    if missing:
        raise UserError(
            f"--pull: stack {training.get('StackName', '?')} ({training.get('StackStatus', '?')}) has no "
            f"{' or '.join(missing)} output; drop --pull. Nothing was deleted."
        )
    instance_id, bucket = out[OUTPUT_INSTANCE_ID], out[OUTPUT_BUCKET_NAME]
    commands = build_sync_commands(bucket, args.pull_dir, args.pull_prefix)
    reservations = aws.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    state = reservations[0]["Instances"][0]["State"]["Name"]
    if state != "running":
        raise UserError(
            f"--pull: host {instance_id} is {state}; start it (aws ec2 start-instances --instance-ids "
            f"{instance_id}) or drop --pull. Nothing was deleted."
        )
    print(f"syncing {args.pull_dir} on {instance_id} to s3://{bucket}/{args.pull_prefix}", file=sys.stderr)
    pull_to_s3(aws.ssm, instance_id, commands, args.timeout)


def teardown(args: argparse.Namespace) -> int:
    config = target_config(args)
    aws = connect(config.region)
    sweep_tags = {TAG_PROJECT: config.project} if args.all_stages else config.tags
    training = describe_stack(aws.cfn, config.training_stack_name)
    artifacts = describe_stack(aws.cfn, config.artifacts_stack_name)
    if training is None and artifacts is None and not find_leftovers(aws.ec2, sweep_tags):
        raise UserError(
            f"no {config.stack_prefix}-* stacks and nothing tagged {sweep_tags} in {config.region} "
            "(wrong --region or --stage?)"
        )
    if args.stop_only:
        return _stop_only(aws, config, args.timeout)
    bucket = outputs(artifacts).get(OUTPUT_BUCKET_NAME)
    if args.purge:
        if artifacts is None:
            raise UserError(f"--purge: stack {config.artifacts_stack_name} does not exist in {config.region}")
        if not bucket:
            raise UserError(
                f"--purge: stack {config.artifacts_stack_name} ({artifacts.get('StackStatus', '?')}) has no "
                f"{OUTPUT_BUCKET_NAME} output, so the bucket to delete cannot be confirmed; delete it in the "
                "S3 console. Nothing was deleted."
            )
        if args.confirm_purge != bucket:
            raise UserError(
                f"--purge deletes s3://{bucket} and its access-log bucket with every version; "
                f"confirm with --confirm-purge {bucket}"
            )
    if args.pull:
        _pull(aws, args, training)

    problems: list[str] = []
    if training is not None:
        # first the spot requests: a persistent one relaunches the host the stack delete terminates;
        # a replacement it already launched is not the stack's and carries no tag, so it goes here
        requests = find_spot_requests(aws.ec2, sweep_tags)
        problems += cancel_spot_requests(aws.ec2, requests)
        stack_host = outputs(training).get(OUTPUT_INSTANCE_ID)
        problems += terminate_instances(
            aws.ec2, sorted(request_instances(requests) - {stack_host}), args.timeout
        )
        print(f"deleting {config.training_stack_name}", file=sys.stderr)
        problems += filter(None, [delete_stack(aws.cfn, config.training_stack_name, args.timeout)])
    if args.purge and artifacts is not None and problems:
        problems.append(
            f"--purge skipped: {config.artifacts_stack_name} and s3://{bucket} are kept while the training "
            "stack is not deleted (its host may still write checkpoints there)"
        )
    elif args.purge and artifacts is not None:
        buckets = physical_ids(aws.cfn, config.artifacts_stack_name, "AWS::S3::Bucket")
        print(f"deleting {config.artifacts_stack_name}", file=sys.stderr)
        problems += filter(None, [delete_stack(aws.cfn, config.artifacts_stack_name, args.timeout)])
        # The buckets are retained by the stack (unless the stage is throwaway): delete them here.
        for name in sorted(buckets, key=lambda b: b != bucket):
            if bucket_exists(aws.s3, name):
                try:
                    purge_bucket(aws.s3, name)
                except RuntimeError as exc:
                    problems.append(f"purge: {exc}")

    leftovers = find_leftovers(aws.ec2, sweep_tags)
    if args.sweep and leftovers:
        print(f"sweeping {len(leftovers)} leftover resource(s)", file=sys.stderr)
        problems += delete_leftovers(aws.ec2, leftovers, args.timeout)
        leftovers = find_leftovers(aws.ec2, sweep_tags)

    tag_text = ", ".join(f"{k}={v}" for k, v in sweep_tags.items())
    print(f"teardown of {config.stack_prefix} in {config.region} (tags {tag_text})")
    for line in problems:
        print(f"problem: {line}")
    if leftovers:
        print(render_table(LEFTOVER_HEADERS, leftover_rows(leftovers)))
        cost = sum(x.usd_per_hour or 0.0 for x in leftovers)
        print(f"{len(leftovers)} billable resource(s) remain (~${cost:.2f}/h); `--sweep` deletes them")
    else:
        print("nothing billable left with these tags")
    if not args.purge and artifacts is not None:
        print(f"kept: stack {config.artifacts_stack_name} with s3://{bucket} (storage; --purge deletes it)")
    return 1 if leftovers or problems else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(lambda: teardown(args))


if __name__ == "__main__":
    sys.exit(main())

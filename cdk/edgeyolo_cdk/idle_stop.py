"""IdleStopAlarm: stop the training host after N idle minutes so a forgotten GPU stops billing.

Metric: AWS/EC2 CPUUtilization of the one instance (detailed monitoring, 1-minute data, judged in
5-minute periods). pjreddie darknet decodes and augments images on CPU threads for every batch, so a
training run keeps CPU well above a few percent; GPU utilisation would need the CloudWatch agent's
nvidia_gpu plugin configured on the host before it reports anything, and an alarm on a metric that
is missing never fires, so CPU is the metric that is always there. Missing data (a stopped
instance) does not breach.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

PERIOD_MINUTES = 5


@dataclass(frozen=True, kw_only=True)
class IdleStopProps:
    """``instance``: what to stop; idle means average CPU below ``cpu_percent`` for ``minutes``."""

    instance: ec2.Instance
    minutes: int
    cpu_percent: float


class IdleStopAlarm(Construct):
    """Creates ``alarm`` with an EC2 STOP action."""

    def __init__(self, scope: Construct, construct_id: str, *, props: IdleStopProps) -> None:
        super().__init__(scope, construct_id)
        metric = cloudwatch.Metric(
            namespace="AWS/EC2",
            metric_name="CPUUtilization",
            dimensions_map={"InstanceId": props.instance.instance_id},
            statistic="Average",
            period=Duration.minutes(PERIOD_MINUTES),
        )
        self.alarm = cloudwatch.Alarm(
            self,
            "Alarm",
            alarm_description=(
                f"Stops the training host after {props.minutes} minutes below "
                f"{props.cpu_percent:g}% CPU (idle GPU box)."
            ),
            metric=metric,
            threshold=props.cpu_percent,
            comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=props.minutes // PERIOD_MINUTES,
            datapoints_to_alarm=props.minutes // PERIOD_MINUTES,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.alarm.add_alarm_action(actions.Ec2Action(actions.Ec2InstanceAction.STOP))

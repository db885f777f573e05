"""CostBudget: a monthly AWS Budgets cost budget that e-mails at 80 % actual and 100 % forecast."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_budgets as budgets
from constructs import Construct


@dataclass(frozen=True, kw_only=True)
class CostBudgetProps:
    """``name``: budget name (unique in the account); ``monthly_usd``: limit; ``email``: subscriber."""

    name: str
    monthly_usd: float
    email: str


class CostBudget(Construct):
    """Creates ``budget`` (AWS::Budgets::Budget)."""

    def __init__(self, scope: Construct, construct_id: str, *, props: CostBudgetProps) -> None:
        super().__init__(scope, construct_id)
        subscriber = budgets.CfnBudget.SubscriberProperty(subscription_type="EMAIL", address=props.email)

        def notify(kind: str, percent: float) -> budgets.CfnBudget.NotificationWithSubscribersProperty:
            return budgets.CfnBudget.NotificationWithSubscribersProperty(
                notification=budgets.CfnBudget.NotificationProperty(
                    notification_type=kind,
                    comparison_operator="GREATER_THAN",
                    threshold=percent,
                    threshold_type="PERCENTAGE",
                ),
                subscribers=[subscriber],
            )

        self.budget = budgets.CfnBudget(
            self,
            "Budget",
            budget=budgets.CfnBudget.BudgetDataProperty(
                budget_name=props.name,
                budget_type="COST",
                time_unit="MONTHLY",
                budget_limit=budgets.CfnBudget.SpendProperty(amount=props.monthly_usd, unit="USD"),
            ),
            notifications_with_subscribers=[notify("ACTUAL", 80), notify("FORECASTED", 100)],
        )

"""Hourly price table for what the stacks can leave running, with its date and source.

Prices are us-east-1 on-demand; other regions differ (usually by +5..30 %), so ``status`` labels its
figures as estimates. Instance prices: AWS's EC2 on-demand list prices for us-east-1 as published by
third-party price tables, read mid-2026 (the 2xlarge sizes are AWS's list prices at launch, unchanged
since). Every instance type the CDK config accepts has a price (tested). EBS and
public IPv4: AWS's public pricing pages for us-east-1 (EBS gp3 $0.08/GB-month, snapshots
$0.05/GB-month; public IPv4 addresses $0.005/h since February 2024).

>>> round(hourly_volume_usd(150, "gp3"), 4)
0.0164
"""

from __future__ import annotations

PRICES_DATE = "mid-2026"
PRICES_SOURCE = "third-party tables (instances); AWS pricing pages (EBS, public IPv4); us-east-1 on-demand"
HOURS_PER_MONTH = 730.0  # AWS's convention for converting monthly prices

INSTANCE_USD_PER_HOUR: dict[str, float] = {
    "p3.2xlarge": 3.06,
    "g4dn.xlarge": 0.526,
    "g4dn.2xlarge": 0.752,
    "g5.xlarge": 1.006,
    "g5.2xlarge": 1.212,
    "g6.xlarge": 0.8048,
    "g6.2xlarge": 0.9776,
    "g6e.xlarge": 1.861,
}

VOLUME_USD_PER_GB_MONTH: dict[str, float] = {"gp3": 0.08, "gp2": 0.10}
SNAPSHOT_USD_PER_GB_MONTH = 0.05
PUBLIC_IPV4_USD_PER_HOUR = 0.005


def hourly_instance_usd(instance_type: str) -> float | None:
    """On-demand $/h of a running instance, None when the type is not in the table."""
    return INSTANCE_USD_PER_HOUR.get(instance_type)


def hourly_volume_usd(size_gib: int, volume_type: str) -> float | None:
    """$/h of an EBS volume (billed whether attached or not), None for types not in the table."""
    per_gb = VOLUME_USD_PER_GB_MONTH.get(volume_type)
    return None if per_gb is None else size_gib * per_gb / HOURS_PER_MONTH


def hourly_snapshot_usd(size_gib: int) -> float:
    """Upper bound $/h of a snapshot of a ``size_gib`` volume (snapshots store changed blocks only)."""
    return size_gib * SNAPSHOT_USD_PER_GB_MONTH / HOURS_PER_MONTH


def price_note() -> str:
    """One line saying where the figures come from."""
    return f"prices: {PRICES_DATE}, {PRICES_SOURCE}"

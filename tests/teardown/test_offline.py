"""Pieces of teardown/status that need no AWS: prices, SSM command text, tables, errors."""

from __future__ import annotations

import pytest

from cdk.billing.prices import (
    INSTANCE_USD_PER_HOUR,
    PRICES_DATE,
    PRICES_SOURCE,
    hourly_instance_usd,
    hourly_volume_usd,
    price_note,
)
from cdk.billing.pull import build_sync_commands
from cdk.billing.table import render_table
from cdk.edgeyolo_cdk.gpu import GPU_BY_INSTANCE_TYPE
from edge_image.contract.errors import UserError


def test_price_table_states_date_and_source() -> None:
    assert PRICES_DATE == "mid-2026"
    assert "third-party" in PRICES_SOURCE and "us-east-1" in PRICES_SOURCE
    assert price_note().startswith("prices: mid-2026, third-party tables")
    assert hourly_instance_usd("p3.2xlarge") == 3.06
    # every instance type the stack accepts has a price, so `make status` never shows n/a for the host
    assert set(INSTANCE_USD_PER_HOUR) == set(GPU_BY_INSTANCE_TYPE)
    assert (
        INSTANCE_USD_PER_HOUR["g4dn.xlarge"]
        < INSTANCE_USD_PER_HOUR["g6.xlarge"]
        < INSTANCE_USD_PER_HOUR["g5.xlarge"]
    )
    assert all(INSTANCE_USD_PER_HOUR[t.replace("xlarge", "2xlarge")] > INSTANCE_USD_PER_HOUR[t]
               for t in ("g4dn.xlarge", "g5.xlarge", "g6.xlarge"))  # fmt: skip
    assert hourly_instance_usd("p4d.24xlarge") is None
    assert hourly_volume_usd(730, "gp3") == pytest.approx(0.08)
    assert hourly_volume_usd(10, "io2") is None


def test_sync_command_runs_aws_s3_sync_on_the_host() -> None:
    lines = build_sync_commands("edgeyolo-bucket", "/var/lib/edgeyolo/train/runs", "/checkpoints/")
    assert lines[0] == "set -eu"
    assert lines[-1] == (
        '"$AWS" s3 sync /var/lib/edgeyolo/train/runs s3://edgeyolo-bucket/checkpoints --only-show-errors'
    )
    assert any("test -d /var/lib/edgeyolo/train/runs" in line for line in lines)


def test_sync_command_quotes_paths() -> None:
    lines = build_sync_commands("b", "/data/my runs", "x")
    assert lines[-1] == "\"$AWS\" s3 sync '/data/my runs' s3://b/x --only-show-errors"


@pytest.mark.parametrize(
    ("host_dir", "prefix", "message"),
    [("runs", "checkpoints", "--pull-dir: 'runs' is not an absolute path"), ("/r", "/", "--pull-prefix")],
)
def test_sync_command_rejects_bad_input(host_dir: str, prefix: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        build_sync_commands("b", host_dir, prefix)


def test_render_table_aligns_columns() -> None:
    text = render_table(["kind", "id", "$/h"], [["instance", "i-1", "3.0600"], ["volume", "vol-22", None]])
    assert text.splitlines() == [
        "kind      id      $/h",
        "--------  ------  ------",
        "instance  i-1     3.0600",
        "volume    vol-22",
    ]

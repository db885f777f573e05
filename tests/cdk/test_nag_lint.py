"""cdk-nag AwsSolutions: no unsuppressed errors, every suppression has a reason; cfn-lint clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.fixtures.cdk import Synthesized


def _suppressions(synth: Synthesized) -> list[dict]:
    found = []
    for template in synth.templates.values():
        for resource in template["Resources"].values():
            found += resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    return found


def test_no_unsuppressed_nag_errors(synthesized: Synthesized, synthesized_variant: Synthesized) -> None:
    assert synthesized.nag_errors == []
    assert synthesized_variant.nag_errors == []
    suppressed = {s["id"] for s in _suppressions(synthesized)}
    # The rules this design consciously departs from, each with its reason in the code.
    assert suppressed == {
        "AwsSolutions-S1",
        "AwsSolutions-VPC7",
        "AwsSolutions-IAM4",
        "AwsSolutions-IAM5",
        "AwsSolutions-EC29",
    }
    for s in _suppressions(synthesized) + _suppressions(synthesized_variant):
        assert len(s["reason"]) >= 40, s


def test_nag_actually_checks(synthesized: Synthesized) -> None:
    """The AwsSolutions aspect ran: it wrote its report for both stacks."""
    reports = sorted(p.name for p in synthesized.outdir.glob("AwsSolutions-*NagReport.csv"))
    assert reports == [
        "AwsSolutions--EdgeYolo-dev-Artifacts-NagReport.csv",
        "AwsSolutions--EdgeYolo-dev-Training-NagReport.csv",
    ]
    text = (synthesized.outdir / reports[1]).read_text()
    assert '"AwsSolutions-EC26","EdgeYolo-dev-Training/Host/Instance/Resource","Compliant"' in text


def test_cfn_lint_clean(synthesized: Synthesized, synthesized_variant: Synthesized) -> None:
    files = sorted(
        str(p) for s in (synthesized, synthesized_variant) for p in s.outdir.glob("*.template.json")
    )
    assert len(files) == 4
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), "--regions", "us-east-1", "--", *files],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_nag_errors_are_detected(cdk_env: None, synthesized: Synthesized, tmp_path) -> None:
    """The check above can fail: an unencrypted, unlogged bucket without SSL enforcement is reported."""
    import aws_cdk as cdk
    from aws_cdk import aws_s3 as s3
    from cdk_nag import AwsSolutionsChecks

    from tests.fixtures.cdk import error_annotations

    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "Bad")
    s3.CfnBucket(stack, "Plain")
    cdk.Aspects.of(app).add(AwsSolutionsChecks())
    errors = error_annotations(app.synth())
    assert any("AwsSolutions-S1" in e for e in errors), errors
    assert any("AwsSolutions-S10" in e for e in errors), errors

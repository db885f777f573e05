"""CDK entry point (cdk.json: ``python3 -m cdk.app``): context -> DeployConfig -> two stacks.

Bad context values print ``error: cdk.json context: <key>: ...`` and exit 2 before any synthesis.
"""

from __future__ import annotations

import sys

import aws_cdk as cdk

from cdk.edgeyolo_cdk.config import parse_context
from cdk.edgeyolo_cdk.stacks import add_stacks
from edge_image.contract.errors import UserError


def main() -> int:
    app = cdk.App()
    try:
        config = parse_context(app.node.get_all_context())
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    add_stacks(app, config)
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())

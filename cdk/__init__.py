"""AWS side of the pipeline: the CDK app (``cdk.app``), its stacks (``cdk.edgeyolo_cdk``) and the
teardown/status tools (``cdk.billing``). Run from the repository root, e.g. ``python -m cdk.app``."""

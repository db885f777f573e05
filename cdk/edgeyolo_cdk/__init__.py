"""Stacks and constructs for the GPU training host and the artifact bucket.

``config`` and ``gpu`` are plain Python (no aws_cdk import) so the teardown/status tools can share the
tag contract and the stack names without starting the jsii runtime."""

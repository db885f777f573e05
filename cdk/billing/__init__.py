"""Stop-billing tools for the training stacks: ``python -m cdk.billing.teardown`` and
``python -m cdk.billing.status`` (``make teardown`` / ``make status``)."""

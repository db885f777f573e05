"""Training with real darknet: segmented driver, log parsing, metrics.csv, loss plot."""

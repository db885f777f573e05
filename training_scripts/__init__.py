"""Training-side tooling: dataset import, darknet cfg/weights, training, evaluation, export."""

__version__ = "0.1.0"

"""Evaluation (mAP, AUC and 11-point), checkpoint selection and their plots."""

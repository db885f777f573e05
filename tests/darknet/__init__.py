"""Tests of training_scripts.darknet against the real darknet."""

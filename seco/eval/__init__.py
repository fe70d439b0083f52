"""Evaluation of pre-trained backbones: features, linear probes, reports."""

"""Datasets, datamodules and noise models."""

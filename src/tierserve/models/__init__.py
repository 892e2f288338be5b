"""Embedded default models: built from PyPI packages, quantized for the host, verified."""

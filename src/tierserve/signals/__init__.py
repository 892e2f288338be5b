"""Confidence signals computed from a generation's token log-probabilities."""

from tierserve.signals.confidence import quantile_confidence

__all__ = ["quantile_confidence"]

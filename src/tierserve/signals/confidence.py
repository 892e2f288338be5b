"""Token-level confidence (Gupta et al., ICLR 2024: quantiles of per-token log-probabilities).

The sum and the mean of log-probabilities are biased by answer length; a low quantile measures
the least certain part of the answer and defers better. We report ``exp(quantile)`` so the
confidence is a probability in [0, 1] that thresholds can be read against.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "GATE_SIGNALS",
    "SIGNAL_QUANTILES",
    "confidence_signals",
    "quantile_confidence",
    "signal_name",
]


def quantile_confidence(token_logprobs: Sequence[float], quantile: float) -> float:
    """exp of the ``quantile``-quantile of the per-token log-probabilities; 0.0 for no tokens.

    ``quantile=0`` is the probability of the least likely generated token.
    """
    if not 0.0 <= quantile <= 1.0:
        raise ValueError(f"quantile must be in [0, 1], got {quantile}")
    if not token_logprobs:
        return 0.0
    values = np.asarray(token_logprobs, dtype=np.float64)
    # -inf appears when a sampled token had zero probability under the raw distribution.
    values = np.nan_to_num(values, nan=-math.inf)
    return float(math.exp(float(np.quantile(values, quantile))))


SIGNAL_QUANTILES = (0.0, 0.1, 0.25, 0.5)


def signal_name(quantile: float) -> str:
    """The name of the confidence signal at ``quantile``: ``conf_q10`` for 0.1."""
    return f"conf_q{round(quantile * 100)}"


GATE_SIGNALS: dict[str, float] = {signal_name(q): q for q in SIGNAL_QUANTILES}
"""The signals a ladder can gate on, by name, with the quantile the gateway measures each at."""


def confidence_signals(token_logprobs: Sequence[float]) -> dict[str, float]:
    """The candidate signals offline calibration compares, measured on one answer: exp of a few
    quantiles (``conf_q0`` = least likely token, ``conf_q10``, ...), and the length-biased mean
    and sum of the log-probabilities."""
    signals = {signal_name(q): quantile_confidence(token_logprobs, q) for q in SIGNAL_QUANTILES}
    values = np.nan_to_num(np.asarray(token_logprobs, dtype=np.float64), nan=-math.inf)
    finite = values[np.isfinite(values)]
    signals["mean_logprob"] = float(finite.mean()) if len(finite) else -math.inf
    signals["sum_logprob"] = float(values.sum()) if len(values) else 0.0
    signals["tokens"] = float(len(values))
    return {k: round(v, 6) if math.isfinite(v) else -1e9 for k, v in signals.items()}

"""Token-level confidence (Gupta et al., ICLR 2024: quantiles of per-token log-probabilities).

The sum and the mean of log-probabilities are biased by answer length; a low quantile measures
the least certain part of the answer and defers better. We report ``exp(quantile)`` so the
confidence is a probability in [0, 1] that thresholds can be read against.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["quantile_confidence"]


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

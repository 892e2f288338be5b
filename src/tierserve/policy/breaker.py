"""A circuit breaker per tier: a tier that keeps failing is skipped for a while instead of
costing every request a full timeout.

After ``failures`` consecutive failures (errors and timeouts of the tier itself, never a
refusal of the caller's input) the tier's circuit opens: the ladder treats the step as failed
at once (reason code ``circuit_open``) and moves on as its policy says. After ``cooldown_s``
one request probes the tier (half-open); its success closes the circuit, its failure opens it
for another cooldown. Each gateway replica keeps its own breakers, as a client-side breaker
does: what a replica saw failing is what it stops calling. ``on_change`` hears every change
of a tier's state (the gateway exports it as a metric).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

__all__ = ["CircuitBreakers", "CircuitState"]

CircuitState = Literal["closed", "open", "half_open"]


@dataclass(slots=True)
class _Circuit:
    failures: int = 0
    opened_at: float | None = None
    probing: bool = False


class CircuitBreakers:
    def __init__(
        self,
        failures: int,
        cooldown_s: float,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[str, CircuitState], None] | None = None,
    ) -> None:
        self._threshold = failures
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._on_change = on_change
        self._circuits: dict[str, _Circuit] = {}

    def _report(self, tier: str, before: CircuitState) -> None:
        after = self.state(tier)
        if after != before and self._on_change is not None:
            self._on_change(tier, after)

    def _circuit(self, tier: str) -> _Circuit:
        return self._circuits.setdefault(tier, _Circuit())

    def state(self, tier: str) -> CircuitState:
        circuit = self._circuit(tier)
        if circuit.opened_at is None:
            return "closed"
        return "half_open" if circuit.probing else "open"

    def allows(self, tier: str) -> bool:
        """Whether a request may call ``tier`` now. Once the cooldown has passed, one caller
        probes it; a probe that never reports (its caller left) lets another probe after a
        further cooldown."""
        circuit = self._circuit(tier)
        if circuit.opened_at is None:
            return True
        now = self._clock()
        if now - circuit.opened_at < self._cooldown_s:
            return False
        before = self.state(tier)
        circuit.probing, circuit.opened_at = True, now
        self._report(tier, before)
        return True

    def succeeded(self, tier: str) -> None:
        before = self.state(tier)
        self._circuits[tier] = _Circuit()
        self._report(tier, before)

    def failed(self, tier: str) -> None:
        before = self.state(tier)
        circuit = self._circuit(tier)
        circuit.failures += 1
        if circuit.probing or circuit.failures >= self._threshold:
            circuit.opened_at, circuit.probing = self._clock(), False
        self._report(tier, before)

    @property
    def threshold(self) -> int:
        return self._threshold

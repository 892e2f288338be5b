"""The per-tier circuit breaker, on a clock the test moves."""

from tierserve.policy.breaker import CircuitBreakers


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_tier_is_skipped_after_consecutive_failures_then_probed_once() -> None:
    clock = Clock()
    breakers = CircuitBreakers(failures=3, cooldown_s=30, clock=clock)
    for _ in range(2):
        assert breakers.allows("small")
        breakers.failed("small")
    assert breakers.state("small") == "closed"
    breakers.failed("small")
    assert breakers.state("small") == "open" and not breakers.allows("small")
    assert breakers.allows("large")  # other tiers are untouched
    clock.now += 29
    assert not breakers.allows("small")
    clock.now += 1
    assert breakers.allows("small")  # the probe
    assert breakers.state("small") == "half_open"
    assert not breakers.allows("small")  # nobody else while the probe runs
    breakers.succeeded("small")
    assert breakers.state("small") == "closed" and breakers.allows("small")


def test_a_failed_probe_opens_the_circuit_for_another_cooldown() -> None:
    clock = Clock()
    breakers = CircuitBreakers(failures=1, cooldown_s=10, clock=clock)
    breakers.failed("small")
    clock.now += 10
    assert breakers.allows("small")
    breakers.failed("small")
    assert breakers.state("small") == "open"
    clock.now += 9
    assert not breakers.allows("small")


def test_a_probe_that_never_reports_lets_another_probe_after_a_cooldown() -> None:
    clock = Clock()
    breakers = CircuitBreakers(failures=1, cooldown_s=10, clock=clock)
    breakers.failed("small")
    clock.now += 10
    assert breakers.allows("small")  # this caller leaves without a verdict
    clock.now += 5
    assert not breakers.allows("small")
    clock.now += 5
    assert breakers.allows("small")


def test_a_success_resets_the_count_of_failures() -> None:
    breakers = CircuitBreakers(failures=2, cooldown_s=10, clock=Clock())
    breakers.failed("small")
    breakers.succeeded("small")
    breakers.failed("small")
    assert breakers.state("small") == "closed"


def test_every_change_of_state_is_reported_once() -> None:
    clock = Clock()
    changes: list[tuple[str, str]] = []
    breakers = CircuitBreakers(
        failures=2, cooldown_s=10, clock=clock, on_change=lambda *c: changes.append(c)
    )
    breakers.failed("small")
    breakers.succeeded("small")  # still closed: nothing to report
    breakers.failed("small")
    breakers.failed("small")
    assert not breakers.allows("small")
    clock.now += 10
    assert breakers.allows("small")
    breakers.failed("small")  # the probe failed
    clock.now += 10
    assert breakers.allows("small")
    breakers.succeeded("small")
    assert changes == [
        ("small", "open"),
        ("small", "half_open"),
        ("small", "open"),
        ("small", "half_open"),
        ("small", "closed"),
    ]

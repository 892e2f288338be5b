"""Gateway replicas are separate processes: /metrics must sum them (prometheus-client's
multiprocess mode), including a process that has died."""

import multiprocessing
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes import decision_record
from tierserve.observe import metrics as names
from tierserve.observe.metrics import scrape


def _replica(requests: int) -> None:
    # A fresh interpreter: prometheus-client reads PROMETHEUS_MULTIPROC_DIR on import, as in a
    # gateway replica started with it in its Ray runtime environment.
    from prometheus_client import REGISTRY

    from tierserve.observe.metrics import TierserveMetrics

    metrics = TierserveMetrics(REGISTRY)
    for index in range(requests):
        metrics.observe(decision_record(f"r{index}"))


def test_scrape_sums_every_replica_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    spawn = multiprocessing.get_context("spawn")
    replicas = [spawn.Process(target=_replica, args=(n,)) for n in (3, 4)]
    for replica in replicas:
        replica.start()
    for replica in replicas:
        replica.join(120)
        assert replica.exitcode == 0
    assert len(list(tmp_path.glob("counter_*.db"))) == 2  # one file per process
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(scrape().decode())
        for s in family.samples
    }
    labels = (("cache", "off"), ("outcome", "accept"), ("route", "faq"), ("tier", "small"))
    assert samples[(names.REQUESTS, labels)] == 7  # both processes have exited: still counted
    assert samples[(names.REQUEST_LATENCY + "_count", (("route", "faq"),))] == 7

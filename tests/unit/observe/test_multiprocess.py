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


def _replica_losing_its_directory(directory: str, replies: "multiprocessing.Queue[object]") -> None:
    import shutil

    from prometheus_client import REGISTRY

    from tierserve.observe.metrics import TierserveMetrics

    metrics = TierserveMetrics(REGISTRY)
    shutil.rmtree(directory)
    # A replica's first write of each kind of metric opens its file there: these fail.
    metrics.observe(decision_record("after"))
    metrics.count_error("invalid_request_error", 400)
    replies.put(scrape().decode())


def test_a_lost_metrics_directory_fails_no_request_and_is_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    spawn = multiprocessing.get_context("spawn")
    replies = spawn.Queue()
    replica = spawn.Process(target=_replica_losing_its_directory, args=(str(directory), replies))
    replica.start()
    exposition = replies.get(timeout=120)
    replica.join(60)
    assert replica.exitcode == 0  # no update raised
    samples = {
        s.name: s.value
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
    }
    assert samples[names.METRIC_WRITE_FAILURES] == 2

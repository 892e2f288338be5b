"""A ``tierserve serve`` job, and what of it is running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import yaml

from tests.integration.replicas import replica_pids
from tierserve.launch import wait_healthy

ROOT = Path(__file__).resolve().parents[2]
ENGINE_TITLE = "VLLM::"
STOP_DEADLINE_S = 180.0
"""How long a stop may take before what is left counts as left behind (Serve waits out its
replicas' graceful shutdown, 20 s, and its controller's, 30 s)."""


def serve_config(directory: Path, port: int) -> Path:
    """The embedded default on a port of the test's own."""
    serve = yaml.safe_load((ROOT / "serve_configs/local-cpu.yaml").read_text())
    serve["http_options"]["port"] = port
    args = serve["applications"][0]["args"]
    args["policy"] = str(ROOT / args["policy"])
    args["policy_calibrations"] = [str(ROOT / path) for path in args.get("policy_calibrations", [])]
    path = directory / "stack.yaml"
    path.write_text(yaml.safe_dump(serve, sort_keys=False))
    return path


class Job:
    """``make serve`` (or ``tierserve serve``) in a process group of its own, as a shell runs a
    foreground job: signals go to the whole group, as a terminal's Ctrl-C does."""

    def __init__(
        self, config: Path, port: int, log: Path, *, via_make: bool, state_dir: Path | None = None
    ) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.via_make = via_make
        self.log_path = log
        self._log = log.open("ab")
        state = state_dir or log.parent / "state"
        environment = {**os.environ, "TIERSERVE_STATE_DIR": str(state)}
        command = (
            ["make", "-s", "serve", f"CONFIG={config}"]
            if via_make
            else [sys.executable, "-m", "tierserve.cli", "serve", str(config)]
        )
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=environment,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            process_group=0,
        )

    def wait_ready(self) -> None:
        wait_healthy(self.url, timeout_s=600)

    def everything(self) -> list[psutil.Process]:
        """Every process of the job now: Ray's, the replicas', their engines and guards."""
        return [psutil.Process(self.process.pid), *psutil.Process(self.process.pid).children(True)]

    def signal_group(self, signum: signal.Signals) -> None:
        os.killpg(self.process.pid, signum)

    def wait_exit(self) -> int:
        code = self.process.wait(timeout=STOP_DEADLINE_S)
        self._log.close()
        return code

    def stopped_in_order(self) -> bool:
        """The stack stopped as asked, not killed (make's repeated SIGTERM is no second ask)."""
        said = self.log_path.read_text(errors="replace")
        return "stopping the stack" in said and "killing the stack now" not in said


def engines_of(replica: int) -> list[psutil.Process]:
    return [
        process
        for process in psutil.Process(replica).children(recursive=True)
        if " ".join(process.cmdline()).startswith(ENGINE_TITLE)
    ]


def tier_replica(tier: str) -> int:
    (pid,) = replica_pids("tierserve", f"tier-{tier}")
    return pid


def still_running(processes: list[psutil.Process], within_s: float = STOP_DEADLINE_S) -> list[str]:
    """Those of ``processes`` still running after ``within_s`` (zombies count as ended)."""
    deadline = time.monotonic() + within_s
    while True:
        left = []
        for process in processes:
            try:
                if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                    left.append(f"{process.pid} {' '.join(process.cmdline())[:60]}")
            except psutil.NoSuchProcess:
                continue
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(2)


def shut_serve_down() -> None:
    """``serve.shutdown()`` from a second driver, as an operator's script or ``serve
    shutdown`` does: the apps go, Ray and ``tierserve serve`` stay."""
    script = "import ray; ray.init(address='auto'); from ray import serve; serve.shutdown()"
    subprocess.run([sys.executable, "-c", script], check=True, timeout=STOP_DEADLINE_S)


def stream_long_answers(url: str, count: int) -> list[threading.Thread]:
    """Long answers in flight while the stack stops (their outcome is not what is tested)."""

    def one(index: int) -> None:
        body = {
            "model": "tierserve",
            "stream": True,
            "max_tokens": 200,
            "messages": [{"role": "user", "content": f"Tell a long story, number {index}."}],
        }
        try:
            with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=120) as r:
                for _ in r.iter_lines():
                    pass
        except httpx.HTTPError:
            pass

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    time.sleep(3)
    return threads


def signal_the_job(signum: signal.Signals) -> Callable[[Job], dict[str, object]]:
    def stop(job: Job) -> dict[str, object]:
        everything = job.everything()
        stream_long_answers(job.url, 4)
        started = time.monotonic()
        job.signal_group(signum)
        code = job.wait_exit()
        runner = "make serve" if job.via_make else "tierserve serve"
        return {
            "way": f"{signum.name} to the {runner} job",
            "processes": len(everything),
            "left": still_running(everything, within_s=10),
            # make dies of the signal itself once its child has ended.
            "exit_code": None if job.via_make else code,
            "stopped_in_order": job.stopped_in_order(),
            "stop_s": round(time.monotonic() - started, 1),
        }

    return stop

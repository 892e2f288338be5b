"""Running the stack from a serve config file, and a one-shot client for it."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tierserve.config import read_serve_config

__all__ = [
    "access",
    "ask",
    "refuse_left_engines",
    "run_stack",
    "serve_forever",
    "start_stack",
    "stop_stack",
    "wait_healthy",
]

DEMO_QUESTION = "What is the capital of France?"
STARTUP_TIMEOUT_S = 1800.0
"""Loading three engines takes minutes on 2 CPU cores; a first GPU start downloads weights."""


def wait_healthy(url: str, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    last = "no answer yet"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=15) as response:
                body: dict[str, Any] = json.loads(response.read())
                return body
        except (urllib.error.URLError, OSError, ValueError) as error:
            last = str(error)
        time.sleep(2)
    raise TimeoutError(f"{url}/healthz not healthy after {timeout_s:.0f} s: {last}")


def start_stack(path: Path, *, port: int | None = None) -> tuple[str, float]:
    """Start Ray + Serve + the app described by ``path``; returns (base URL, seconds to ready).

    ``port`` overrides the config's HTTP port (tests use a port of their own).
    """
    from tierserve.serve.ingress import apply_ingress, stop_left_haproxy

    app = read_serve_config(path)
    host, port = app.host, app.port if port is None else port
    refuse_left_engines()
    # Before Ray Serve is imported: it reads the choice at import.
    apply_ingress(app.stack, http_port=port)
    for pid in stop_left_haproxy(port):
        print(f"stopped HAProxy {pid}, left holding port {port} by an earlier run of this stack")

    import ray
    from ray import serve

    from tierserve.serve.rollout import deploy, deploy_config

    started = time.monotonic()
    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=True)
    serve.start(proxy_location=app.proxy_location, http_options={"host": host, "port": port})
    # Declaratively, as `serve deploy` does: a policy version, a replica count or a restart of
    # one deployment then changes it in place (serve.rollout).
    deploy(deploy_config(app, port=port), timeout_s=STARTUP_TIMEOUT_S)
    url = f"http://{host}:{port}"
    wait_healthy(url, timeout_s=120)
    return url, time.monotonic() - started


def refuse_left_engines() -> None:
    """Refuses to start while engine processes of an earlier run hold their memory (a GPU's
    KV cache would not fit beside them). Their guards may still be ending them: wait that out."""
    from tierserve.errors import LeftEnginesError
    from tierserve.serve.engine_processes import STOP_GRACE_S, left_engines

    deadline = time.monotonic() + 2 * STOP_GRACE_S
    while (left := left_engines()) and time.monotonic() < deadline:
        time.sleep(1)
    if left:
        pids = " ".join(str(process.pid) for process in left)
        raise LeftEnginesError(
            "engine processes of an earlier run are still running, their replica gone: "
            + ", ".join(process.describe() for process in left),
            hint=f"end them (kill {pids}; kill -9 {pids} if they stay) and start again",
        )


def stop_stack(port: int) -> None:
    """Stop Serve, then Ray, then any HAProxy of the stack at ``port`` that outlived them; on
    return no engine process of this stack is left."""
    import psutil
    import ray
    from ray import serve

    from tierserve.serve.engine_processes import STOP_GRACE_S, end_processes, engines_under
    from tierserve.serve.ingress import stop_left_haproxy

    engines = engines_under(psutil.Process())
    serve.shutdown()  # type: ignore[no-untyped-call]
    ray.shutdown()
    stop_left_haproxy(port)
    # Replicas shut their engines down; the guards end those of replicas that could not.
    _, left = psutil.wait_procs(engines, timeout=6 * STOP_GRACE_S)
    end_processes(left)


def access(url: str) -> str:
    """Whether the gateway at ``url`` requires API keys, as its /v1/models says."""
    try:
        with urllib.request.urlopen(f"{url}/v1/models", timeout=15) as response:
            body: dict[str, Any] = json.loads(response.read())
    except urllib.error.HTTPError as error:
        if error.code == 401:
            return "API keys required (send Authorization: Bearer <key>)"
        raise
    tenant = body.get("tierserve", {}).get("open_tenant")
    return f"open: callers without a known API key are served as tenant {tenant!r}"


def ask(url: str, question: str, *, stream: bool = False, api_key: str | None = None) -> str:
    """Send one chat request with the official OpenAI client and describe the answer."""
    from openai import OpenAI

    client = OpenAI(base_url=f"{url}/v1", api_key=api_key or "none", timeout=600)
    messages: list[Any] = [{"role": "user", "content": question}]
    started = time.monotonic()
    if stream:
        parts: list[str] = []
        metadata: dict[str, Any] = {}
        for chunk in client.chat.completions.create(
            model="tierserve", messages=messages, temperature=0, stream=True
        ):
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
            metadata = (chunk.model_extra or {}).get("tierserve", metadata)
        text = "".join(parts)
    else:
        completion = client.chat.completions.create(
            model="tierserve", messages=messages, temperature=0
        )
        text = completion.choices[0].message.content or ""
        metadata = (completion.model_extra or {}).get("tierserve", {})
    seconds = time.monotonic() - started
    return (
        f"Q: {question}\nA: {text.strip()}\n"
        f"   answered by {metadata.get('tier')} (tried {metadata.get('tiers_tried')}) "
        f"in {seconds:.1f} s, confidence {metadata.get('confidence')}\n"
        f"   reasons: {metadata.get('reasons')}"
    )


def run_stack(path: Path, *, demo: bool, exit_after_demo: bool) -> int:
    """Starts the stack, serves until SIGINT or SIGTERM, then stops it in order."""
    print(f"starting the stack from {path} (first start builds three vLLM engines: minutes)")
    url, seconds = start_stack(path)
    print(f"stack ready at {url} in {seconds:.0f} s")
    print(json.dumps(wait_healthy(url, 30), indent=2))
    print(f"access: {access(url)}")
    if demo:
        print(ask(url, DEMO_QUESTION))
    if not exit_after_demo:
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        print(f"serving on {url}/v1 (OpenAI-compatible); Ctrl-C or SIGTERM stops it")
        stop.wait()
        print("stopping the stack")
    stop_stack(read_serve_config(path).port)
    return 0


REPEATED_SIGNAL_S = 2.0
"""A second signal within this is the first one repeated, not a request to kill: make passes
the SIGTERM its process group got on to its children, which got it already."""


def serve_forever(path: Path, *, demo: bool, exit_after_demo: bool) -> int:
    """``tierserve serve``: the stack runs in a session of its own (:func:`run_stack`).

    A terminal's Ctrl-C, or a SIGTERM to this process group, would otherwise reach Ray's
    processes at the same moment as this one: whichever died first decided whether the
    replicas could stop their engines. Now only this process gets the signal; it asks the
    stack to stop in order (Serve, the replicas and their engines, then Ray); a second signal,
    past ``REPEATED_SIGNAL_S``, kills it at once. The stack ends with this process, however
    this process ends.
    """
    flags = [flag for flag, on in (("--demo", demo), ("--exit-after-demo", exit_after_demo)) if on]
    runner = subprocess.Popen(
        [sys.executable, "-m", "tierserve.cli", "serve", str(path), "--own-session", *flags],
        start_new_session=True,
        preexec_fn=_end_with_parent,
    )
    first_signal_at: float | None = None

    def stop(signum: int, _frame: object) -> None:
        nonlocal first_signal_at
        now = time.monotonic()
        if first_signal_at is None:
            first_signal_at = now
            print(f"{signal.Signals(signum).name}: stopping the stack (again later: kill it)")
            runner.send_signal(signal.SIGTERM)
        elif now - first_signal_at > REPEATED_SIGNAL_S:
            print("killing the stack now")
            _end_session(runner.pid, grace_s=0)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)
    code = runner.wait()
    _end_session(runner.pid)
    return code


def _end_with_parent() -> None:
    """In the runner, before it starts: SIGTERM it when ``tierserve serve`` dies, even by
    SIGKILL (Linux's parent-death signal; Ray's own processes follow the runner the same way)."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _end_session(session: int, grace_s: float | None = None) -> None:
    """Ends whatever of the runner's session outlived it (normally nothing)."""
    import psutil

    from tierserve.serve.engine_processes import STOP_GRACE_S, end_processes

    def in_session(process: psutil.Process) -> bool:
        try:
            return os.getsid(process.pid) == session
        except OSError:
            return False

    end_processes(
        [process for process in psutil.process_iter() if in_session(process)],
        STOP_GRACE_S if grace_s is None else grace_s,
    )

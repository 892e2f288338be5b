"""Running the stack from a serve config file, and a one-shot client for it."""

from __future__ import annotations

import json
import signal
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tierserve.config import read_serve_config

__all__ = ["access", "ask", "serve_forever", "start_stack", "stop_stack", "wait_healthy"]

DEMO_QUESTION = "What is the capital of France?"


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
    # Before Ray Serve is imported: it reads the choice at import.
    apply_ingress(app.stack, http_port=port)
    for pid in stop_left_haproxy(port):
        print(f"stopped HAProxy {pid}, left holding port {port} by an earlier run of this stack")

    import ray
    from ray import serve

    from tierserve.serve.app import build_app

    started = time.monotonic()
    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=True)
    serve.start(http_options={"host": host, "port": port})
    serve.run(build_app(app.stack), name=app.name, route_prefix=app.route_prefix)
    url = f"http://{host}:{port}"
    wait_healthy(url, timeout_s=120)
    return url, time.monotonic() - started


def stop_stack(port: int) -> None:
    """Stop Serve, then Ray, then any HAProxy of the stack at ``port`` that outlived them."""
    import ray
    from ray import serve

    from tierserve.serve.ingress import stop_left_haproxy

    serve.shutdown()  # type: ignore[no-untyped-call]
    ray.shutdown()
    stop_left_haproxy(port)


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


def serve_forever(path: Path, *, demo: bool, exit_after_demo: bool) -> int:
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
    stop_stack(read_serve_config(path).port)
    return 0

"""A real stack for a pytest session: Ray, Serve and the app of a serve config, shut down
after the last test (used by the integration and reliability suites)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path


def running_stack(config: Path, port: int, label: str) -> Iterator[str]:
    """Starts the stack of ``config`` on ``port``, yields its base URL, then stops it."""
    from tierserve.launch import start_stack, stop_stack

    url, seconds = start_stack(config, port=port)
    print(f"\n[{label}] stack ready in {seconds:.0f} s at {url}")
    yield url
    stop_stack(port)

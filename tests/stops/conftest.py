"""Clean stops (issue 33): real stacks started as a user starts them (``tierserve serve``, a job
of its own as a terminal runs it), stopped every way an operator stops one, and searched for
processes left behind.

Collected only when ``TIERSERVE_STOPS`` is set: ``short`` (CI, in ``make reliability-smoke``:
one stack) or ``full`` (``make reliability``: every way, three times). It starts stacks of
its own, so it never shares a pytest process with another suite's stack.
"""

from __future__ import annotations

import os

MODE = os.environ.get("TIERSERVE_STOPS", "")

collect_ignore_glob = [] if MODE else ["test_*.py"]

"""Clean stops (issue 33): real stacks started as a user starts them (``tierserve serve``, a job
of its own as a terminal runs it), stopped every way an operator stops one, and searched for
processes left behind.

Collected only when ``TIERSERVE_STOPS=full`` (``make reliability``: five starts, every way at
least twice); CI's short version runs at the end of the reliability suite, on its stack. It
starts stacks of its own, so it never shares a pytest process with another suite's stack.
"""

from __future__ import annotations

import os

MODE = os.environ.get("TIERSERVE_STOPS", "")

collect_ignore_glob = [] if MODE == "full" else ["test_*.py"]

"""A Ray cluster of three nodes on one machine (issue 32): a head and two worker raylets
whose custom resources stand for a GPU cluster's worker groups, started with Ray's own
``ray.cluster_utils.Cluster``. Collected only when ``TIERSERVE_MULTINODE`` is set (``make
multinode``); it writes its figures to ``TIERSERVE_MULTINODE_OUT``."""

from __future__ import annotations

import os

MODE = os.environ.get("TIERSERVE_MULTINODE", "")

# One Ray cluster per pytest process is all a 2-core machine holds: `make test` runs the
# integration stack, and this suite starts a cluster of its own.
collect_ignore_glob = [] if MODE else ["test_*.py"]

import subprocess
import sys
from types import ModuleType

import tierserve

PURE_MODULES = [
    "tierserve",
    "tierserve.policy",
    "tierserve.signals",
    "tierserve.engine.types",
    "tierserve.api.service",
    "tierserve.structured",
]


def test_public_api_is_exactly_all() -> None:
    public = {
        name
        for name in dir(tierserve)
        if not name.startswith("_") and not isinstance(getattr(tierserve, name), ModuleType)
    }
    assert public == set(tierserve.__all__) - {"__version__"}


def test_policy_core_imports_no_ray_vllm_torch_or_http() -> None:
    probe = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in PURE_MODULES)
        + "heavy = {'ray', 'vllm', 'torch', 'fastapi', 'starlette', 'httpx', 'outlines'}\n"
        + "heavy &= set(sys.modules)\n"
        + "print(sorted(heavy))\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == "[]"

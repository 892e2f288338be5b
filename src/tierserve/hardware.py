"""What the host can run: the accelerator, and whether vLLM-CPU has its 4-bit GPTQ kernel;
and, where a tier asks for GPUs torch cannot see, why."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tierserve.errors import GpuNotVisibleError

__all__ = [
    "DRIVER_VERSION_FILE",
    "HostCapability",
    "check_gpus_visible",
    "detect_host",
    "driver_version",
]

DRIVER_VERSION_FILE = Path("/proc/driver/nvidia/version")

MINIMUM_DRIVER = {"12": "525.60.13", "13": "580.65.06"}
"""The oldest Linux NVIDIA driver each CUDA major version runs on (NVIDIA's CUDA release
notes, minor version compatibility): torch built for CUDA 13 sees no GPU on an older one."""


@dataclass(frozen=True, slots=True)
class HostCapability:
    accelerator: Literal["cuda", "cpu"]
    cpu_isa: str
    """'AVX512', 'AVX2', ... as torch reports it."""
    cuda_build: str | None = None
    """The CUDA version torch was built for (``torch.version.cuda``); None: a CPU build."""
    nvidia_driver: str | None = None
    """The NVIDIA kernel driver's version on this node; None: no driver found."""

    @property
    def has_4bit_kernel(self) -> bool:
        """vLLM's W4A16 (GPTQ/AWQ) kernel: every CUDA build; on CPU only the AVX-512 libraries."""
        return self.accelerator == "cuda" or self.cpu_isa.startswith("AVX512")

    def describe(self) -> str:
        return f"{self.accelerator} ({self.cpu_isa})"


def detect_host() -> HostCapability:
    import torch

    accelerator: Literal["cuda", "cpu"] = "cuda" if torch.cuda.is_available() else "cpu"
    # The same probe vLLM-CPU uses to pick between its _C_AVX512 and _C_AVX2 kernel libraries.
    isa = "AVX512" if torch.cpu._is_avx512_supported() else torch.backends.cpu.get_cpu_capability()
    return HostCapability(
        accelerator=accelerator,
        cpu_isa=str(isa),
        cuda_build=torch.version.cuda,
        nvidia_driver=driver_version(),
    )


def driver_version(source: Path = DRIVER_VERSION_FILE) -> str | None:
    """The loaded NVIDIA kernel module's version ('580.65.06'), as the driver reports it."""
    try:
        text = source.read_text()
    except OSError:
        return None
    # "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.65.06  ..." or, for the open
    # module, "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.65.06  ..."
    found = re.search(r"Kernel Module(?: for \S+)?\s+(\d+(?:\.\d+)+)", text)
    return found.group(1) if found else None


def check_gpus_visible(tier: str, num_gpus: float, host: HostCapability) -> None:
    """Refuses a tier that asks for GPUs on a node where torch sees none, saying why, instead
    of serving it on the CPU path (GPTQ refused, bf16 loaded as float32, minutes per answer)."""
    if num_gpus <= 0 or host.accelerator == "cuda":
        return
    message = f"tier {tier!r} asks for {num_gpus:g} GPU(s), but torch sees no GPU on this node"
    if host.cuda_build is None:
        raise GpuNotVisibleError(
            f"{message}: this torch is a CPU build",
            hint="run the GPU image (Dockerfile.gpu), or set num_gpus: 0 to serve on CPU",
        )
    needed = MINIMUM_DRIVER.get(host.cuda_build.split(".")[0])
    wanted = needed or "the one its CUDA release notes name"
    build = f"torch is built for CUDA {host.cuda_build}, which needs NVIDIA driver >= {wanted}"
    if host.nvidia_driver is None:
        raise GpuNotVisibleError(
            f"{message}: no NVIDIA driver is loaded ({DRIVER_VERSION_FILE} is missing); {build}",
            hint="schedule the tier on a GPU node (the NVIDIA device plugin gives the pod a GPU)",
        )
    if needed and _version(host.nvidia_driver) < _version(needed):
        raise GpuNotVisibleError(
            f"{message}: NVIDIA driver {host.nvidia_driver} found; {build}",
            hint=f"upgrade the GPU nodes' driver to {wanted} or newer",
        )
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "unset")
    raise GpuNotVisibleError(
        f"{message}: NVIDIA driver {host.nvidia_driver} found; {build}; "
        f"CUDA_VISIBLE_DEVICES={visible}",
        hint="check the pod's GPU request and `nvidia-smi` on the node",
    )


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".") if part.isdigit())

"""What the host can run: the accelerator, and whether vLLM-CPU has its 4-bit GPTQ kernel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["HostCapability", "detect_host"]


@dataclass(frozen=True, slots=True)
class HostCapability:
    accelerator: Literal["cuda", "cpu"]
    cpu_isa: str
    """'AVX512', 'AVX2', ... as torch reports it."""

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
    return HostCapability(accelerator=accelerator, cpu_isa=str(isa))

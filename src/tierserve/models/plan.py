"""Which embedded model folders a stack config needs on this host."""

from __future__ import annotations

from collections.abc import Iterable

from tierserve.config import StackConfig
from tierserve.hardware import HostCapability
from tierserve.models.catalog import FORMAT_OF, EmbeddedModel, ModelFormat, embedded_model
from tierserve.models.choice import resolve_format

__all__ = ["formats_needed"]


def formats_needed(
    config: StackConfig, host: HostCapability, *, every_quantized_format: bool = False
) -> dict[str, tuple[EmbeddedModel, list[ModelFormat]]]:
    """Map model id -> (model, formats) for the config's embedded tiers.

    ``every_quantized_format`` also builds the formats this host would not pick (e.g. GPTQ on
    an AVX2 CPU, for shipping to a GPU cluster).
    """
    needed: dict[str, tuple[EmbeddedModel, list[ModelFormat]]] = {}
    for tier in config.tiers:
        if not tier.model.startswith("embedded:"):
            continue
        model = embedded_model(tier.model)
        formats: Iterable[ModelFormat]
        if tier.quantization == "auto" and every_quantized_format:
            formats = ("gptq-w4a16", "int8-w8a8")
        else:
            formats = (FORMAT_OF[resolve_format(tier, host)[0]],)
        entry = needed.setdefault(model.id, (model, []))
        entry[1].extend(f for f in formats if f not in entry[1])
    return needed

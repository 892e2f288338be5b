"""Checks on a policy's named schemas that need Outlines (kept out of the pure policy core)."""

from __future__ import annotations

from tierserve.errors import ConfigError
from tierserve.policy.spec import Policy
from tierserve.structured.outlines_adapter import compile_check

__all__ = ["check_schemas"]


def check_schemas(policy: Policy) -> dict[str, int]:
    """Every named schema must be one Outlines can constrain decoding to.

    Returns the length of each schema's regex (a rough measure of its compile cost).
    """
    sizes = {}
    for name, spec in policy.schemas.items():
        try:
            sizes[name] = len(compile_check(spec.schema_))
        except ValueError as error:
            raise ConfigError(
                f"schema {name!r} ({spec.source}): {error}",
                hint="use the JSON-schema features Outlines supports (types, enum, pattern, "
                "format date/date-time, min/maxLength, min/maxItems, required)",
            ) from None
    return sizes

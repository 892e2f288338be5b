"""Checks on a policy's named schemas that need Outlines (kept out of the pure policy core)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from tierserve.errors import ConfigError
from tierserve.structured.outlines_adapter import compile_check

__all__ = ["NamedSchema", "check_schemas"]


class NamedSchema(Protocol):
    """A schema a policy names (its ``SchemaSpec``): the JSON schema and where it came from."""

    @property
    def schema_(self) -> dict[str, Any]: ...

    @property
    def source(self) -> str: ...


def check_schemas(schemas: Mapping[str, NamedSchema]) -> dict[str, int]:
    """Every named schema (a policy's ``schemas``) must be one Outlines can constrain decoding
    to. Returns the length of each schema's regex (a rough measure of its compile cost).
    """
    sizes = {}
    for name, spec in schemas.items():
        try:
            sizes[name] = len(compile_check(spec.schema_))
        except ValueError as error:
            raise ConfigError(
                f"schema {name!r} ({spec.source}): {error}",
                hint="use the JSON-schema features Outlines supports (types, enum, pattern, "
                "format date/date-time, min/maxLength, min/maxItems, required)",
            ) from None
    return sizes

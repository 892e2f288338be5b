"""Which output schema a request is held to, and how the caller chose it.

In order: the caller's own schema (``response_format`` with a ``schema``), a registered schema
named by ``response_format.json_schema.name`` (without a schema), by ``metadata.schema`` or by
the ``x-tierserve-schema`` header, and otherwise the route's default schema, if it has one.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from tierserve.api.protocol import ChatCompletionRequest
from tierserve.errors import InvalidRequestError
from tierserve.policy.compose import CALLERS_SCHEMA_INSTRUCTIONS, OWN_SCHEMA_PREFIX, SchemaChoice
from tierserve.policy.spec import Policy, RouteSpec
from tierserve.structured import compile_check

__all__ = ["decoding_override", "requested_schema", "route_schema"]


def _registered(policy: Policy, name: str, param: str) -> SchemaChoice:
    spec = policy.schemas.get(name)
    if spec is None:
        raise InvalidRequestError(
            "no schema of that name is registered here",
            hint=f"use one of {sorted(policy.schemas)} or send the schema itself in "
            "response_format.json_schema.schema",
            param=param,
        )
    return SchemaChoice(name, spec.schema_, tuple(spec.rules), spec.instructions)


def _own(name: str, schema: dict[str, Any]) -> SchemaChoice:
    param = "response_format.json_schema.schema"
    try:
        Draft202012Validator.check_schema(schema)
        compile_check(schema)
    except SchemaError as error:
        raise InvalidRequestError(
            # The validator's keyword and depth, not its message: that quotes the schema.
            f"{param} is not a valid JSON schema: its '{error.validator}' rule fails "
            f"{len(error.absolute_path)} levels down",
            hint="send a JSON Schema (draft 2020-12) object",
            param=param,
        ) from None
    except ValueError as error:
        raise InvalidRequestError(
            str(error),
            hint="use types, enum, pattern, format, min/maxLength, min/maxItems and required",
            param=param,
        ) from None
    return SchemaChoice(name, schema, instructions=CALLERS_SCHEMA_INSTRUCTIONS, callers_own=True)


def requested_schema(
    request: ChatCompletionRequest, policy: Policy, header_hint: str | None
) -> SchemaChoice | None:
    """The schema the caller asked for, if any (registered names are checked)."""
    response_format = request.response_format
    if response_format is not None:
        own = response_format.own_schema()
        if own is not None:
            # Named by its content, not by the caller's name for it: records and headers
            # group one schema's requests without repeating what the caller wrote.
            digest = hashlib.sha256(json.dumps(own, sort_keys=True).encode()).hexdigest()
            return _own(f"{OWN_SCHEMA_PREFIX}{digest[:12]}", own)
        registered = response_format.registered_name()
        if registered is not None:
            return _registered(policy, registered, "response_format.json_schema.name")
    hinted = header_hint or (request.metadata or {}).get("schema")
    if hinted:
        return _registered(policy, hinted, "metadata.schema")
    return None


def route_schema(policy: Policy, route: RouteSpec) -> SchemaChoice | None:
    if route.schema_name is None:
        return None
    return _registered(policy, route.schema_name, "route")


def decoding_override(request: ChatCompletionRequest, pinned: str | None) -> bool | None:
    """``metadata.decoding``: True for constrained, False for unconstrained, None when unset.

    Only a pinned tier takes it (benchmarks compare the two on one tier); routed requests are
    constrained where the policy's ladder says.
    """
    value = (request.metadata or {}).get("decoding")
    if value is None:
        return None
    if value not in ("constrained", "unconstrained"):
        raise InvalidRequestError(
            "metadata.decoding is not a decoding mode",
            hint="use 'constrained' or 'unconstrained'",
            param="metadata.decoding",
        )
    if pinned is None:
        raise InvalidRequestError(
            "metadata.decoding applies to a pinned tier only; routed requests follow the "
            "policy's ladder",
            hint="set model to 'tierserve/<tier>' or drop metadata.decoding",
            param="metadata.decoding",
        )
    return value == "constrained"

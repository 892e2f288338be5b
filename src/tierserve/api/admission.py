"""Admission: the request limits, checked on the parsed body before any model work.

The body size is checked earlier still, on the raw bytes (:mod:`tierserve.serve.http`); the
caller's schema is checked here against :class:`~tierserve.limits.SchemaLimits` before
``jsonschema`` or Outlines read it.
"""

from __future__ import annotations

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from tierserve.api.protocol import ChatCompletionRequest
from tierserve.errors import InvalidRequestError
from tierserve.limits import AdmissionLimits
from tierserve.structured.schema_limits import check_schema_limits

__all__ = ["admit"]


def _over(what: str, count: int, limit: int, param: str, setting: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"{what}: {count} (limit {limit})",
        hint=f"send at most {limit}, or raise gateway.limits.{setting} in the stack config",
        param=param,
    )


def admit(request: ChatCompletionRequest, session_id: str | None, limits: AdmissionLimits) -> None:
    """Raise InvalidRequestError naming the first limit the request breaks."""
    if session_id is not None and len(session_id) > limits.max_session_id_chars:
        raise _over(
            "the session id is too long in characters",
            len(session_id),
            limits.max_session_id_chars,
            "metadata.session_id",
            "max_session_id_chars",
        )
    if len(request.messages) > limits.max_messages:
        raise _over(
            "too many messages",
            len(request.messages),
            limits.max_messages,
            "messages",
            "max_messages",
        )
    total = 0
    for index, message in enumerate(request.messages):
        length = len(message.text())
        total += length
        if length > limits.max_message_chars:
            raise _over(
                f"messages[{index}] is too long in characters",
                length,
                limits.max_message_chars,
                f"messages.{index}.content",
                "max_message_chars",
            )
    if total > limits.max_total_chars:
        raise _over(
            "the messages together are too long in characters",
            total,
            limits.max_total_chars,
            "messages",
            "max_total_chars",
        )
    stops = request.stops()
    if len(stops) > limits.max_stop:
        raise _over("too many stop sequences", len(stops), limits.max_stop, "stop", "max_stop")
    for stop in stops:
        if len(stop) > limits.max_stop_chars:
            raise _over(
                "a stop sequence is too long in characters",
                len(stop),
                limits.max_stop_chars,
                "stop",
                "max_stop_chars",
            )
    response_format = request.response_format
    own_schema = response_format.own_schema() if response_format is not None else None
    if own_schema is not None:
        check_schema_limits(own_schema, limits.schema_)
    for index, tool in enumerate(request.tools or ()):
        parameters = tool.function.parameters
        if parameters is None:
            continue
        where = f"tools.{index}.function.parameters"
        check_schema_limits(parameters, limits.schema_, param=where)
        try:
            Draft202012Validator.check_schema(parameters)
        except SchemaError as error:
            raise InvalidRequestError(
                f"{where} is not a valid JSON schema ({error.validator} at "
                f"/{'/'.join(str(p) for p in error.absolute_schema_path)})",
                hint="send a JSON schema (draft 2020-12) describing the arguments",
                param=where,
            ) from None

"""Inputs that once reached a tokenizer, a grammar compile or a tier and came back as a 500 or a
retryable 503 (issue 19): each must get a 400 naming the problem. Shared by the unit tests
(scripted tiers) and the integration tests (the real stack)."""

from typing import Any

from tests.fakes import FAQ

CHAT: dict[str, Any] = {"model": "tierserve", "messages": [{"role": "user", "content": FAQ}]}


def nested(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


def json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "caller", "schema": schema}}


def pattern(regex: str) -> dict[str, Any]:
    return json_schema(
        {"type": "object", "properties": {"v": {"type": "string", "pattern": regex}}}
    )


RECURSIVE = {
    "type": "object",
    "properties": {"node": {"$ref": "#/$defs/node"}},
    "$defs": {
        "node": {"type": "object", "properties": {"children": {"$ref": "#/$defs/nodes"}}},
        "nodes": {"type": "array", "items": {"$ref": "#/$defs/node"}},
    },
}
MANY_PROPERTIES = {
    "type": "object",
    "properties": {f"p{i}": {"type": "string"} for i in range(300)},
}

# (what the caller sent, the words the error must contain, the param it names)
BAD_BODIES: dict[str, tuple[dict[str, Any], str, str | None]] = {
    "lone surrogate": (
        {**CHAT, "messages": [{"role": "user", "content": "hi \ud800 there"}]},
        "lone UTF-16 surrogate",
        None,
    ),
    "schema nested 150 deep": (
        {**CHAT, "response_format": json_schema(nested(150))},
        "nested deeper than 24 levels",
        "response_format.json_schema.schema",
    ),
    "seed 2**64": ({**CHAT, "seed": 2**64}, "less than or equal to 9223372036854775807", "seed"),
    "empty stop": ({**CHAT, "stop": [""]}, "stop sequence may not be empty", "stop"),
    "lookahead pattern": (
        {**CHAT, "response_format": pattern("(?=a)[a-z]+")},
        "lookahead or lookbehind",
        "response_format.json_schema.schema",
    ),
    "backreference pattern": (
        {**CHAT, "response_format": pattern(r"(a)\1")},
        "backreference",
        "response_format.json_schema.schema",
    ),
    "regex-bomb repeat": (
        {**CHAT, "response_format": pattern("(a{1,100}){1,100}")},
        "repeat count of 100 (limit 64)",
        "response_format.json_schema.schema",
    ),
    "recursive $ref": (
        {**CHAT, "response_format": json_schema(RECURSIVE)},
        "recursive $ref",
        "response_format.json_schema.schema",
    ),
    "remote $ref": (
        {**CHAT, "response_format": json_schema({"$ref": "https://example.com/s.json"})},
        "not a local reference",
        "response_format.json_schema.schema",
    ),
    "300 properties": (
        {**CHAT, "response_format": json_schema(MANY_PROPERTIES)},
        "300 properties in all (limit 100)",
        "response_format.json_schema.schema",
    ),
    "4,000 messages": (
        {**CHAT, "messages": [{"role": "user", "content": "hi"}] * 4000},
        "too many messages: 4000 (limit 256)",
        "messages",
    ),
    "5,000 stop sequences": (
        {**CHAT, "stop": [f"s{i}" for i in range(5000)]},
        "too many stop sequences: 5000 (limit 16)",
        "stop",
    ),
    "one huge message": (
        {**CHAT, "messages": [{"role": "user", "content": "x" * 200_000}]},
        "messages[0] is too long in characters: 200000 (limit 131072)",
        "messages.0.content",
    ),
    "long session id": (
        {**CHAT, "metadata": {"session_id": "s" * 300}},
        "session id is too long in characters: 300 (limit 128)",
        "metadata.session_id",
    ),
    "non-ASCII schema name": (
        {
            **CHAT,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "résumé", "schema": {"type": "object"}},
            },
        },
        "should match pattern",
        "response_format",
    ),
}


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def canary_requests(CANARY: str) -> list[tuple[str, dict[str, Any], dict[str, str]]]:
    """(name, body, headers) carrying ``CANARY`` in every place a caller can put text: none of
    the replies (errors included) nor any log may echo it, except an answer to its caller."""
    ask = {"model": "tierserve", "max_tokens": 16, "temperature": 0}
    schema = {
        "type": "object",
        "properties": {CANARY: {"type": "string", "description": f"the {CANARY} field"}},
        "required": [CANARY],
    }
    return [
        (
            "prompt",
            {**ask, "messages": [{"role": "user", "content": f"Echo {CANARY} please."}]},
            {},
        ),
        (
            "system message",
            {
                **ask,
                "messages": [
                    {"role": "system", "content": f"The secret is {CANARY}."},
                    {"role": "user", "content": "How do I reset my password?"},
                ],
            },
            {},
        ),
        (
            "caller schema",
            {
                **ask,
                "messages": [{"role": "user", "content": f"Extract {CANARY} from: x"}],
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": CANARY, "schema": schema},
                },
            },
            {},
        ),
        (
            "headers",
            {**ask, "messages": [{"role": "user", "content": "How do I change my email?"}]},
            {"authorization": f"Bearer {CANARY}", "x-session-id": CANARY},
        ),
        (
            "task header",
            {**ask, "messages": [{"role": "user", "content": "hi"}]},
            {"x-tierserve-task": CANARY},
        ),
        (
            "unknown schema header",
            {**ask, "messages": [{"role": "user", "content": "hi"}]},
            {"x-tierserve-schema": CANARY},
        ),
        (
            "unknown model",
            {**ask, "model": CANARY, "messages": [{"role": "user", "content": "hi"}]},
            {},
        ),
        (
            "bad pattern",
            {
                **ask,
                "messages": [{"role": "user", "content": "hi"}],
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {
                        "name": "p",
                        "schema": {"type": "string", "pattern": f"(?={CANARY})x"},
                    },
                },
            },
            {},
        ),
        (
            "bad schema",
            {
                **ask,
                "messages": [{"role": "user", "content": "hi"}],
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "p", "schema": {"type": CANARY}},
                },
            },
            {},
        ),
        (
            "bad stop",
            {**ask, "messages": [{"role": "user", "content": "hi"}], "stop": [CANARY] * 20},
            {},
        ),
        (
            "human review",
            {
                **ask,
                "messages": [
                    {"role": "user", "content": f"Draft a reply promising a refund to {CANARY}."}
                ],
            },
            {},
        ),
        (
            "explain",
            {**ask, "messages": [{"role": "user", "content": f"Is {CANARY} valid?"}]},
            {"authorization": f"Bearer {CANARY}"},
        ),
    ]

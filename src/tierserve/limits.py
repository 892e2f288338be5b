"""What the gateway admits before it tokenizes, classifies or compiles anything.

Every limit is checked in microseconds on the parsed body (the body size on the raw bytes), so a
request that breaks one gets a 400 (413 for the body) naming the limit, and never costs a
tokenizer pass, a classifier call, a grammar compile or a tier's time.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["AdmissionLimits", "SchemaLimits"]


class SchemaLimits(BaseModel):
    """Bounds on a caller's ``response_format`` JSON schema: grammar compilation grows quickly
    with nesting, properties and repeat counts, and runs on the tiers' shared compile worker."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_bytes: int = Field(
        default=32_768, ge=1, description="Largest schema, as compact JSON, in bytes."
    )
    max_depth: int = Field(
        default=24,
        ge=1,
        description="Deepest nesting of JSON objects and arrays in the schema document (an "
        "object property with an array of objects is about 6 levels).",
    )
    max_properties: int = Field(
        default=100,
        ge=1,
        description="Object properties summed over the whole schema (OpenAI allows 5,000; "
        "the grammar for a few hundred takes tens of seconds to compile on a CPU).",
    )
    max_enum_values: int = Field(
        default=500, ge=1, description="enum and const values summed over the whole schema."
    )
    max_refs: int = Field(
        default=128, ge=0, description="Most `$ref` keywords (local ones only: '#/...')."
    )
    max_pattern_chars: int = Field(
        default=500, ge=1, description="Longest `pattern` (or patternProperties key)."
    )
    max_pattern_repeat: int = Field(
        default=64,
        ge=1,
        description="Largest bound of a counted repeat in a pattern (`a{1,64}`): each step of "
        "a repeat count multiplies the automaton the grammar compiles to.",
    )
    max_string_length: int = Field(
        default=2_048,
        ge=1,
        description="Largest minLength/maxLength/minItems/maxItems (each becomes a counted "
        "repeat in the grammar).",
    )
    max_grammar_chars: int = Field(
        default=100_000,
        ge=1,
        description="Largest regular expression the schema compiles to: the grammar-size "
        "budget, checked before the tiers compile it.",
    )


class AdmissionLimits(BaseModel):
    """Request limits checked before any model work; every one configurable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    max_body_bytes: int = Field(
        default=1_048_576,
        ge=1_024,
        description="Largest request body in bytes; larger ones get 413 before being parsed.",
    )
    max_messages: int = Field(
        default=256, ge=1, description="Most messages in one chat-completions request."
    )
    max_message_chars: int = Field(
        default=131_072,
        ge=1,
        description="Longest single message content, in characters.",
    )
    max_total_chars: int = Field(
        default=262_144,
        ge=1,
        description="All message contents together, in characters (a tier's context window "
        "refuses most such requests anyway, but only after tokenizing them).",
    )
    max_stop: int = Field(
        default=16, ge=0, description="Most `stop` sequences (OpenAI allows 4; vLLM more)."
    )
    max_session_id_chars: int = Field(
        default=128, ge=1, description="Longest session id (x-session-id or metadata.session_id)."
    )
    max_stop_chars: int = Field(default=256, ge=1, description="Longest `stop` sequence.")
    schema_: SchemaLimits = Field(
        default_factory=SchemaLimits,
        alias="schema",
        description="Bounds on a caller's own response_format schema.",
    )

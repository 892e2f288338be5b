"""What kind of value each field of a JSON schema holds, read from the schema alone, so any
schema — a caller's own included — gets field gates and checks without naming its fields.

* ``copied``: a string the text should contain as it is (a name, a vendor, an id, a phone
  number, an e-mail address, an address): the values a model gets wrong by inventing them;
* ``number``: an integer or a number;
* ``date``: a date or date-time (``format``, or a name such as ``due_date``);
* ``code``: a code the model maps the text to (a currency, a country: ISO codes);
* ``judgement``: an enum, a constant or a boolean: the model's reading, not a copy;
* ``text``: free text the model writes (a summary, a description, a reason).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Literal, TypeVar

__all__ = [
    "VALUE_KINDS",
    "ValueKind",
    "classified",
    "kind_of",
    "resolve",
    "schema_leaves",
    "value_kinds",
]

ValueKind = Literal["copied", "number", "date", "code", "judgement", "text"]
VALUE_KINDS: tuple[ValueKind, ...] = ("copied", "number", "date", "code", "judgement", "text")

_FREE_TEXT = (
    "summary",
    "description",
    "notes",
    "note",
    "comment",
    "reason",
    "message",
    "body",
    "explanation",
    "details",
    "subject",
    "title",
)
_CODES = ("currency", "country", "language", "locale", "iso")


def resolve(schema: Any, root: dict[str, Any]) -> dict[str, Any]:
    """A local ``$ref`` (``#/$defs/Item``, as Pydantic writes them) replaced by its target, and
    ``Optional[X]`` (``anyOf`` X or null) read as X."""
    seen = 0
    while isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and seen < 16:
        target: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        schema, seen = target, seen + 1
    if isinstance(schema, dict) and "anyOf" in schema:
        typed = [s for s in schema["anyOf"] if isinstance(s, dict) and s.get("type") != "null"]
        if len(typed) == 1:
            return {**resolve(typed[0], root), **{k: v for k, v in schema.items() if k != "anyOf"}}
    return schema if isinstance(schema, dict) else {}


SchemaNode = tuple[str, str, dict[str, Any]]
"""(a path without array positions, the field's name, its node with references resolved)."""


def schema_leaves(schema: dict[str, Any] | None) -> Iterator[SchemaNode]:
    """Every named node of ``schema``: (its path without array positions, its name, the node
    with references resolved). Objects and arrays are yielded as well as what they hold."""
    if schema is None:
        return

    def walk(
        node: Any, path: str, name: str, depth: int
    ) -> Iterator[tuple[str, str, dict[str, Any]]]:
        node = resolve(node, schema)
        if depth > 12:
            return
        if name:
            yield path, name, node
        for key, child in (node.get("properties") or {}).items():
            yield from walk(child, f"{path}.{key}" if path else key, key, depth + 1)
        items = node.get("items")
        if isinstance(items, dict):
            yield from walk(items, f"{path}[]", name, depth + 1)

    yield from walk(schema, "", "", 0)


def _type(node: dict[str, Any]) -> str | None:
    declared = node.get("type")
    if isinstance(declared, list):
        declared = next((t for t in declared if t != "null"), None)
    return declared if isinstance(declared, str) else None


def _is_date_name(name: str) -> bool:
    lowered = name.lower()
    return (
        lowered in ("date", "dob", "birthday")
        or lowered.endswith(("_date", "_on", "_at"))
        or lowered.startswith("date_")
    )


def kind_of(name: str, node: dict[str, Any]) -> ValueKind | None:
    """The kind of value a schema node holds; None for objects and arrays."""
    kind = _type(node)
    if "enum" in node or "const" in node or kind == "boolean":
        return "judgement"
    if kind in ("integer", "number"):
        return "number"
    if kind in ("object", "array") or "properties" in node or "items" in node:
        return None
    if node.get("format") in ("date", "date-time") or _is_date_name(name):
        return "date"
    lowered = name.lower()
    words = lowered.replace("-", "_").split("_")
    if any(code in words for code in _CODES) or lowered.endswith("_code"):
        return "code"
    if any(word in _FREE_TEXT for word in words):
        return "text"
    return "copied"


Kind = TypeVar("Kind")


def classified(
    schema: dict[str, Any] | None, of: Callable[[str, dict[str, Any]], Kind | None]
) -> dict[str, Kind]:
    """Every field of ``schema`` that ``of`` (given its name and node) gives a kind, by path
    without array positions."""
    found: dict[str, Kind] = {}
    for path, name, node in schema_leaves(schema):
        kind = of(name, node)
        if kind is not None:
            found[path] = kind
    return found


def value_kinds(schema: dict[str, Any] | None) -> dict[str, ValueKind]:
    """The kind of every value-holding field of ``schema``, by path without array positions."""
    return classified(schema, kind_of)

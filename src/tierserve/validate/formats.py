"""Format checks for any JSON schema, a caller's own included: no rules to write.

Which fields a check applies to is read from the schema (``format: date``, ``format: email``)
and from field names (``invoice_date``, ``contact_email``, ``currency``); numbers apply to every
numeric value. Each check is a validator with its own reason code naming the field, never its
value:

* ``dates``: an ISO 8601 date (``YYYY-MM-DD``, or a date-time for ``format: date-time``), whose
  day and year appear in the source text;
* ``emails``: a valid address (``email-validator``) copied from the source text;
* ``currencies``: an ISO 4217 code (``pycountry``) consistent with the source: a code written
  there, or one its symbol or name stands for (``€`` is EUR, ``$`` one of the dollars);
* ``source_numbers``: every number in the answer appears in the source text, however the source
  wrote it (``1,234.50``, ``1.234,50``, ``1234.5``);
* ``copied``: a string the schema says is copied from the text (see
  :mod:`tierserve.signals.value_kinds`: names, ids, vendors, phone numbers) is there, whatever
  its case, spacing, punctuation or word order.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import date, datetime
from typing import Any, Literal

import pycountry
from email_validator import EmailNotValidError, validate_email

from tierserve.signals.fields import field_pattern
from tierserve.signals.value_kinds import classified, value_kinds

__all__ = ["FORMAT_CHECKS", "FieldKind", "field_kinds"]

FieldKind = Literal["date", "date-time", "email", "currency"]
Problem = tuple[str, str]
"""(the field's path, what is wrong with it)."""

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INTEGER = re.compile(r"\d+")
_SOURCE_NUMBER = re.compile(r"\d(?:[\d,.' \u00a0]*\d)?")
_CODE = re.compile(r"\b[A-Z]{3}\b")
_DOLLARS = ("USD", "CAD", "AUD", "NZD", "SGD", "HKD", "MXN")
# What a currency's symbol or name in the text stands for; a symbol shared by several
# currencies allows each of them. Longest first, so "US$" is read before "$".
_SIGNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("us$", ("USD",)),
    ("a$", ("AUD",)),
    ("c$", ("CAD",)),
    ("r$", ("BRL",)),
    ("€", ("EUR",)),
    ("euro", ("EUR",)),
    ("£", ("GBP",)),
    ("pound", ("GBP",)),
    ("¥", ("JPY", "CNY")),
    ("yen", ("JPY",)),
    ("yuan", ("CNY",)),
    ("₹", ("INR",)),
    ("rupee", ("INR",)),
    ("franc", ("CHF",)),
    ("zł", ("PLN",)),
    ("₩", ("KRW",)),
    ("$", _DOLLARS),
    ("dollar", _DOLLARS),
)


def _name_kind(name: str) -> FieldKind | None:
    lowered = name.lower()
    if "email" in lowered or "e_mail" in lowered:
        return "email"
    if "currency" in lowered:
        return "currency"
    if lowered in ("date", "dob", "birthday") or lowered.endswith(("_date", "_on")):
        return "date"
    if lowered.startswith("date_"):
        return "date"
    return None


def _kind(name: str, schema: dict[str, Any]) -> FieldKind | None:
    declared = schema.get("format")
    if declared in ("date", "date-time", "email"):
        return declared  # type: ignore[no-any-return]
    if schema.get("type") not in (None, "string") and "string" not in schema.get("type", []):
        return None
    return _name_kind(name)


def field_kinds(schema: dict[str, Any] | None) -> dict[str, FieldKind]:
    """The fields of ``schema`` a format check applies to, as paths without array positions."""
    return classified(schema, _kind)


def _values(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every leaf of a parsed JSON value with its path."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _values(child, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _values(child, f"{path}[{index}]")
    else:
        yield path, value


def _date_problem(value: Any, kind: FieldKind, source: str) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        if kind == "date-time":
            parsed: date = datetime.fromisoformat(value)
        else:
            if not _ISO_DATE.match(value):
                return "not an ISO 8601 date (YYYY-MM-DD)"
            parsed = date.fromisoformat(value)
    except ValueError:
        return "not an ISO 8601 date"
    if source:
        numbers = {int(n) for n in _INTEGER.findall(source)}
        if parsed.year not in numbers and parsed.year % 100 not in numbers:
            return "year not in the source"
        if parsed.day not in numbers:
            return "day not in the source"
    return None


def _email_problem(value: Any, source: str) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        # Syntax only: no DNS, and reserved names (example.com, *.test) are addresses too.
        validate_email(
            value, check_deliverability=False, globally_deliverable=False, test_environment=True
        )
    except EmailNotValidError:
        return "not a valid e-mail address"
    if source and value.lower() not in source.lower():
        return "address not in the source"
    return None


def _currencies_in(source: str) -> set[str]:
    named = {code for code in _CODE.findall(source) if pycountry.currencies.get(alpha_3=code)}
    lowered = source.lower()
    for sign, codes in _SIGNS:
        if sign in lowered:
            named.update(codes)
            lowered = lowered.replace(sign, " ")
    return named


def _currency_problem(value: Any, source: str) -> str | None:
    if not isinstance(value, str):
        return None
    if pycountry.currencies.get(alpha_3=value) is None or value != value.upper():
        return "not an ISO 4217 code"
    named = _currencies_in(source)
    if named and value not in named:
        return "currency not in the source"
    return None


_US_STYLE = re.compile(r"^\d{1,3}(?:,\d{3})+(?:\.\d+)?$|^\d+(?:\.\d+)?$")
_EU_STYLE = re.compile(r"^\d{1,3}(?:\.\d{3})+(?:,\d+)?$|^\d+(?:,\d+)?$")


def _readings(token: str) -> set[float]:
    """What a number written in the source may be: ``1,234.5`` and ``1.234,5`` both mean
    1234.5 (a separator counts as thousands only before groups of three digits); ``1,234`` may
    be either 1234 or 1.234."""
    plain = re.sub(r"[' \u00a0]", "", token)
    readings = set()
    if _US_STYLE.match(plain):
        readings.add(float(plain.replace(",", "")))
    if _EU_STYLE.match(plain):
        readings.add(float(plain.replace(".", "").replace(",", ".")))
    return readings


def _source_numbers(source: str) -> set[float]:
    found: set[float] = set()
    for token in _SOURCE_NUMBER.findall(source):
        found |= _readings(token)
        # "qty 2 at 3.50" read as one run "2 at" is not a number: the parts count as well.
        for part in re.split(r"[ \u00a0']", token):
            found |= _readings(part) if part else set()
    return found


def _number_problem(value: Any, numbers: set[float]) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if any(abs(value - n) < 0.005 for n in numbers):
        return None
    return "number not in the source"


Checker = Callable[[Any, dict[str, Any] | None, str], list[Problem]]


def _kind_check(
    kinds: tuple[FieldKind, ...], problem: Callable[[Any, FieldKind, str], str | None]
) -> Checker:
    def check(value: Any, schema: dict[str, Any] | None, source: str) -> list[Problem]:
        wanted = {p: k for p, k in field_kinds(schema).items() if k in kinds}
        found = []
        for path, leaf in _values(value):
            kind = wanted.get(field_pattern(path))
            if kind is not None and leaf is not None:
                why = problem(leaf, kind, source)
                if why is not None:
                    found.append((path, why))
        return found

    return check


def _numbers(value: Any, _: dict[str, Any] | None, source: str) -> list[Problem]:
    if not source:
        return []
    numbers = _source_numbers(source)
    found = []
    for path, leaf in _values(value):
        why = _number_problem(leaf, numbers)
        if why is not None:
            found.append((path, why))
    return found


_TOKEN = re.compile(r"[^\W_]+")
_FEWEST_DIGITS = 6
"""A copied value with this many digits or more (a phone number, an account) is compared by
its digits alone, as numbers are written with any separators."""


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.casefold())


def _copied_problem(value: Any, source_tokens: set[str], source_digits: str) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    words = _tokens(value)
    if not words or all(word in source_tokens for word in words):
        return None
    digits = "".join(c for c in value if c.isdigit())
    if len(digits) >= _FEWEST_DIGITS and any(
        digits[cut:] in source_digits for cut in range(min(3, len(digits) - _FEWEST_DIGITS) + 1)
    ):
        return None  # the same number, written with other separators or a country code
    return "value not in the source"


def _copied(value: Any, schema: dict[str, Any] | None, source: str) -> list[Problem]:
    """Strings the schema says are copied from the text (names, ids, vendors, phone numbers,
    addresses) must be there: every word of the value in the text, whatever its case, spacing
    or punctuation, in any order ("Lee, Ann" holds "Ann Lee")."""
    if not source:
        return []
    emails = {p for p, k in field_kinds(schema).items() if k == "email"}  # checked by `emails`
    copied = {p for p, k in value_kinds(schema).items() if k == "copied"} - emails
    source_tokens, source_digits = set(_tokens(source)), "".join(filter(str.isdigit, source))
    found = []
    for path, leaf in _values(value):
        if field_pattern(path) in copied:
            why = _copied_problem(leaf, source_tokens, source_digits)
            if why is not None:
                found.append((path, why))
    return found


FORMAT_CHECKS: dict[str, Checker] = {
    "dates": _kind_check(("date", "date-time"), _date_problem),
    "emails": _kind_check(("email",), lambda v, _, s: _email_problem(v, s)),
    "currencies": _kind_check(("currency",), lambda v, _, s: _currency_problem(v, s)),
    "source_numbers": _numbers,
    "copied": _copied,
}


def parse_answer(text: str) -> Any:
    """The answer as JSON, or None when it is not JSON (the schema check reports that)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None

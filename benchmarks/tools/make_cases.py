"""Writes ``cases.jsonl``: 36 tool-use requests, each offering two or three tools, labelled
with the call a correct answer makes (the tool, and the argument values it must carry).
Seeded, so the file is reproducible; requests are phrased in several ways.

    python benchmarks/tools/make_cases.py > benchmarks/tools/cases.jsonl
"""

from __future__ import annotations

import json
import random
from typing import Any

RNG = random.Random(20261203)


def tool(name: str, description: str, properties: dict[str, Any], required: list[str]) -> Any:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }


WEATHER = tool(
    "get_weather",
    "Current weather in a city.",
    {
        "city": {"type": "string", "description": "City name, e.g. Paris"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    ["city"],
)
ORDER = tool(
    "get_order_status",
    "Shipping status of an order.",
    {"order_id": {"type": "string", "pattern": "^ORD-[0-9]{5}$", "description": "ORD-12345"}},
    ["order_id"],
)
CURRENCY = tool(
    "convert_currency",
    "Convert an amount of money between currencies.",
    {
        "amount": {"type": "number"},
        "from_currency": {"type": "string", "pattern": "^[A-Z]{3}$", "description": "ISO 4217"},
        "to_currency": {"type": "string", "pattern": "^[A-Z]{3}$", "description": "ISO 4217"},
    },
    ["amount", "from_currency", "to_currency"],
)
TICKET = tool(
    "create_ticket",
    "Open a support ticket.",
    {
        "title": {"type": "string"},
        "priority": {"type": "string", "enum": ["low", "medium", "high"]},
    },
    ["title", "priority"],
)
EMAIL = tool(
    "send_email",
    "Send an email.",
    {
        "to": {"type": "string", "format": "email"},
        "subject": {"type": "string"},
        "body": {"type": "string"},
    },
    ["to", "subject", "body"],
)
ALL = [WEATHER, ORDER, CURRENCY, TICKET, EMAIL]

CITIES = ["Paris", "Tokyo", "Lima", "Oslo", "Cairo", "Denver", "Madrid", "Seoul"]
CURRENCIES = [("USD", "EUR", "dollars", "euros"), ("GBP", "JPY", "pounds", "yen")]
PEOPLE = ["ana@example.com", "li.wei@example.org", "omar@example.net", "kate@example.com"]


def weather() -> tuple[str, dict[str, Any]]:
    city = RNG.choice(CITIES)
    if RNG.random() < 0.5:
        unit = RNG.choice(["celsius", "fahrenheit"])
        text = RNG.choice(
            [
                f"What's the weather in {city} right now, in {unit}?",
                f"How warm is it in {city}? Give me {unit}.",
            ]
        )
        return text, {"city": city, "unit": unit}
    text = RNG.choice([f"Is it raining in {city}?", f"What is the weather like in {city} today?"])
    return text, {"city": city}


def order() -> tuple[str, dict[str, Any]]:
    number = f"ORD-{RNG.randrange(10000, 99999)}"
    text = RNG.choice(
        [
            f"Where is my order {number}?",
            f"Can you check the status of order {number} for me?",
            f"Has {number} shipped yet?",
        ]
    )
    return text, {"order_id": number}


def currency() -> tuple[str, dict[str, Any]]:
    source, target, source_name, target_name = RNG.choice(CURRENCIES)
    amount = RNG.choice([20, 75, 120, 350, 1000])
    text = RNG.choice(
        [
            f"How much is {amount} {source_name} in {target_name}?",
            f"Convert {amount} {source} to {target}.",
        ]
    )
    return text, {"amount": amount, "from_currency": source, "to_currency": target}


def ticket() -> tuple[str, dict[str, Any]]:
    issue, priority = RNG.choice(
        [
            ("my invoice shows the wrong address", "low"),
            ("the app crashes when I log in", "high"),
            ("I cannot reset my password", "medium"),
            ("checkout fails for every customer", "high"),
        ]
    )
    text = f"Please open a {priority} priority ticket: {issue}."
    return text, {"priority": priority}


def email() -> tuple[str, dict[str, Any]]:
    to = RNG.choice(PEOPLE)
    subject = RNG.choice(["Meeting moved", "Invoice paid", "Welcome aboard"])
    text = f"Send an email to {to} with the subject '{subject}' saying thanks for the update."
    return text, {"to": to, "subject": subject}


MAKERS = {
    "get_weather": weather,
    "get_order_status": order,
    "convert_currency": currency,
    "create_ticket": ticket,
    "send_email": email,
}


def main() -> None:
    case = 0
    for name, make in MAKERS.items():
        for _ in range(7 if name != "send_email" else 8):
            text, expected = make()
            wanted = next(t for t in ALL if t["function"]["name"] == name)
            others = RNG.sample([t for t in ALL if t is not wanted], RNG.choice([1, 2]))
            tools = RNG.sample([wanted, *others], len(others) + 1)
            row = {
                "id": f"tool-{case:03d}",
                "messages": [{"role": "user", "content": text}],
                "tools": tools,
                "tool_choice": "required" if case % 4 == 3 else "auto",
                "expected": {"name": name, "arguments": expected},
            }
            print(json.dumps(row))
            case += 1


if __name__ == "__main__":
    main()

"""Writes ``cases.jsonl``: 52 extraction inputs (26 support emails, 26 invoices) with the values
a correct extraction holds. Seeded, so the file is reproducible; the phrasing varies across
several templates so that no single prompt shape dominates.

    python benchmarks/extraction/make_cases.py > benchmarks/extraction/cases.jsonl
"""

from __future__ import annotations

import datetime
import json
import random

RNG = random.Random(20261123)
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
PEOPLE = ["Maria Lopez", "Tom Becker", "Aiko Tanaka", "Sam Okafor", "Lena Novak", "Raj Patel"]
PRODUCTS = ["Nimbus router", "Atlas laptop", "Pulse headphones", "Orbit smart plug", "Vega monitor"]


def natural(day: datetime.date) -> str:
    if RNG.random() < 0.5:
        return day.isoformat()
    return f"{MONTHS[day.month - 1]} {day.day}, {day.year}"


def some_day() -> datetime.date:
    return datetime.date(2026, 1, 1) + datetime.timedelta(days=RNG.randrange(0, 320))


TICKET_KINDS = [
    # issue_type, refund, template(customer, order, product, person, date_text)
    (
        "billing",
        True,
        "Hello, this is {person}, customer {cid}. I was charged twice for order "
        "{order} on {date}. Please refund the duplicate charge.",
    ),
    (
        "shipping",
        True,
        "Customer number {cid} here. My {product} (order {order}) was supposed to "
        "arrive on {date} and never came. I want my money back.",
    ),
    (
        "technical",
        False,
        "Hi support, my {product} keeps rebooting since the update on {date}. "
        "Account {cid}. Can someone help me fix it?",
    ),
    (
        "account",
        False,
        "I can't log in to my account since {date}; the password reset email "
        "never arrives. My customer id is {cid}. Thanks, {person}",
    ),
    (
        "shipping",
        False,
        "Order {order} for customer {cid}: the tracking page has not moved "
        "since {date}. Where is my {product}?",
    ),
    (
        "billing",
        False,
        "Dear team, invoice for order {order} (customer {cid}) lists the wrong "
        "billing address. Please correct it. Regards, {person}",
    ),
]
SEVERITY_WORDS = {
    "high": "This is urgent: it is blocking my business.",
    "medium": "Please look into it this week.",
    "low": "No rush, whenever you have time.",
}


def ticket(index: int) -> dict[str, object]:
    issue, refund, template = TICKET_KINDS[index % len(TICKET_KINDS)]
    severity = ["high", "medium", "low"][(index // len(TICKET_KINDS)) % 3]
    cid = f"C-{RNG.randrange(1000, 99999)}"
    order = f"A{RNG.randrange(100000, 999999)}"
    product, person, day = RNG.choice(PRODUCTS), RNG.choice(PEOPLE), some_day()
    text = template.format(cid=cid, order=order, product=product, person=person, date=natural(day))
    text = f"{text} {SEVERITY_WORDS[severity]}"
    return {
        "id": f"ticket-{index:02d}",
        "schema": "ticket",
        "text": text,
        "expected": {
            "customer_id": cid,
            "issue_type": issue,
            "severity": severity,
            "refund_requested": refund,
            "dates": [day.isoformat()],
        },
    }


VENDORS = [
    "Acme Office Supply",
    "Bluefin Logistics",
    "Cedar Print Works",
    "Delta Cloud GmbH",
    "Evergreen Catering",
    "Foxglove Design Ltd",
]
ITEMS = [
    ("Printer paper, box", 24.5),
    ("Toner cartridge", 79.0),
    ("Courier delivery", 15.0),
    ("Consulting hour", 120.0),
    ("Sandwich platter", 42.75),
    ("Logo redesign", 350.0),
    ("Cloud storage, 1 TB", 9.99),
    ("Office chair", 189.0),
]
CURRENCIES = [("EUR", "EUR {:.2f}"), ("USD", "${:.2f}"), ("GBP", "£{:.2f}"), ("CHF", "CHF {:.2f}")]


def invoice(index: int) -> dict[str, object]:
    vendor = VENDORS[index % len(VENDORS)]
    currency, money = CURRENCIES[(index // 2) % len(CURRENCIES)]
    number = f"INV-{RNG.randrange(2026000, 2026999)}"
    day = some_day()
    items = []
    for name, price in RNG.sample(ITEMS, k=1 + index % 3):
        quantity = RNG.randrange(1, 6)
        items.append(
            {
                "description": name,
                "quantity": quantity,
                "unit_price": price,
                "amount": round(quantity * price, 2),
            }
        )
    total = round(sum(i["amount"] for i in items), 2)
    if index % 2 == 0:
        lines = "\n".join(
            f"  {i['description']:<22} {i['quantity']} x {money.format(i['unit_price'])}"
            f" = {money.format(i['amount'])}"
            for i in items
        )
        text = (
            f"{vendor}\nInvoice {number}\nDate: {natural(day)}\n\n{lines}\n\n"
            f"TOTAL DUE: {money.format(total)}"
        )
    else:
        parts = ", ".join(
            f"{i['quantity']} x {i['description']} at {money.format(i['unit_price'])} each"
            for i in items
        )
        text = (
            f"Hi, please find our invoice {number} dated {natural(day)} from {vendor}: "
            f"{parts}. The total is {money.format(total)}. Kind regards"
        )
    return {
        "id": f"invoice-{index:02d}",
        "schema": "invoice",
        "text": text,
        "expected": {
            "vendor": vendor,
            "invoice_number": number,
            "date": day.isoformat(),
            "currency": currency,
            "line_items": items,
            "total": total,
        },
    }


if __name__ == "__main__":
    for case in [ticket(i) for i in range(26)] + [invoice(i) for i in range(26)]:
        print(json.dumps(case))

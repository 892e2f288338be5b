"""Writes ``cases.jsonl``: labelled extractions of the kinds apps send, each with the caller's
own JSON schema (as an app puts it in ``response_format``), in seven families: invoices,
contacts, orders and support tickets (26 each), and shipments, appointments and expense claims
(35 each, added so that calibration can leave whole families out). Values are written in the
forms people write them (dates as "3 March 2026" or "Mar 3rd, 2026", amounts as "€1.249,50" or
"USD 420", names as "Lee, Ann" or "Dr. Ann Lee", weights in grams); the expected values are the
normalised ones the schema's descriptions ask for.

Cases alternate between the train split (thresholds are calibrated on it) and the test split
(figures are reported on it). Separate from ``benchmarks/extraction`` (registered schemas).

    python benchmarks/extraction_fields/make_cases.py
"""

from __future__ import annotations

import calendar
import json
import random
from datetime import date, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PER_KIND = 26

ISO_DATE = "ISO 8601 date, YYYY-MM-DD"
CURRENCY = "ISO 4217 currency code, e.g. EUR"


def _schema(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


SCHEMAS: dict[str, dict[str, Any]] = {
    "invoice": _schema(
        {
            "vendor": {"type": "string", "description": "Company that issued the invoice"},
            "invoice_number": {"type": "string"},
            "invoice_date": {"type": "string", "description": ISO_DATE},
            "currency": {"type": "string", "description": CURRENCY},
            "total": {"type": "number", "description": "Amount due"},
        }
    ),
    "contact": _schema(
        {
            "full_name": {
                "type": "string",
                "description": "First name then last name, without titles, e.g. 'Ann Lee'",
            },
            "email": {"type": "string"},
            "company": {"type": "string"},
        }
    ),
    "order": _schema(
        {
            "order_id": {"type": "string"},
            "order_date": {"type": "string", "description": ISO_DATE},
            "quantity": {"type": "integer"},
            "unit_price": {"type": "number"},
            "currency": {"type": "string", "description": CURRENCY},
        }
    ),
    "ticket": _schema(
        {
            "customer_id": {"type": "string"},
            "incident_date": {"type": "string", "description": ISO_DATE},
            "severity": {"type": "string", "enum": ["low", "medium", "high"]},
            "refund_requested": {"type": "boolean"},
        }
    ),
    # Families added for issue 30: field names, value forms and phrasings the four above never
    # use, so a family can be left out of calibration and still be like real traffic.
    "shipment": _schema(
        {
            "tracking_number": {"type": "string", "description": "As written, spaces included"},
            "carrier": {"type": "string"},
            "shipped_on": {"type": "string", "description": ISO_DATE},
            "weight_kg": {"type": "number", "description": "Parcel weight in kilograms"},
            "destination_city": {"type": "string"},
        }
    ),
    "appointment": _schema(
        {
            "patient": {"type": "string", "description": "First name then last name, no title"},
            "phone": {"type": "string", "description": "The phone number as written"},
            "clinic": {"type": "string"},
            "appointment_date": {"type": "string", "description": ISO_DATE},
            "visit_type": {"type": "string", "enum": ["checkup", "dental", "vaccination"]},
        }
    ),
    "expense": _schema(
        {
            "employee": {"type": "string", "description": "First name then last name"},
            "merchant": {"type": "string"},
            "spent_on": {"type": "string", "description": ISO_DATE},
            "amount": {"type": "number"},
            "currency_code": {"type": "string", "description": CURRENCY},
            "category": {"type": "string", "enum": ["travel", "meals", "software"]},
        }
    ),
}

FIRST = ["Ann", "Tom", "Maria", "Kenji", "Priya", "Lars", "Chloe", "Omar", "Ines", "David"]
LAST = ["Lee", "Becker", "Rossi", "Tanaka", "Sharma", "Nilsson", "Martin", "Haddad", "Costa"]
COMPANIES = ["Northwind", "Acme GmbH", "Blue Harbor Ltd", "Kite Systems", "Orbital Foods"]
DOMAINS = ["example.com", "mail.test", "corp.example", "shop.example"]
MONTHS = list(calendar.month_name)[1:]


def _ordinal(day: int) -> str:
    suffix = "th" if 11 <= day <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def written_date(rng: random.Random, when: date) -> str:
    month = MONTHS[when.month - 1]
    return rng.choice(
        [
            when.isoformat(),
            f"{when.day} {month} {when.year}",
            f"{month} {when.day}, {when.year}",
            f"{month[:3]} {_ordinal(when.day)}, {when.year}",
            f"{when.day:02d}.{when.month:02d}.{when.year}",
        ]
    )


def _grouped(amount: float, thousands: str, decimal: str) -> str:
    whole, cents = f"{amount:,.2f}".split(".")
    return whole.replace(",", thousands) + decimal + cents


# (the currency's code, how the text writes an amount in it)
MONEY = [
    ("EUR", lambda a: f"€{_grouped(a, ',', '.')}"),
    ("EUR", lambda a: f"{_grouped(a, '.', ',')} EUR"),
    ("EUR", lambda a: f"{_grouped(a, '.', ',')} euros"),
    ("USD", lambda a: f"US${_grouped(a, ',', '.')}"),
    ("USD", lambda a: f"USD {_grouped(a, ',', '.')}"),
    ("GBP", lambda a: f"£{_grouped(a, ',', '.')}"),
    ("CHF", lambda a: f"CHF {_grouped(a, chr(39), '.')}"),
    ("JPY", lambda a: f"¥{int(a):,}"),
]


def written_name(rng: random.Random, first: str, last: str) -> str:
    return rng.choice(
        [f"{first} {last}", f"{last}, {first}", f"Dr. {first} {last}", f"{last.upper()}, {first}"]
    )


def invoice(rng: random.Random) -> tuple[str, dict[str, Any]]:
    vendor = rng.choice(COMPANIES)
    number = f"INV-{rng.randint(1000, 99999)}"
    when = date(2026, 1, 1) + timedelta(days=rng.randint(0, 330))
    code, write = rng.choice(MONEY)
    total = round(rng.uniform(20, 5000), 2) if code != "JPY" else float(rng.randint(2, 900) * 100)
    text = rng.choice(
        [
            f"Invoice {number} from {vendor}, dated {written_date(rng, when)}. "
            f"Amount due: {write(total)}. Payment within 30 days.",
            f"{vendor}\nInvoice no. {number}\nDate: {written_date(rng, when)}\n"
            f"Total {write(total)}\nThank you for your business.",
            f"Please find attached our invoice {number} of {written_date(rng, when)} "
            f"for {write(total)}. Kind regards, {vendor} accounts team.",
        ]
    )
    expected = {
        "vendor": vendor,
        "invoice_number": number,
        "invoice_date": when.isoformat(),
        "currency": code,
        "total": total,
    }
    return text, expected


def contact(rng: random.Random) -> tuple[str, dict[str, Any]]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    company = rng.choice(COMPANIES)
    email = f"{first.lower()}.{last.lower()}@{rng.choice(DOMAINS)}"
    name = written_name(rng, first, last)
    text = rng.choice(
        [
            f"New lead: {name} from {company}, reachable at {email}.",
            f"Best regards,\n{name}\nHead of Purchasing, {company}\n{email}",
            f"Contact card - Name: {name}; Company: {company}; E-mail: <{email}>",
        ]
    )
    return text, {"full_name": f"{first} {last}", "email": email, "company": company}


def order(rng: random.Random) -> tuple[str, dict[str, Any]]:
    order_id = f"A-{rng.randint(10000, 99999)}"
    when = date(2026, 1, 1) + timedelta(days=rng.randint(0, 330))
    quantity = rng.randint(1, 12)
    code, write = rng.choice(MONEY)
    price = round(rng.uniform(3, 400), 2) if code != "JPY" else float(rng.randint(3, 90) * 100)
    product = rng.choice(["Orbit smart plug", "desk lamp", "USB-C hub", "coffee grinder"])
    text = rng.choice(
        [
            f"Order {order_id} placed on {written_date(rng, when)}: {quantity} x {product} "
            f"at {write(price)} each.",
            f"Hi, I ordered {quantity} units of the {product} ({write(price)} per unit) on "
            f"{written_date(rng, when)}, order number {order_id}.",
            f"Order confirmation #{order_id}\nDate: {written_date(rng, when)}\nItem: {product}\n"
            f"Qty: {quantity}\nUnit price: {write(price)}",
        ]
    )
    expected = {
        "order_id": order_id,
        "order_date": when.isoformat(),
        "quantity": quantity,
        "unit_price": price,
        "currency": code,
    }
    return text, expected


def ticket(rng: random.Random) -> tuple[str, dict[str, Any]]:
    customer = f"C-{rng.randint(10000, 99999)}"
    when = date(2026, 1, 1) + timedelta(days=rng.randint(0, 330))
    severity = rng.choice(["low", "medium", "high"])
    refund = rng.random() < 0.4
    problem = rng.choice(
        [
            "my smart plug stopped connecting to Wi-Fi",
            "the parcel arrived damaged",
            "I was charged twice",
            "the app crashes at login",
        ]
    )
    urgency = {
        "low": "No rush, whenever you have time.",
        "medium": "Please look at this this week.",
        "high": "This is urgent: it blocks our whole team.",
    }[severity]
    ask = "I would like my money back." if refund else "Can you help me fix it?"
    text = rng.choice(
        [
            f"Customer {customer} here. Since {written_date(rng, when)} {problem}. {ask} {urgency}",
            f"{urgency} {problem.capitalize()} on {written_date(rng, when)}. {ask} "
            f"(account {customer})",
        ]
    )
    expected = {
        "customer_id": customer,
        "incident_date": when.isoformat(),
        "severity": severity,
        "refund_requested": refund,
    }
    return text, expected


CARRIERS = ["DHL Express", "UPS", "La Poste Colissimo", "FedEx Ground", "PostNL"]
CITIES = ["Rotterdam", "Lyon", "Gdansk", "Porto", "Leeds", "Bologna", "Tampere", "Graz"]
CLINICS = ["Riverside Family Practice", "Harbour Dental", "St Anne's Clinic", "Oakwood Health"]
MERCHANTS = ["Lufthansa", "Café Lumen", "JetBrains", "Hotel Astoria", "Uber", "Figma"]
CATEGORY_OF = {
    "Lufthansa": "travel",
    "Café Lumen": "meals",
    "JetBrains": "software",
    "Hotel Astoria": "travel",
    "Uber": "travel",
    "Figma": "software",
}
PHONES = [
    lambda r: f"+44 20 7946 {r.randint(1000, 9999)}",
    lambda r: f"(555) 01{r.randint(0, 9)}-{r.randint(1000, 9999)}",
    lambda r: f"06 {r.randint(10, 99)} {r.randint(10, 99)} {r.randint(10, 99)} {r.randint(10, 99)}",
    lambda r: f"+49 30 {r.randint(100000, 999999)}",
]


def shipment(rng: random.Random) -> tuple[str, dict[str, Any]]:
    tracking = rng.choice(
        [
            f"1Z {rng.randint(100, 999)} AA1 {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}",
            f"JD{rng.randint(10**11, 10**12 - 1)}",
            f"CP{rng.randint(10**8, 10**9 - 1)}FR",
        ]
    )
    carrier, city = rng.choice(CARRIERS), rng.choice(CITIES)
    when = date(2026, 1, 1) + timedelta(days=rng.randint(0, 330))
    weight = round(rng.uniform(0.2, 30), 1)
    grams = int(weight * 1000)
    text = rng.choice(
        [
            f"Your parcel left our warehouse on {written_date(rng, when)} with {carrier} "
            f"(tracking {tracking}), {weight} kg, bound for {city}.",
            f"Shipping notice\nCarrier: {carrier}\nTracking no.: {tracking}\n"
            f"Dispatched: {written_date(rng, when)}\nWeight: {grams} g\nTo: {city}",
            f"{carrier} picked up the {weight} kg box for {city} on {written_date(rng, when)}; "
            f"follow it with {tracking}.",
        ]
    )
    expected = {
        "tracking_number": tracking,
        "carrier": carrier,
        "shipped_on": when.isoformat(),
        "weight_kg": weight,
        "destination_city": city,
    }
    return text, expected


def appointment(rng: random.Random) -> tuple[str, dict[str, Any]]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    phone = rng.choice(PHONES)(rng)
    clinic = rng.choice(CLINICS)
    when = date(2026, 1, 1) + timedelta(days=rng.randint(0, 330))
    visit = rng.choice(["checkup", "dental", "vaccination"])
    what = {
        "checkup": "a routine check-up",
        "dental": "a dental cleaning",
        "vaccination": "the flu shot",
    }[visit]
    name = written_name(rng, first, last)
    text = rng.choice(
        [
            f"Reminder: {name} is booked at {clinic} for {what} on {written_date(rng, when)}. "
            f"To reschedule call {phone}.",
            f"Hello, this is {name} ({phone}). I'd like to confirm {what} at {clinic} on "
            f"{written_date(rng, when)}.",
            f"{clinic} - appointment slip\nPatient: {name}\nTel: {phone}\n"
            f"When: {written_date(rng, when)}\nReason: {what}",
        ]
    )
    expected = {
        "patient": f"{first} {last}",
        "phone": phone,
        "clinic": clinic,
        "appointment_date": when.isoformat(),
        "visit_type": visit,
    }
    return text, expected


def expense(rng: random.Random) -> tuple[str, dict[str, Any]]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    merchant = rng.choice(MERCHANTS)
    when = date(2026, 1, 1) + timedelta(days=rng.randint(0, 330))
    code, write = rng.choice(MONEY)
    amount = round(rng.uniform(4, 900), 2) if code != "JPY" else float(rng.randint(5, 900) * 100)
    name = written_name(rng, first, last)
    text = rng.choice(
        [
            f"Expense claim from {name}: {write(amount)} paid to {merchant} on "
            f"{written_date(rng, when)}. Receipt attached.",
            f"Hi finance, I spent {write(amount)} at {merchant} on {written_date(rng, when)} "
            f"for the client visit. Thanks, {name}",
            f"Receipt - {merchant}\nDate {written_date(rng, when)}\nTotal {write(amount)}\n"
            f"Submitted by: {name}",
        ]
    )
    expected = {
        "employee": f"{first} {last}",
        "merchant": merchant,
        "spent_on": when.isoformat(),
        "amount": amount,
        "currency_code": code,
        "category": CATEGORY_OF[merchant],
    }
    return text, expected


MAKERS = {
    "invoice": invoice,
    "contact": contact,
    "order": order,
    "ticket": ticket,
    "shipment": shipment,
    "appointment": appointment,
    "expense": expense,
}
PER_FAMILY = {"shipment": 35, "appointment": 35, "expense": 35}
"""Cases of the families added later (the first four keep PER_KIND, and their cases as they
were: they are generated first, from the same seed)."""


def main() -> None:
    rng = random.Random(18)
    rows = []
    for kind, make in MAKERS.items():
        for index in range(PER_FAMILY.get(kind, PER_KIND)):
            text, expected = make(rng)
            rows.append(
                {
                    "id": f"{kind}-{index:02d}",
                    "kind": kind,
                    "split": "train" if index % 2 == 0 else "test",
                    "text": text,
                    "expected": expected,
                }
            )
    with (HERE / "cases.jsonl").open("w") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    (HERE / "schemas.json").write_text(json.dumps(SCHEMAS, indent=2) + "\n")
    print(f"wrote {len(rows)} cases and {len(SCHEMAS)} schemas to {HERE}")


if __name__ == "__main__":
    main()

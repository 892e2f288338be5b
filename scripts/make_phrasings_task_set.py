"""Writes src/tierserve/evaluate/task_sets/phrasings.jsonl: 150 general questions (50 facts,
50 sums, 50 short reasoning items) phrased unlike the `general` set, as a user would type them:
no "Answer with the answer only" preamble, no "Answer:" cue, the instruction (if any) at the
end, and facts the general set does not ask. It is a source of questions calibration can be
left out of (`tierserve eval sources`); the answers are facts or computed.

    python scripts/make_phrasings_task_set.py
"""

from __future__ import annotations

import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src/tierserve/evaluate/task_sets/phrasings.jsonl"

CAPITALS = [
    ("Nigeria", "Abuja"),
    ("Vietnam", "Hanoi"),
    ("Indonesia", "Jakarta"),
    ("Colombia", "Bogota|Bogotá"),
    ("New Zealand", "Wellington"),
    ("Morocco", "Rabat"),
    ("Iran", "Tehran"),
    ("Iraq", "Baghdad"),
    ("Saudi Arabia", "Riyadh"),
    ("Pakistan", "Islamabad"),
    ("Bangladesh", "Dhaka"),
    ("the Philippines", "Manila"),
    ("Malaysia", "Kuala Lumpur"),
    ("Venezuela", "Caracas"),
    ("Ethiopia", "Addis Ababa"),
    ("Ghana", "Accra"),
    ("Romania", "Bucharest"),
    ("Bulgaria", "Sofia"),
    ("Croatia", "Zagreb"),
    ("Serbia", "Belgrade"),
    ("Iceland", "Reykjavik|Reykjavík"),
    ("Nepal", "Kathmandu"),
    ("Qatar", "Doha"),
    ("Lebanon", "Beirut"),
    ("Afghanistan", "Kabul"),
]
CAPITAL_PHRASINGS = [
    "Which city is the capital of {country}?",
    "quick q: capital city of {country}?",
    "I'm doing a geography quiz. What's the capital of {country}? Just the city please.",
    "Name the capital of {country}.",
    "{country}'s capital is which city?",
]
FACTS = [
    ("Which gas makes up most of the air we breathe? One word.", "nitrogen"),
    ("How many bones does an adult human skeleton have?", "206"),
    ("Smallest prime number? Reply with the number.", "2|two"),
    ("Which ocean lies between Africa and Australia?", "Indian"),
    ("Tell me the longest river in South America.", "Amazon"),
    ("Who came up with the theory of relativity?", "Einstein"),
    ("Which planet is the farthest from the Sun?", "Neptune"),
    ("How many players does a soccer team have on the field at once?", "11|eleven"),
    ("At what temperature in Fahrenheit does water boil at sea level?", "212"),
    ("Who was the first person to walk on the Moon?", "Armstrong"),
    ("Which metal is liquid at room temperature?", "mercury"),
    ("What's the largest organ of the human body?", "skin"),
    ("How many strings does a standard guitar have?", "6|six"),
    ("What currency do they use in India?", "rupee"),
    ("Which continent is Kenya in?", "Africa"),
    ("Which instrument has 88 keys?", "piano"),
    ("In what year did World War II end?", "1945"),
    ("What is the chemical symbol of potassium?", "K"),
    ("Which planet is known for its Great Red Spot?", "Jupiter"),
    ("How many degrees are there in a right angle?", "90|ninety"),
    ("Who wrote 'Pride and Prejudice'?", "Austen"),
    ("Which is the largest bird alive today?", "ostrich"),
    ("What's the main ingredient of guacamole?", "avocado"),
    ("Which language has the most native speakers in the world?", "Mandarin|Chinese"),
    ("How many hearts does an octopus have?", "3|three"),
]
WORDS = ["cookies", "stamps", "marbles", "pencils", "tickets", "coins", "cards", "stickers"]
NAMES = ["Mia", "Leo", "Sam", "Ava", "Noah", "Zoe", "Omar", "Lena", "Ivan", "Priya"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def item(index: int, kind: str, prompt: str, expected: str, checker: str) -> dict[str, str]:
    return {
        "id": f"phrasings-{kind}-{index:03d}",
        "prompt": prompt,
        "expected": expected,
        "checker": checker,
        "task": "unknown",
        "kind": kind,
    }


def facts() -> list[dict[str, str]]:
    found = []
    for index, (country, capital) in enumerate(CAPITALS):
        phrasing = CAPITAL_PHRASINGS[index % len(CAPITAL_PHRASINGS)]
        found.append(item(index, "fact", phrasing.format(country=country), capital, "contains"))
    for index, (question, answer) in enumerate(FACTS, len(found)):
        found.append(item(index, "fact", question, answer, "contains"))
    return found


def sums(rng: random.Random) -> list[dict[str, str]]:
    phrasings = [
        ("Add {a} and {b}.", lambda a, b: a + b),
        ("what's {a} plus {b}? number only", lambda a, b: a + b),
        ("Subtract {b} from {a}.", lambda a, b: a - b),
        ("How much is {a} minus {b}?", lambda a, b: a - b),
        ("Multiply {a} by {b} for me.", lambda a, b: a * b),
        ("{a} times {b} = ?", lambda a, b: a * b),
        ("If I split {p} into {b} equal parts, how big is each part?", None),
        ("Can you work out the sum of {a}, {b} and {c}?", None),
    ]
    found = []
    for index in range(50):
        template, compute = phrasings[index % len(phrasings)]
        a, b, c = rng.randint(12, 99), rng.randint(2, 60), rng.randint(3, 40)
        if "minus" in template or "Subtract" in template:
            a, b = max(a, b), min(a, b)
        if "times" in template or "Multiply" in template:
            b = rng.randint(2, 19)
        if "{p}" in template:
            b = rng.randint(2, 12)
            product = a * b
            prompt, answer = template.format(p=product, b=b), a
        elif "{c}" in template:
            prompt, answer = template.format(a=a, b=b, c=c), a + b + c
        else:
            assert compute is not None
            prompt, answer = template.format(a=a, b=b), compute(a, b)
        found.append(item(index, "math", prompt, str(answer), "numeric"))
    return found


def reasoning(rng: random.Random) -> list[dict[str, str]]:
    found = []
    for index in range(50):
        shape = index % 5
        if shape == 0:
            first, second, third = rng.sample(NAMES, 3)
            prompt = (
                f"{first} is older than {second}, and {second} is older than {third}. "
                "Who is the youngest?"
            )
            found.append(item(index, "reason", prompt, f"{third}!{first}|{second}", "contains"))
        elif shape == 1:
            start, ahead = rng.randrange(7), rng.randint(2, 12)
            day = DAYS[(start + ahead) % 7]
            others = "|".join(d for d in DAYS if d != day)
            prompt = (
                f"It's {DAYS[start]} today. What day of the week will it be {ahead} days from now?"
            )
            found.append(item(index, "reason", prompt, f"{day}!{others}", "contains"))
        elif shape == 2:
            made, sold = rng.randint(20, 90), rng.randint(3, 19)
            word = rng.choice(WORDS)
            prompt = (
                f"A shop had {made} {word} and sold {sold} of them. "
                f"How many {word} does it have left?"
            )
            found.append(item(index, "reason", prompt, str(made - sold), "numeric"))
        elif shape == 3:
            bags, each = rng.randint(3, 12), rng.randint(2, 15)
            word = rng.choice(WORDS)
            packer = rng.choice(NAMES)
            prompt = (
                f"{packer} packs {bags} bags with {each} {word} in every bag. "
                f"How many {word} is that altogether?"
            )
            found.append(item(index, "reason", prompt, str(bags * each), "numeric"))
        else:
            first, second = rng.sample(NAMES, 2)
            x, y = rng.sample(range(10, 90), 2)
            heavier = first if x > y else second
            lighter = second if heavier == first else first
            prompt = (
                f"{first}'s bag weighs {x} kg and {second}'s weighs {y} kg. Whose bag is heavier?"
            )
            found.append(item(index, "reason", prompt, f"{heavier}!{lighter}", "contains"))
    return found


def main() -> None:
    rng = random.Random(20261207)
    items = [*facts(), *sums(rng), *reasoning(rng)]
    OUT.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items))
    print(f"{len(items)} items -> {OUT}")


if __name__ == "__main__":
    main()

"""The ``general`` task set: mixed everyday questions a support desk also gets, with checkable
answers: short facts, arithmetic and short reasoning.

* Facts are well-known, uncontroversial (capitals, science, calendar, units); an answer is
  right when it names the expected word or one of its accepted forms (checker ``contains``:
  ``a|b`` accepted forms, then ``!x|y`` words it must not name, such as the other person of
  "who is older").
* Arithmetic and reasoning items are generated from a fixed seed, so their answers are computed,
  not written: sums, differences, products; counting, change, rates, comparisons, weekdays.

Every prompt asks for the answer alone, so answers are short and a small model's reply is not
buried in an explanation it runs out of tokens for.
"""

from __future__ import annotations

import random

from tierserve.evaluate.tasks import TaskItem

__all__ = ["general_items"]

ASK = "Answer with the answer only, no explanation.\nQuestion: {question}\nAnswer:"

# (question, accepted answers: the first is the reference, the rest its other forms)
FACTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("What is the capital of France?", ("Paris",)),
    ("What is the capital of Japan?", ("Tokyo",)),
    ("What is the capital of Italy?", ("Rome",)),
    ("What is the capital of Germany?", ("Berlin",)),
    ("What is the capital of Spain?", ("Madrid",)),
    ("What is the capital of Canada?", ("Ottawa",)),
    ("What is the capital of Australia?", ("Canberra",)),
    ("What is the capital of Egypt?", ("Cairo",)),
    ("What is the capital of Russia?", ("Moscow",)),
    ("What is the capital of China?", ("Beijing", "Peking")),
    ("What is the capital of the United Kingdom?", ("London",)),
    ("What is the capital of Portugal?", ("Lisbon",)),
    ("What is the capital of Greece?", ("Athens",)),
    ("What is the capital of Kenya?", ("Nairobi",)),
    ("What is the capital of Argentina?", ("Buenos Aires",)),
    ("What is the capital of Norway?", ("Oslo",)),
    ("What is the capital of Ireland?", ("Dublin",)),
    ("What is the capital of South Korea?", ("Seoul",)),
    ("What is the capital of Turkey?", ("Ankara",)),
    ("What is the capital of Brazil?", ("Brasilia", "Brasília")),
    ("Which planet is known as the Red Planet?", ("Mars",)),
    ("What is the largest planet in our solar system?", ("Jupiter",)),
    ("Which planet is closest to the Sun?", ("Mercury",)),
    ("What star is at the center of our solar system?", ("Sun", "the Sun")),
    ("What is the chemical symbol for gold?", ("Au",)),
    ("What is the chemical symbol for sodium?", ("Na",)),
    ("What is the chemical symbol for iron?", ("Fe",)),
    ("What gas do plants absorb from the air for photosynthesis?", ("carbon dioxide", "CO2")),
    ("What is the chemical formula of water?", ("H2O",)),
    ("What is the freezing point of water in degrees Celsius?", ("0", "zero")),
    ("What is the boiling point of water in degrees Celsius at sea level?", ("100",)),
    ("How many legs does a spider have?", ("8", "eight")),
    ("How many legs does an insect have?", ("6", "six")),
    ("How many continents are there?", ("7", "seven")),
    ("What is the largest ocean on Earth?", ("Pacific",)),
    ("What is the largest mammal?", ("blue whale",)),
    ("What is the tallest mountain on Earth?", ("Everest",)),
    ("What is the longest river in Africa?", ("Nile",)),
    ("Which organ pumps blood through the human body?", ("heart",)),
    ("How many days are there in a leap year?", ("366",)),
    ("How many days are there in a week?", ("7", "seven")),
    ("How many hours are there in a day?", ("24", "twenty-four")),
    ("How many minutes are there in an hour?", ("60", "sixty")),
    ("How many months are there in a year?", ("12", "twelve")),
    ("Which month comes after March?", ("April",)),
    ("Which month comes before December?", ("November",)),
    ("What is the first month of the year?", ("January",)),
    ("How many centimeters are in a meter?", ("100",)),
    ("How many grams are in a kilogram?", ("1000", "1,000")),
    ("How many sides does a triangle have?", ("3", "three")),
    ("How many sides does a hexagon have?", ("6", "six")),
    ("What color do you get by mixing blue and yellow?", ("green",)),
    ("What is the opposite of hot?", ("cold",)),
    ("What is the plural of mouse?", ("mice",)),
    ("Who wrote the play Romeo and Juliet?", ("Shakespeare",)),
    ("Who painted the Mona Lisa?", ("Leonardo da Vinci", "da Vinci", "Leonardo")),
    ("What is the currency of Japan?", ("yen",)),
    ("What is the currency of the United Kingdom?", ("pound", "pounds", "sterling")),
    ("What language is mainly spoken in Brazil?", ("Portuguese",)),
    ("What language is mainly spoken in Mexico?", ("Spanish",)),
    ("What is the square root of 81?", ("9", "nine")),
    ("What is the square root of 144?", ("12", "twelve")),
    ("What is the hardest natural substance?", ("diamond",)),
    ("What do bees make?", ("honey",)),
    ("What is the main language of Australia?", ("English",)),
    ("In which country are the pyramids of Giza?", ("Egypt",)),
    ("In which city is the Eiffel Tower?", ("Paris",)),
    ("What is the largest country by area?", ("Russia",)),
    ("What animal is known as the king of the jungle?", ("lion",)),
    ("What is frozen water called?", ("ice",)),
    ("What is the capital of Sweden?", ("Stockholm",)),
    ("What is the capital of Poland?", ("Warsaw",)),
    ("What is the capital of Austria?", ("Vienna",)),
    ("What is the capital of the Netherlands?", ("Amsterdam",)),
    ("What is the capital of Belgium?", ("Brussels",)),
    ("What is the capital of Switzerland?", ("Bern", "Berne")),
    ("What is the capital of Denmark?", ("Copenhagen",)),
    ("What is the capital of Finland?", ("Helsinki",)),
    ("What is the capital of India?", ("New Delhi", "Delhi")),
    ("What is the capital of Thailand?", ("Bangkok",)),
    ("What is the capital of Peru?", ("Lima",)),
    ("What is the capital of Chile?", ("Santiago",)),
    ("What is the capital of Cuba?", ("Havana",)),
    ("What is the capital of Hungary?", ("Budapest",)),
    ("What is the capital of Czechia?", ("Prague",)),
    ("Which planet has the most famous rings?", ("Saturn",)),
    ("What is the closest star to Earth?", ("Sun", "the Sun")),
    ("What is the natural satellite of Earth called?", ("Moon", "the Moon")),
    ("What is the chemical symbol for oxygen?", ("O",)),
    ("What is the chemical symbol for carbon?", ("C",)),
    ("What is the chemical symbol for silver?", ("Ag",)),
    ("What gas do humans need to breathe to live?", ("oxygen",)),
    ("How many legs does a dog have?", ("4", "four")),
    ("How many wheels does a bicycle have?", ("2", "two")),
    ("How many days are there in a normal year?", ("365",)),
    ("How many seconds are there in a minute?", ("60", "sixty")),
    ("How many sides does a square have?", ("4", "four")),
    ("How many sides does an octagon have?", ("8", "eight")),
    ("How many meters are in a kilometer?", ("1000", "1,000")),
    ("Which month comes after June?", ("July",)),
    ("Which month comes before March?", ("February",)),
    ("What is the last month of the year?", ("December",)),
    ("Which day comes after Friday?", ("Saturday",)),
    ("What color is the sky on a clear day?", ("blue",)),
    ("What color are ripe bananas?", ("yellow",)),
    ("What is the opposite of up?", ("down",)),
    ("What is the opposite of big?", ("small", "little")),
    ("What is the plural of child?", ("children",)),
    ("What is the plural of foot?", ("feet",)),
    ("Which animal gives us wool?", ("sheep",)),
    ("Which bird is a symbol of peace?", ("dove",)),
    ("What do caterpillars turn into?", ("butterfly", "butterflies", "moth")),
    ("What is the largest desert in Africa?", ("Sahara",)),
    ("What is the currency of the United States?", ("dollar",)),
    ("What is the currency of the European Union?", ("euro",)),
    ("What language is mainly spoken in France?", ("French",)),
    ("What language is mainly spoken in Germany?", ("German",)),
    ("Who wrote the novel 1984?", ("Orwell",)),
    ("What is the boiling point of water in degrees Fahrenheit?", ("212",)),
    ("What instrument has 88 keys?", ("piano",)),
)

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
NAMES = ("Anna", "Ben", "Carla", "Dev", "Ema", "Farid", "Gus", "Hana", "Ivo", "Jun")
THINGS = ("apples", "books", "pens", "stickers", "marbles", "cookies", "cards", "shells")


def _arithmetic(rng: random.Random) -> tuple[str, str]:
    kind = rng.choice(("add", "subtract", "multiply", "divide"))
    if kind == "add":
        a, b = rng.randint(12, 89), rng.randint(12, 89)
        return f"What is {a} + {b}?", str(a + b)
    if kind == "subtract":
        a, b = rng.randint(40, 99), rng.randint(11, 39)
        return f"What is {a} - {b}?", str(a - b)
    if kind == "multiply":
        a, b = rng.randint(3, 12), rng.randint(3, 12)
        return f"What is {a} times {b}?", str(a * b)
    b, quotient = rng.randint(2, 9), rng.randint(3, 12)
    return f"What is {b * quotient} divided by {b}?", str(quotient)


def _reasoning(rng: random.Random) -> tuple[str, str]:
    name, thing = rng.choice(NAMES), rng.choice(THINGS)
    kind = rng.choice(("more", "give", "groups", "change", "weekday", "larger", "older"))
    if kind == "more":
        a, b = rng.randint(3, 15), rng.randint(2, 9)
        return f"{name} has {a} {thing} and gets {b} more. How many {thing} does {name} have?", str(
            a + b
        )
    if kind == "give":
        a, b = rng.randint(10, 20), rng.randint(2, 9)
        return f"{name} had {a} {thing} and gave away {b}. How many are left?", str(a - b)
    if kind == "groups":
        a, b = rng.randint(2, 6), rng.randint(2, 8)
        return f"There are {a} boxes with {b} {thing} in each box. How many {thing} in total?", str(
            a * b
        )
    if kind == "change":
        price, paid = rng.randint(2, 9), rng.choice((10, 20))
        return (
            f"A toy costs {price} dollars. {name} pays with {paid} dollars. "
            "How many dollars of change?",
            str(paid - price),
        )
    if kind == "weekday":
        start, later = rng.randrange(7), rng.randint(1, 5)
        answer = WEEKDAYS[(start + later) % 7]
        others = "|".join(d for d in WEEKDAYS if d != answer)
        return (
            f"If today is {WEEKDAYS[start]}, what day of the week will it be in {later} days?",
            f"{answer}!{others}",
        )
    if kind == "larger":
        a, b = rng.sample(range(11, 99), 2)
        return f"Which number is larger, {a} or {b}?", str(max(a, b))
    a, b = rng.sample(range(6, 40), 2)
    other = rng.choice([n for n in NAMES if n != name])
    older, younger = (name, other) if a > b else (other, name)
    return (
        f"{name} is {a} years old and {other} is {b} years old. Who is older?",
        f"{older}!{younger}",
    )


BATCHES = ((7, 55, 55), (8, 55, 55))
"""(seed, arithmetic items, reasoning items): a later batch only adds items, so the ids of
outcomes already collected keep their questions."""


def general_items(batches: tuple[tuple[int, int, int], ...] = BATCHES) -> list[TaskItem]:
    """The labelled mixed set: every fact, then generated arithmetic and reasoning items."""
    items = [
        TaskItem(
            f"general-fact-{i:03d}",
            ASK.format(question=q),
            "|".join(a),
            "contains",
            "unknown",
            kind="fact",
        )
        for i, (q, a) in enumerate(FACTS)
    ]
    seen: set[str] = set()
    made = {"math": 0, "reason": 0}
    for seed, arithmetic, reasoning in batches:
        rng = random.Random(seed)
        for kind, count, make in (
            ("math", arithmetic, _arithmetic),
            ("reason", reasoning, _reasoning),
        ):
            wanted = made[kind] + count
            while made[kind] < wanted:
                question, answer = make(rng)
                if question in seen:
                    continue
                seen.add(question)
                checker = "numeric" if answer.isdigit() else "contains"
                item_id = f"general-{kind}-{made[kind]:03d}"
                prompt = ASK.format(question=question)
                items.append(TaskItem(item_id, prompt, answer, checker, "unknown", kind=kind))
                made[kind] += 1
    return items

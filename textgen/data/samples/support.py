"""The ``support`` sample: a customer-service question -> the answer.

Ten intents, several paraphrases per intent; the answer is a fixed template per intent filled with
the question's slot values (order numbers, emails, product and customer names, dates, amounts,
addresses, stores, days), copied verbatim. The target is a function of intent + slots
(`support_answer`).
"""

from __future__ import annotations

import datetime
import random
import re

from textgen.data.samples.words import (
    EMAIL_DOMAINS,
    EMAIL_HANDLES,
    FIRST_NAMES,
    GREETINGS,
    LAST_NAMES,
    MONTHS,
    OPENING_HOURS,
    ORDER_LETTERS,
    PRODUCTS,
    STORES,
    STREETS,
    SUPPORT_ANSWERS,
    SUPPORT_INTENTS,
    SUPPORT_QUESTIONS,
    TOWNS,
    WEEKDAYS,
)


def support_answer(intent: str, slots: dict[str, str]) -> str:
    """The ground-truth answer for an intent and its slot values (plus an optional "name")."""
    fill = dict(slots)
    if intent == "opening_hours":
        fill["hours"] = OPENING_HOURS[fill["day"]]
    body = SUPPORT_ANSWERS[intent].format(**fill)
    return f"Hi {slots['name']}, {_lower_first(body)}" if slots.get("name") else body


def _lower_first(sentence: str) -> str:
    """Lower-case the first letter unless the first word is "I" or "I'd"/"I've"..."""
    if re.match(r"I\b", sentence):
        return sentence
    return sentence[0].lower() + sentence[1:]


def _order_number(rng: random.Random) -> str:
    if rng.random() < 0.5:
        letter = rng.choice(ORDER_LETTERS)
        return f"#{letter}{rng.randrange(10000):04d}-{rng.randrange(100):02d}"
    digits = rng.randrange(6, 9)
    return str(rng.randrange(10 ** (digits - 1), 10 ** digits))


def _email(rng: random.Random) -> str:
    return (f"{rng.choice(EMAIL_HANDLES)}.{rng.choice(EMAIL_HANDLES)}{rng.randrange(100)}"
            f"@{rng.choice(EMAIL_DOMAINS)}")


def _slots(rng: random.Random) -> dict[str, str]:
    """A value for every slot any question can have; a template uses some of them."""
    day = datetime.date(2025, 1, 1) + datetime.timedelta(days=rng.randrange(365))
    slots = {
        "order": _order_number(rng),
        "amount": f"${rng.randrange(5, 500)}.{rng.randrange(100):02d}",
        "address": f"{rng.randrange(1, 200)} {rng.choice(STREETS)}, {rng.choice(TOWNS)}",
        "email": _email(rng),
        "store": rng.choice(STORES),
        "day": rng.choice(WEEKDAYS),
        "product": rng.choice(PRODUCTS),
        "date": f"{MONTHS[day.month - 1]} {day.day}",
    }
    slots["email2"] = _email(rng)
    while slots["email2"] == slots["email"]:
        slots["email2"] = _email(rng)
    slots["product2"] = rng.choice(PRODUCTS)
    while slots["product2"] == slots["product"]:
        slots["product2"] = rng.choice(PRODUCTS)
    return slots


def support_pair(rng: random.Random) -> tuple[str, str]:
    intent = rng.choice(SUPPORT_INTENTS)
    template = rng.choice(SUPPORT_QUESTIONS[intent])
    slots = _slots(rng)
    used = {key: value for key, value in slots.items() if "{" + key + "}" in template}
    question = template.format(**used)
    style = rng.random()
    name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
    if style < 0.2:
        question = f"Hi, this is {name}. {question}"
        used["name"] = name
    elif style < 0.35:
        question = f"{question} Thanks, {name}"
        used["name"] = name
    else:
        greeting = rng.choice(GREETINGS)
        if greeting:
            question = greeting + _lower_first(question)
    return question, support_answer(intent, used)

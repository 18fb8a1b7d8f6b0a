"""The ``dates`` sample: a date written in one of many forms -> the ISO date ("2021-03-03").

Dates lie in 1950-01-01 .. 2049-12-31. Numeric forms have one fixed reading each, told apart by
separator: "2021/03/03" is year/month/day, "03/04/2021" is US month/day/year, "03.04.2021" is
European day.month.year. The only two-digit-year form is "3-Mar-21" (day-month-year), read with a
pivot of 50: 00-49 -> 2000-2049, 50-99 -> 1950-1999. A weekday, when written, is always correct.
About one source in seven is in upper or lower case. `date_to_iso` parses every form.
"""

from __future__ import annotations

import datetime
import random
import re
from typing import Callable

from textgen.data.samples.words import MONTHS, ORDINAL_TENS, ORDINAL_UNITS, TENS, WEEKDAYS

FIRST_DATE = datetime.date(1950, 1, 1)
LAST_DATE = datetime.date(2049, 12, 31)
TWO_DIGIT_YEAR_PIVOT = 50  # yy < 50 -> 20yy, yy >= 50 -> 19yy


def ordinal_suffix(day: int) -> str:
    """"st", "nd", "rd" or "th" for 1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st..."""
    if 10 <= day % 100 <= 20:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")


def ordinal_words(day: int) -> str:
    """1 -> "first", 21 -> "twenty-first", 30 -> "thirtieth" (1 .. 31)."""
    if not 1 <= day <= 31:
        raise ValueError(f"day must be 1..31, got {day}")
    if day < 20:
        return ORDINAL_UNITS[day]
    if day % 10 == 0:
        return ORDINAL_TENS[day]
    return f"{TENS[day // 10]}-{ORDINAL_UNITS[day % 10]}"


def _month_name(date: datetime.date) -> str:
    return MONTHS[date.month - 1]


def _month_abbreviation(date: datetime.date) -> str:
    return MONTHS[date.month - 1][:3]


def _weekday_name(date: datetime.date) -> str:
    return WEEKDAYS[date.weekday()]


# (form, weight). Each form has one stated reading; see the module docstring.
_DATE_FORMS: tuple[tuple[Callable[[datetime.date], str], int], ...] = (
    # March 3, 2021
    (lambda date: f"{_month_name(date)} {date.day}, {date.year}", 3),
    # 3 March 2021
    (lambda date: f"{date.day} {_month_name(date)} {date.year}", 3),
    # Mar 3 2021
    (lambda date: f"{_month_abbreviation(date)} {date.day} {date.year}", 2),
    # Mar 3, 2021
    (lambda date: f"{_month_abbreviation(date)} {date.day}, {date.year}", 2),
    # 3 Mar 2021
    (lambda date: f"{date.day} {_month_abbreviation(date)} {date.year}", 2),
    # Wednesday, March 3, 2021
    (lambda date: f"{_weekday_name(date)}, {_month_name(date)} {date.day}, {date.year}", 2),
    # Wed, 3 Mar 2021
    (lambda date: f"{_weekday_name(date)[:3]}, {date.day} {_month_abbreviation(date)} {date.year}", 2),
    # Wednesday 3 March 2021
    (lambda date: f"{_weekday_name(date)} {date.day} {_month_name(date)} {date.year}", 1),
    # 2021/03/03
    (lambda date: f"{date.year}/{date.month:02d}/{date.day:02d}", 2),
    # 3rd of March 2021
    (lambda date: f"{date.day}{ordinal_suffix(date.day)} of {_month_name(date)} {date.year}", 2),
    # the third of March, 2021
    (lambda date: f"the {ordinal_words(date.day)} of {_month_name(date)}, {date.year}", 2),
    # March 3rd, 2021
    (lambda date: f"{_month_name(date)} {date.day}{ordinal_suffix(date.day)}, {date.year}", 2),
    # 3-Mar-21
    (lambda date: f"{date.day}-{_month_abbreviation(date)}-{date.year % 100:02d}", 2),
    # 03/03/2021 (US month/day/year)
    (lambda date: f"{date.month:02d}/{date.day:02d}/{date.year}", 2),
    # 03.03.2021 (European day.month.year)
    (lambda date: f"{date.day:02d}.{date.month:02d}.{date.year}", 2),
)
_DATE_FORM_TABLE = tuple(form for form, weight in _DATE_FORMS for _ in range(weight))


def date_pair(rng: random.Random) -> tuple[str, str]:
    span = LAST_DATE.toordinal() - FIRST_DATE.toordinal() + 1
    day = datetime.date.fromordinal(FIRST_DATE.toordinal() + rng.randrange(span))
    source = rng.choice(_DATE_FORM_TABLE)(day)
    casing = rng.random()
    if casing < 0.09:
        source = source.upper()
    elif casing < 0.14:
        source = source.lower()
    return source, day.isoformat()


_MONTH_LOOKUP = {month.lower(): index + 1 for index, month in enumerate(MONTHS)}
_MONTH_LOOKUP.update({month[:3].lower(): index + 1 for index, month in enumerate(MONTHS)})
_WEEKDAY_LOOKUP = {weekday.lower(): index for index, weekday in enumerate(WEEKDAYS)}
_WEEKDAY_LOOKUP.update({weekday[:3].lower(): index for index, weekday in enumerate(WEEKDAYS)})
_ORDINAL_WORD_LOOKUP = {ordinal_words(n): n for n in range(1, 32)}
_ORDINAL_WORDS_PATTERN = "|".join(sorted(_ORDINAL_WORD_LOOKUP, key=len, reverse=True))
_WEEKDAY_PATTERN = "|".join(sorted(_WEEKDAY_LOOKUP, key=len, reverse=True))
_DATE_PATTERNS = (
    re.compile(r"(?P<mon>[a-z]+) (?P<day>\d{1,2})(?:st|nd|rd|th)?,? (?P<year>\d{4})"),
    re.compile(rf"(?:the )?(?:(?P<day>\d{{1,2}})(?:st|nd|rd|th)?|(?P<dayword>{_ORDINAL_WORDS_PATTERN}))"
               r"(?: of)? (?P<mon>[a-z]+),? (?P<year>\d{4})"),
    re.compile(r"(?P<year>\d{4})/(?P<month>\d{1,2})/(?P<day>\d{1,2})"),
    re.compile(r"(?P<month>\d{1,2})/(?P<day>\d{1,2})/(?P<year>\d{4})"),
    re.compile(r"(?P<day>\d{1,2})\.(?P<month>\d{1,2})\.(?P<year>\d{4})"),
    re.compile(r"(?P<day>\d{1,2})-(?P<mon>[a-z]+)-(?P<yy>\d{2})"),
    re.compile(r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})"),
)
_WEEKDAY_PREFIX = re.compile(rf"(?P<wd>{_WEEKDAY_PATTERN}),? ")


def two_digit_year(yy: int) -> int:
    """The four-digit year for a two-digit one, by the pivot: 21 -> 2021, 50 -> 1950."""
    return 2000 + yy if yy < TWO_DIGIT_YEAR_PIVOT else 1900 + yy


def date_to_iso(text: str) -> str:
    """Read a date in any form the ``dates`` sample writes; return "YYYY-MM-DD".

    Raises ValueError for text that is not such a date, an impossible date, or a wrong weekday.
    """
    rest = " ".join(text.strip().lower().split())
    weekday = None
    match = _WEEKDAY_PREFIX.match(rest)
    if match:
        weekday = _WEEKDAY_LOOKUP[match["wd"]]
        rest = rest[match.end():]
    for pattern in _DATE_PATTERNS:
        match = pattern.fullmatch(rest)
        if not match:
            continue
        groups = match.groupdict()
        if groups.get("mon") is not None:
            if groups["mon"] not in _MONTH_LOOKUP:
                continue
            month = _MONTH_LOOKUP[groups["mon"]]
        else:
            month = int(groups["month"])
        day = _ORDINAL_WORD_LOOKUP[groups["dayword"]] if groups.get("dayword") else int(groups["day"])
        year = two_digit_year(int(groups["yy"])) if groups.get("yy") is not None else int(groups["year"])
        result = datetime.date(year, month, day)  # ValueError if impossible
        if weekday is not None and result.weekday() != weekday:
            raise ValueError(f"{text!r}: {result.isoformat()} is a {WEEKDAYS[result.weekday()]}")
        return result.isoformat()
    raise ValueError(f"not a date in a known form: {text!r}")

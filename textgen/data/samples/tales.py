"""The ``tales`` sample: plain text for language models.

Short fables from a small grammar, each a title, three paragraphs and a moral. Paragraphs are
separated by one blank line, stories by two. Size = number of stories; the default (400) gives
about 300 KB. A story first draws what it is about (`_Story`: a plot, a hero, a friend, an item, a
place, a time of day and a season); the title, the opening paragraph, the plot's two paragraphs and
the moral are then written from it, in that order.
"""

from __future__ import annotations

import dataclasses
import random

from textgen.data.samples.words import (
    ACTIVITIES,
    ADJECTIVES,
    ANIMALS,
    CHARACTER_NAMES,
    CONTESTS,
    FRIEND_TRAITS,
    HERO_ADJECTIVES,
    HOARDED_FOODS,
    MORALS,
    OBJECTS,
    OPENINGS,
    PLACES,
    SEARCH_PLACES,
    SEASONS,
    TIMES_OF_DAY,
    WEATHER,
    WINTER_WEATHER,
)


@dataclasses.dataclass(frozen=True)
class _Character:
    name: str
    animal: str
    adjective: str
    he: str  # "he" or "she"
    him: str  # "him" or "her"
    his: str  # "his" or "her"


@dataclasses.dataclass(frozen=True)
class _Story:
    plot: str  # a key of MORALS
    hero: _Character
    friend: _Character
    item: str
    place: str
    time: str
    season: str


def _capitalize(text: str) -> str:
    return text[0].upper() + text[1:]


def _title_case(text: str) -> str:
    return " ".join(word if word in ("of", "the", "and") else _capitalize(word) for word in text.split())


def _with_article(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _character(rng: random.Random, adjectives: tuple[str, ...], avoid: str = "") -> _Character:
    animal = rng.choice(ANIMALS)
    while animal == avoid:
        animal = rng.choice(ANIMALS)
    he = rng.random() < 0.5
    name = rng.choice(CHARACTER_NAMES)
    adjective = rng.choice(adjectives)
    return _Character(name, animal, adjective, he="he" if he else "she", him="him" if he else "her",
                      his="his" if he else "her")


def _story(rng: random.Random) -> _Story:
    plot = rng.choice(tuple(MORALS))
    hero = _character(rng, HERO_ADJECTIVES[plot])
    friend = _character(rng, ADJECTIVES, avoid=hero.animal)
    while friend.name == hero.name:
        friend = dataclasses.replace(friend, name=rng.choice(CHARACTER_NAMES))
    item = rng.choice(OBJECTS)
    place = rng.choice(PLACES)
    time = rng.choice(TIMES_OF_DAY)
    season = rng.choice(SEASONS)
    return _Story(plot, hero, friend, item, place, time, season)


def _title(rng: random.Random, story: _Story) -> str:
    hero, friend = story.hero, story.friend
    titles = {
        "lost": (f"The {_capitalize(hero.animal)} and the {_title_case(story.item)}",
                 f"How {hero.name} Lost the {_title_case(story.item)}"),
        "storm": (f"The {_capitalize(hero.animal)} and the Storm",
                  f"{hero.name} and the {_capitalize(story.season)} Storm"),
        "boast": (f"The {_capitalize(hero.animal)} and the {_capitalize(friend.animal)}",
                  f"The {_capitalize(hero.adjective)} {_capitalize(hero.animal)}"),
        "greed": (f"The {_capitalize(hero.adjective)} {_capitalize(hero.animal)}",
                  f"{hero.name} and the Harvest"),
    }
    return rng.choice(titles[story.plot])


def _opening_paragraph(rng: random.Random, story: _Story) -> str:
    hero, friend = story.hero, story.friend
    opening = rng.choice(OPENINGS)
    introduction = (f"{opening}, {story.place}, there lived {_with_article(hero.adjective)} "
                    f"{hero.animal} named {hero.name}.")
    days = f"{_capitalize(hero.he)} spent {hero.his} days {rng.choice(ACTIVITIES)}."
    friendship = (f"{_capitalize(hero.his)} friend was {_with_article(friend.adjective)} "
                  f"{friend.animal} called {friend.name}, who {rng.choice(FRIEND_TRAITS)}.")
    return " ".join((introduction, days, friendship))


def _lost_item_plot(rng: random.Random, story: _Story) -> tuple[list[str], list[str]]:
    hero, friend, item = story.hero.name, story.friend.name, story.item
    his, he = story.hero.his, story.hero.he
    first = rng.choice(SEARCH_PLACES)
    second = rng.choice(tuple(place for place in SEARCH_PLACES if place != first))
    trouble = [f"One {story.time}, {hero} lost {his} {item}.",
               f"{_capitalize(he)} looked {first} and {second}, but it was nowhere to be found.",
               f"\"What will I do without my {item}?\" {he} cried."]
    ending = [f"{friend} heard the crying and came to help.",
              f"\"Let us think before we run about,\" said {friend}. \"Where did you last have it?\"",
              f"Together they walked back along the path, slowly and carefully, and there, "
              f"{rng.choice(SEARCH_PLACES)}, lay the {item}.",
              f"{hero} thanked {friend} with all {his} heart."]
    return trouble, ending


def _storm_plot(rng: random.Random, story: _Story) -> tuple[list[str], list[str]]:
    hero, friend, his = story.hero.name, story.friend.name, story.hero.his
    weather = WINTER_WEATHER if story.season == "winter" else WEATHER
    trouble = [f"One {story.season} {story.time}, a great storm came.",
               f"{rng.choice(weather)}.",
               f"{hero} had not mended {his} roof, and soon water was dripping onto {his} bed."]
    ending = [f"Shivering, {hero} knocked at the door of {friend}.",
              f"{friend} had prepared weeks before, and {story.friend.his} house was warm and dry.",
              f"\"Come in,\" said {friend}, \"there is room enough for two.\"",
              f"The next morning they mended the roof together, and {hero} promised to be ready "
              f"for the next storm."]
    return trouble, ending


def _boast_plot(rng: random.Random, story: _Story) -> tuple[list[str], list[str]]:
    hero, friend = story.hero.name, story.friend.name
    contest = rng.choice(CONTESTS)
    trouble = [f"{hero} liked to boast that no one in the land was as quick or as strong as "
               f"{story.hero.him}.",
               f"One {story.time}, {friend} grew tired of the boasting and said, \"Let us see "
               f"{contest}.\"",
               f"{hero} laughed, for {story.hero.he} was sure of winning."]
    ending = [f"The contest began. {hero} rushed ahead, then stopped to rest and to boast some more.",
              f"{friend} kept going, steady and quiet, step after step.",
              f"When {hero} looked up, {friend} had already won.",
              f"From that day on, {hero} spoke a little less and listened a little more."]
    return trouble, ending


def _greed_plot(rng: random.Random, story: _Story) -> tuple[list[str], list[str]]:
    hero, friend = story.hero.name, story.friend.name
    he, him, his = story.hero.he, story.hero.him, story.hero.his
    trouble = [f"In the {story.season}, the animals gathered food together and agreed to share it.",
               f"But {hero} wanted more than {his} share.",
               f"One {story.time}, while the others slept, {he} filled a sack with "
               f"{rng.choice(HOARDED_FOODS)} and ran off."]
    ending = [f"The sack was so heavy that {hero} could not climb the hill, and {he} fell "
              f"into the stream.",
              "All the food was washed away.",
              f"{friend} pulled {him} out of the water and, though {hero} had taken so much, "
              f"shared {story.friend.his} own supper with {him}.",
              f"{hero} was ashamed, and never took more than {his} share again."]
    return trouble, ending


# The two middle paragraphs of each plot (the trouble, then how it ends), as lists of sentences.
_PLOTS = {"lost": _lost_item_plot, "storm": _storm_plot, "boast": _boast_plot, "greed": _greed_plot}


def _moral_line(rng: random.Random, story: _Story) -> str:
    moral = rng.choice(MORALS[story.plot])
    return rng.choice((f"The moral of the story: {moral}.",
                       f"And so {story.hero.name} learned that {moral}.",
                       f"Remember: {moral}."))


def _tale(rng: random.Random) -> str:
    story = _story(rng)
    title = _title(rng, story)
    opening = _opening_paragraph(rng, story)
    trouble, ending = _PLOTS[story.plot](rng, story)
    moral = _moral_line(rng, story)
    return "\n\n".join((title, opening, " ".join(trouble), " ".join(ending), moral))


def generate_tales(size: int, seed: int) -> str:
    """`size` stories from `random.Random(seed)`, separated by two blank lines."""
    rng = random.Random(seed)
    return "\n\n\n".join(_tale(rng) for _ in range(size)) + "\n"

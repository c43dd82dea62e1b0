"""The words the grammar draws from: numbers, colours and coloured things, days, months,
things with a property, words to spell or repeat.

All lower case, one space between words, no punctuation: the form the synthesisers read,
the alignments store and the recogniser's dictionary spells. US spellings ("color"), so that
every word is in CMUdict except those in `PRONUNCIATIONS`.
"""

from __future__ import annotations

_ONES = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
)
_TENS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")


def number_words(n: int) -> str:
    """0..99 as words: 42 -> "forty two"."""
    if not 0 <= n < 100:
        raise ValueError(f"expected a number in 0..99, got {n}")
    if n < 20:
        return _ONES[n]
    tens, ones = divmod(n, 10)
    return _TENS[tens - 2] + ("" if ones == 0 else " " + _ONES[ones])


NUMBERS = tuple(number_words(n) for n in range(100))
HOURS = tuple(number_words(n) for n in range(1, 13))  # clock hours one..twelve

# thing -> its color (a definite answer for "what color is the sky").
COLORED = {
    "sky": "blue", "grass": "green", "snow": "white", "coal": "black", "banana": "yellow",
    "tomato": "red", "carrot": "orange", "lemon": "yellow", "strawberry": "red", "leaf": "green",
    "frog": "green", "cloud": "white", "milk": "white", "chocolate": "brown", "pumpkin": "orange",
    "crow": "black", "flamingo": "pink", "sea": "blue", "cherry": "red", "lime": "green",
    "egg yolk": "yellow", "night sky": "black", "blood": "red", "salt": "white", "sun": "yellow",
    "plum": "purple", "violet": "purple", "elephant": "gray", "mouse": "gray", "bear": "brown",
}  # fmt: skip
COLORS = tuple(sorted(set(COLORED.values()) | {"silver", "gold"}))

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
ORDINALS = (
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
    "tenth",
    "eleventh",
    "twelfth",
)

# thing (with its article) -> its properties; each property's opposite is in OPPOSITE.
PROPERTIES = {
    "fire": ("hot",), "ice": ("cold",), "snow": ("cold", "white"), "the sun": ("hot", "big"),
    "an elephant": ("big", "heavy"), "a mouse": ("small",), "a whale": ("big", "heavy"),
    "an ant": ("small",), "a pillow": ("soft",), "a rock": ("hard", "heavy"),
    "a feather": ("soft",), "water": ("wet",), "sand": ("dry",), "honey": ("sweet",),
    "sugar": ("sweet",), "a lemon": ("sour",), "a turtle": ("slow",), "a cheetah": ("fast",),
    "a snail": ("slow", "small"), "a rabbit": ("fast", "soft"), "a mountain": ("big", "tall"),
    "a giraffe": ("tall",), "the desert": ("dry", "hot"), "the night": ("dark",),
    "the day": ("light",), "a drum": ("loud",), "a whisper": ("quiet",), "coffee": ("hot",),
}  # fmt: skip
# property -> the property that makes "is X <property>" false (asked for the "no" answers).
OPPOSITE = {
    "hot": "cold", "cold": "hot", "big": "small", "small": "big", "heavy": "light",
    "light": "dark", "soft": "hard", "hard": "soft", "wet": "dry", "dry": "wet", "sweet": "sour",
    "sour": "sweet", "slow": "fast", "fast": "slow", "tall": "short", "dark": "light",
    "loud": "quiet", "quiet": "loud", "white": "black",
}  # fmt: skip
ADJECTIVES = tuple(sorted(set(OPPOSITE) | set(OPPOSITE.values())))

# Short words to spell letter by letter ("cat" -> "c a t") or to repeat ("say river").
SPELL_WORDS = (
    "cat",
    "dog",
    "sun",
    "red",
    "book",
    "tree",
    "fish",
    "bird",
    "milk",
    "rain",
    "hat",
    "cup",
    "box",
    "pen",
    "bus",
    "car",
    "map",
    "egg",
    "bed",
    "sky",
    "moon",
    "star",
    "cake",
    "ball",
    "door",
    "lamp",
    "frog",
    "ship",
    "king",
    "hand",
)
SAY_WORDS = (
    *SPELL_WORDS,
    "banana",
    "river",
    "window",
    "garden",
    "music",
    "yellow",
    "pencil",
    "rocket",
    "dragon",
    "castle",
    "summer",
    "winter",
    "orange",
    "purple",
    "tomato",
    "monkey",
    "island",
    "forest",
    "doctor",
    "planet",
    "basket",
    "button",
    "candle",
    "kitten",
)

BACKCHANNELS = ("yeah", "okay", "right", "i see", "sure", "alright", "uh huh")

# Words outside CMUdict, with ARPAbet pronunciations for the recogniser's dictionary.
PRONUNCIATIONS = {"moshi": "M OW SH IY"}

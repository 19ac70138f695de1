"""Human noise for generated text: typos, chat shorthand, casing and punctuation.

Real users type fast: they drop and swap letters, write "wat" and "pls", skip the question mark and the capital
letter. Every function takes the caller's ``random.Random`` so that the noise is part of the seeded stream.
"""

from __future__ import annotations

import random
import re

# Neighbouring keys on a QWERTY keyboard, for "fat finger" substitutions.
_NEIGHBOURS = {
    "a": "qsz", "b": "vn", "c": "xv", "d": "sf", "e": "wr", "f": "dg", "g": "fh", "h": "gj", "i": "uo", "j": "hk",
    "k": "jl", "l": "k", "m": "n", "n": "bm", "o": "ip", "p": "o", "q": "w", "r": "et", "s": "ad", "t": "ry",
    "u": "yi", "v": "cb", "w": "qe", "x": "zc", "y": "tu", "z": "x",
}

# Chat shorthand: whole-word replacements, applied to lower-cased text.
_SHORTHAND = {
    "what": ("wat", "wht", "whats"),
    "what's": ("whats", "wats", "what"),
    "please": ("pls", "plz", "pls"),
    "you": ("u",),
    "your": ("ur",),
    "are": ("r",),
    "thanks": ("thx", "ty", "thanx"),
    "tomorrow": ("tmrw", "tmr"),
    "about": ("abt", "bout"),
    "because": ("bc", "cos"),
    "appointment": ("appt",),
    "password": ("pw", "pwd"),
    "number": ("no.", "num", "nr"),
    "address": ("addr",),
    "with": ("w/",),
    "information": ("info",),
    "message": ("msg",),
    "birthday": ("bday", "b-day"),
    "before": ("b4",),
    "minutes": ("mins",),
    "and": ("&", "n"),
    "don't": ("dont",),
    "i'm": ("im",),
    "it's": ("its",),
    "where's": ("wheres",),
    "when's": ("whens",),
    "how's": ("hows",),
    "doesn't": ("doesnt",),
    "people": ("ppl",),
    "something": ("smth", "sth"),
    "really": ("rly",),
}

_WORD = re.compile(r"[A-Za-z']+")


def typo(rng: random.Random, text: str, count: int = 1) -> str:
    """Apply ``count`` keyboard slips (drop, swap, double or neighbour key) to words of four letters or more."""
    for _ in range(count):
        words = [m for m in _WORD.finditer(text) if len(m.group()) >= 4 and "'" not in m.group()]
        if not words:
            return text
        m = rng.choice(words)
        w = m.group()
        i = rng.randrange(1, len(w) - 1)
        op = rng.random()
        if op < 0.35:
            w2 = w[:i] + w[i + 1:]
        elif op < 0.7:
            w2 = w[:i] + w[i + 1] + w[i] + w[i + 2:]
        elif op < 0.82:
            w2 = w[:i] + w[i] + w[i:]
        else:
            c = w[i].lower()
            w2 = w[:i] + rng.choice(_NEIGHBOURS.get(c, c)) + w[i + 1:]
        text = text[: m.start()] + w2 + text[m.end():]
    return text


def shorthand(rng: random.Random, text: str, rate: float = 0.6) -> str:
    """Replace common words by chat shorthand ("pls", "u", "appt"), each with probability ``rate``."""

    def swap(m: re.Match[str]) -> str:
        w = m.group()
        alts = _SHORTHAND.get(w.lower())
        if alts is None or rng.random() > rate:
            return w
        return rng.choice(alts)

    return _WORD.sub(swap, text)


def capfirst(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def humanize(
    rng: random.Random,
    text: str,
    *,
    question: bool = True,
    typo_rate: float = 0.12,
    lower_rate: float = 0.45,
    shorthand_rate: float = 0.1,
) -> str:
    """Turn a clean sentence into something a person would type into a chat box.

    Lower-cases some messages entirely, drops or doubles the question mark, adds shorthand and typos. The
    rates are per message; a message can get several kinds of noise at once.
    """
    out = text.strip()
    if rng.random() < shorthand_rate:
        out = shorthand(rng, out.lower())
    if rng.random() < lower_rate:
        out = out.lower()
    else:
        out = capfirst(out)
    if rng.random() < typo_rate:
        out = typo(rng, out, 1 if rng.random() < 0.8 else 2)
    if question and not out.endswith(("?", ".", "!")):
        r = rng.random()
        if r < 0.55:
            out += "?"
        elif r < 0.6:
            out += "??"
        elif r < 0.63:
            out += " ?"
    return out


def maybe(rng: random.Random, rate: float, text: str, other: str = "") -> str:
    """``text`` with probability ``rate``, else ``other``."""
    return text if rng.random() < rate else other

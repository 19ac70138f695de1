"""Slot values for facts (money, dates, phone numbers, addresses, codes) and the ways people write them.

A value is drawn once (``money``, ``day``...) and rendered many times: ``render`` picks a random written form
("£1,299", "1299 GBP", "12/03/2024", "March 12th") for a stored fact, ``canonical`` gives the one form the
assistant uses in its replies. Phone numbers come from Ofcom's ranges reserved for drama, so none is real.
"""

from __future__ import annotations

import random
import re
import string
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from dexter_brain.sample import lexicon as lx

BASE_DATE = date(2023, 1, 2)
"""Day zero of the sample user's history; every timestamp is this plus a seeded offset."""
SPAN_DAYS = 600
"""Length of the history (about 20 months)."""
BASE_TIME = datetime(2023, 1, 2, 0, 0, 0)


@dataclass(frozen=True)
class Money:
    amount: float
    currency: str = "GBP"

    @property
    def sort_key(self) -> float:
        return self.amount


_SYMBOL = {"GBP": "£", "EUR": "€", "USD": "$"}


def money(r: random.Random, lo: float, hi: float, currency: str = "GBP", step: float = 1.0) -> Money:
    """A price between ``lo`` and ``hi``, rounded to ``step``; ``step < 1`` gives pence."""
    amount = round(round(r.uniform(lo, hi) / step) * step, 2)
    if step >= 1 and r.random() < 0.3 and amount > 20:
        amount = amount - 0.01 if r.random() < 0.5 else amount  # shop prices end in .99
    return Money(round(amount, 2), currency)


def _money_text(m: Money, style: int) -> str:
    sym = _SYMBOL[m.currency]
    whole = m.amount == int(m.amount)
    num = f"{m.amount:,.0f}" if whole else f"{m.amount:,.2f}"
    if style == 0:
        return f"{sym}{num}"
    if style == 1:
        return f"{sym}{num.replace(',', '')}"
    if style == 2:
        return f"{num.replace(',', '')} {m.currency}"
    if style == 3:
        return f"{sym}{m.amount:,.2f}"
    return f"{num} quid" if m.currency == "GBP" and whole else f"{sym}{num}"


def day(r: random.Random, lo: int = 0, hi: int = SPAN_DAYS) -> date:
    """A date ``lo``..``hi`` days after ``BASE_DATE``."""
    return BASE_DATE + timedelta(days=r.randint(lo, hi))


def birth_date(r: random.Random, min_age: int, max_age: int) -> date:
    return date(2024 - r.randint(min_age, max_age), r.randint(1, 12), r.randint(1, 28))


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _date_text(d: date, style: int) -> str:
    month = lx.MONTHS[d.month - 1]
    return [
        f"{d.day} {month} {d.year}",
        f"{d.day} {month[:3]} {d.year}",
        f"{d.day:02d}/{d.month:02d}/{d.year}",
        d.isoformat(),
        f"{month} {_ordinal(d.day)}",
        f"{_ordinal(d.day)} {month}",
        f"{d.day} {month}",
        f"{lx.WEEKDAYS[d.weekday()][:3]} {d.day} {month[:3]}",
        f"{d.day}/{d.month}/{str(d.year)[2:]}",
    ][style]


def render(r: random.Random, value: object) -> str:
    """One of the ways a person writes ``value`` in a note."""
    if isinstance(value, Money):
        return _money_text(value, r.choice((0, 0, 0, 1, 1, 2, 3, 4)))
    if isinstance(value, date):
        return _date_text(value, r.choice((0, 0, 1, 1, 2, 2, 3, 4, 5, 6, 7, 8)))
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def canonical(value: object) -> str:
    """The form the assistant uses when it answers."""
    if isinstance(value, Money):
        return _money_text(value, 0)
    if isinstance(value, date):
        return _date_text(value, 0)
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value[:-1]) + (" and " if len(value) > 1 else "") + str(value[-1])
    return str(value)


def sort_key(value: object) -> float:
    if isinstance(value, Money):
        return value.amount
    if isinstance(value, date):
        return float(value.toordinal())
    if isinstance(value, (int, float)):
        return float(value)
    raise TypeError(f"cannot compare {value!r}")


def phone(r: random.Random) -> str:
    """A UK mobile number from the range Ofcom reserves for fiction (07700 900000-900999)."""
    n = f"07700 900{r.randint(0, 999):03d}"
    return n if r.random() < 0.8 else "+44 " + n[1:]


def landline(r: random.Random) -> str:
    area, prefix = r.choice([("0113", "496 0"), ("020", "7946 0"), ("0117", "496 0"), ("0161", "496 0")])
    return f"{area} {prefix}{r.randint(0, 999):03d}"


def postcode(r: random.Random, area: str) -> str:
    letters = "ABDEFGHJLNPQRSTUWXYZ"
    return f"{area}{r.randint(1, 19)} {r.randint(1, 9)}{r.choice(letters)}{r.choice(letters)}"


def address(r: random.Random, city: tuple[str, str] | None = None) -> str:
    town, area = city or r.choice(lx.CITIES)
    flat = f"Flat {r.randint(1, 12)}, " if r.random() < 0.2 else ""
    return f"{flat}{r.randint(1, 140)} {r.choice(lx.STREETS)}, {town} {postcode(r, area)}"


def email(r: random.Random, first: str, last: str = "", domain: str | None = None) -> str:
    first, last = _ascii(first), _ascii(last)
    domain = domain or r.choice(["gmail.com", "outlook.com", "icloud.com", "hotmail.co.uk", "yahoo.co.uk"])
    local = r.choice([f"{first}.{last}", f"{first}{last}", f"{first[0]}{last}", f"{first}{r.randint(70, 99)}"])
    return f"{local.strip('.')}@{domain}".lower()


def _ascii(text: str) -> str:
    table = str.maketrans("üéáíóñç", "ueaionc")
    return "".join(c for c in text.translate(table) if c.isalnum())


def plate(r: random.Random) -> str:
    up = string.ascii_uppercase
    return f"{r.choice('LYSMNB')}{r.choice(up)}{r.choice(['17', '19', '21', '67', '69', '71'])} " + "".join(
        r.choice(up) for _ in range(3)
    )


def serial(r: random.Random, n: int = 12) -> str:
    return "".join(r.choice(string.ascii_uppercase + string.digits) for _ in range(n))


def code(r: random.Random, n: int = 6, alphabet: str = string.ascii_uppercase + string.digits) -> str:
    return "".join(r.choice(alphabet) for _ in range(n))


def digits(r: random.Random, n: int) -> str:
    return "".join(r.choice(string.digits) for _ in range(n))


def ip(r: random.Random) -> str:
    return f"192.168.{r.choice([0, 1, 1, 68])}.{r.randint(2, 250)}"


def clock(r: random.Random) -> str:
    h, m = r.randint(7, 19), r.choice([0, 0, 15, 30, 30, 45, 10, 50])
    if r.random() < 0.5:
        return f"{h:02d}:{m:02d}"
    suffix = "am" if h < 12 else "pm"
    h12 = h if h <= 12 else h - 12
    return f"{h12}{suffix}" if m == 0 else f"{h12}:{m:02d}{suffix}"


def password_hint(r: random.Random, e_name: str = "") -> str:
    return r.choice([
        "the usual one with a ! at the end",
        f"in 1Password under '{e_name}'" if e_name else "in 1Password",
        "Biscuit's name + the year we got him",
        "old postcode backwards",
        "the long one from the notebook in the desk drawer",
        "same as the Barclays one but with a 2",
        "Mum's maiden name + 77",
        "written on the card in the kitchen drawer",
        "passphrase: three random words, check Bitwarden",
    ])


def wifi_password(r: random.Random) -> str:
    words = ["Purple", "Otter", "Maple", "Rocket", "Lemon", "Tiger", "Cactus", "Harbour", "Falcon", "Cobalt"]
    return f"{r.choice(words)}{r.choice(words)}{r.randint(10, 99)}{r.choice(['', '!', '#'])}"


def pick(r: random.Random, items: list, k: int = 1):
    return r.choice(items) if k == 1 else r.sample(items, k)


def person_name(r: random.Random, gender: str | None = None) -> tuple[str, str]:
    g = gender or r.choice("fm")
    return r.choice(lx.FIRST_NAMES_F if g == "f" else lx.FIRST_NAMES_M), r.choice(lx.SURNAMES)


def month_year(d: date) -> str:
    return f"{lx.MONTHS[d.month - 1]} {d.year}"


_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_SWAPS = (_MONTHS, lx.STORES, tuple(city for city, _ in lx.CITIES), lx.FIRST_NAMES_F, lx.FIRST_NAMES_M, lx.SHOPS)


def vary(text: str, rng: random.Random) -> str:
    """The same kind of fact with other numbers, months, shops, cities and names (to grow a bank for a
    benchmark with facts that are alike but not the same)."""
    text = re.sub(r"\d+", lambda m: str(rng.randint(10 ** (len(m.group()) - 1) if len(m.group()) > 1 else 0,
                                                    10 ** len(m.group()) - 1)), text)
    for pool in _SWAPS:
        for word in pool:
            if word in text:
                text = re.sub(rf"\b{re.escape(word)}\b", lambda _: rng.choice(pool), text)
    return text


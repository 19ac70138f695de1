"""Conversations about one block of the world, each user turn labelled with the facts that answer it.

Here: the turn and conversation records, the index of a block's facts, and ``Talk``, which knows how to refer to an
entity (by name, by a unique alias, or as "she"/"it" in a follow-up), how to ask for a fact and how the assistant
answers. The moves that chain turns into a conversation are in ``moves``. Each user turn's ``refs`` are the facts
that answer it in context; small talk, thanks and questions about things never stored have none.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime

from dexter_brain.sample import noise
from dexter_brain.sample import phrases as P
from dexter_brain.sample import values as V
from dexter_brain.sample.world import Entity, Fact


@dataclass
class Turn:
    role: str
    content: str
    refs: list[Fact] | None = None
    told: Fact | None = None
    tool: tuple[str, str] | None = None
    is_follow_up: bool = False


@dataclass
class Conversation:
    turns: list[Turn]
    store: str
    title: str | None = None
    system: str | None = None
    start: datetime = V.BASE_TIME
    id: str = ""
    times: list[datetime] = field(default_factory=list)


@dataclass
class Group:
    noun: str
    members: list[Entity]
    asks: list[str]
    clarify: list[tuple[str, str]]
    candidates: list[Entity]
    """Every entity an ambiguous word in ``clarify`` can mean (may differ from ``members``)."""
    can_list: bool


class Index:
    """The facts of one block, looked up by entity and kind."""

    def __init__(self, facts: list[Fact]):
        self.static: dict[tuple[int, str], Fact] = {}
        self.events: dict[tuple[int, str], list[Fact]] = {}
        self.by_entity: dict[int, list[Fact]] = {}
        self.entities: dict[int, Entity] = {}
        for f in facts:
            e = f.entity
            self.entities[e.index] = e
            self.by_entity.setdefault(e.index, []).append(f)
            if f.kind.is_event:
                self.events.setdefault((e.index, f.kind.key), []).append(f)
            else:
                self.static[(e.index, f.kind.key)] = f
        for fs in self.events.values():
            fs.sort(key=lambda f: (f.sort_value, f.id))

    def is_latest(self, f: Fact) -> bool:
        return self.events[(f.entity.index, f.kind.key)][-1] is f

    def count(self, f: Fact) -> int:
        return len(self.events[(f.entity.index, f.kind.key)]) if f.kind.is_event else 1


def _spoken(r: random.Random, value: object) -> str:
    if isinstance(value, date):
        return r.choice([f"{value.day} {V.lx.MONTHS[value.month - 1]}", f"{V.lx.MONTHS[value.month - 1]} {value.day}",
                         f"{value.day} {V.lx.MONTHS[value.month - 1][:3]}", f"{value.day}/{value.month}"])
    return V.canonical(value)


def possessive(s: str) -> str:
    return s + ("'" if s.endswith("s") else "'s")


class Talk:
    """What the conversations of one block share: its facts, how to name an entity, ask and answer (random: ``rng``)."""

    def __init__(self, rng: random.Random, index: Index, groups: list[Group]):
        self.r = rng
        self.ix = index
        self.groups = groups
        ents = [e for e in index.entities.values() if not e.is_self or index.by_entity[e.index]]
        self.entities = ents
        self.popularity = [rng.paretovariate(1.2) for _ in ents]
        self.pending: set[str] = set()
        """Facts that will be told in a later conversation: not answerable before that."""
        self.horizon: datetime | None = None
        """While set, only facts stored before this time can be referred to."""

    def ok(self, f: Fact | None) -> bool:
        """Whether ``f`` exists and the assistant already knows it."""
        return f is not None and f.id not in self.pending and (self.horizon is None or f.created <= self.horizon)

    # ---- references to an entity ---------------------------------------------------------------------------
    def named(self, e: Entity) -> dict:
        if e.is_self:
            return {"e": "I", "eo": "me", "ep": "my", "pp": "my", "sub": e.sub}
        s = e.name if self.r.random() < 0.35 or not e.surfaces else self.r.choice(e.surfaces)
        modifier = s[4:] if s.startswith("the ") else s  # "the {em} password": "the Barclays password"
        return {"e": s, "eo": s, "ep": possessive(s), "em": modifier, "pp": "the", "sub": e.sub}

    def pronoun(self, e: Entity) -> dict:
        if e.is_self:
            return {"e": "I", "eo": "me", "ep": "my", "pp": "my", "sub": e.sub}
        if e.type == "person" or e.type == "pet":
            g = e.gender or "f"
            return {"e": "she" if g == "f" else "he", "eo": "her" if g == "f" else "him",
                    "ep": "her" if g == "f" else "his", "pp": "her" if g == "f" else "his", "sub": e.sub}
        return {"e": "it", "eo": "it", "ep": "its", "pp": self.r.choice(["its", "the"]), "sub": e.sub}

    # ---- questions and answers ------------------------------------------------------------------------------
    def question(self, f: Fact, who: dict) -> str | None:
        """One way to ask for ``f``, or None if no question picks it out among its entity's facts."""
        k, r = f.kind, self.r
        slots = {name: _spoken(r, v) for name, v in f.slots.items()}
        options = []
        if k.is_event:
            options += [t for t in k.asks if "{" + k.distinct + "}" in t or self.ix.count(f) == 1]
            if self.ix.is_latest(f):
                options += list(k.latest) * 2
        else:
            options += list(k.asks)
        if "em" not in who:  # a pronoun cannot stand in "the {em} password"
            options = [t for t in options if "{em}" not in t]
            if k.nouns and r.random() < 0.4:
                noun = r.choice(k.nouns)
                if f.entity.is_self:
                    np = f"my {noun}"
                else:
                    shapes = P.NP_PERSON if f.entity.type == "person" else P.NP_THING
                    np = r.choice(shapes).format(noun=noun, **who)
                return r.choice(P.NOUN_FRAMES).format(np=np)
        if not options:
            return None
        return r.choice(options).format(**{**slots, **who})

    def reply(self, facts: list[Fact]) -> str:
        r = self.r
        parts = []
        for f in facts:
            if r.random() < 0.2 or not f.kind.say:
                parts.append(f'You saved: "{f.text}"')
            else:
                slots = {k: V.canonical(v) for k, v in f.slots.items()}
                parts.append(noise.capfirst(r.choice(f.kind.say).format(E=f.entity.name, **slots)))
        body, prefix = " ".join(parts), r.choice(P.PREFIX)
        if prefix.strip() and body.split(" ", 1)[0] in ("You", "The", "It", "On", "Yes", "In"):
            body = body[0].lower() + body[1:]
        has_date = any(isinstance(v, date) for f in facts for v in f.slots.values())
        suffix = r.choice(P.SUFFIX + P.DATE_SUFFIX) if has_date else r.choice(P.SUFFIX)
        return (prefix + body + suffix).strip()

    def user(self, text: str, refs: list[Fact] | None, *, follow_up: bool = False, question: bool = True) -> Turn:
        return Turn("user", noise.humanize(self.r, text, question=question), list(refs or []), is_follow_up=follow_up)

    # ---- picking things to talk about ----------------------------------------------------------------------
    def askable(self, e: Entity, exclude: set[str] = frozenset()) -> list[Fact]:
        return [f for f in self.ix.by_entity.get(e.index, []) if f.id not in exclude and self.ok(f)]

    def pick_entity(self) -> Entity:
        return self.r.choices(self.entities, weights=self.popularity)[0]

    def pick_fact(self, facts: list[Fact]) -> Fact | None:
        if not facts:
            return None
        weights = [1.0 if f.kind.is_event else 3.0 for f in facts]
        return self.r.choices(facts, weights=weights)[0]


"""The sample user's world: entities with aliases and attributes, and the facts stored about them.

``build_entities`` makes the whole entity list (the hand-made core from ``lexicon`` first, then invented entities
at larger scales) and works out which names and aliases point at exactly one entity, so questions can use them.
``block_facts`` then fills one block of entities with facts; blocks are processed one at a time so that memory
does not grow with ``--scale``.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from dexter_brain.sample import kinds as kd
from dexter_brain.sample import lexicon as lx
from dexter_brain.sample import noise
from dexter_brain.sample import values as V

ENTITIES_PER_SCALE = 60
FACTS_PER_SCALE = 3000
BLOCK_SIZE = 60
"""Invented entities are made and mined in blocks of this many, so only one block's facts are in memory."""

# One block of invented entities: the type mix of a typical user's memory.
_BLOCK_TYPES = (["person"] * 16 + ["project"] * 8 + ["device"] * 8 + ["account"] * 6 + ["subscription"] * 5
                + ["place"] * 6 + ["vehicle"] * 3 + ["pet"] * 2 + ["document"] * 3 + ["trip"] * 3)


@dataclass
class Entity:
    index: int
    name: str
    type: str
    sub: str
    aliases: list[str]
    gender: str | None
    attrs: dict
    first: str = ""
    last: str = ""
    surfaces: list[str] = field(default_factory=list)
    """Name and aliases that point at this entity only: safe to use in a question."""
    memo: dict = field(default_factory=dict)
    """Values drawn once and shared by several facts (a trip's dates); not written out."""

    @property
    def is_self(self) -> bool:
        return self.sub == "self"

    def record(self) -> dict:
        return {"name": self.name, "type": self.type, "aliases": list(self.aliases), "attributes": dict(self.attrs)}


@dataclass
class Fact:
    id: str
    entity: Entity
    kind: kd.Kind
    slots: dict
    text: str
    created: datetime
    topic: str
    store: str = "d2"
    """``d2`` (d2_memory.json) or ``db`` (brain.db)."""
    has_triple: bool = False
    source: tuple | None = None
    """(conversation, message index) of the user turn the fact was learned from."""

    @property
    def sort_value(self) -> float:
        return V.sort_key(self.slots.get("date") or self.created.date())


def entity_count(scale: float) -> int:
    return max(6, round(ENTITIES_PER_SCALE * scale))


def build_entities(seed: int, scale: float) -> list[Entity]:
    """All entities of the world, in a fixed order, with ``surfaces`` filled in."""
    n = entity_count(scale)
    out = []
    for i, (name, etype, sub, aliases, gender, attrs) in enumerate(lx.CORE_ENTITIES[:n]):
        first, _, last = name.removeprefix("Dr ").partition(" ") if etype == "person" else (name, "", "")
        out.append(Entity(i, name, etype, sub, list(aliases), gender, dict(attrs), first, last))
    rng = random.Random(f"{seed}:entities")
    taken = {e.name.lower() for e in out}
    reserved_first = {"sam", "samantha", "tom", "jess", "linda", "robert", "rose", "leo", "jo", "priya", "marco",
                      "helen", "alex"}
    people: list[Entity] = []
    for j in range(n - len(out)):
        etype = _BLOCK_TYPES[j % len(_BLOCK_TYPES)]
        e = _invent(rng, len(out), etype, taken, reserved_first, people)
        taken.add(e.name.lower())
        out.append(e)
        if etype == "person":
            people.append(e)
    counts = Counter(s.lower() for e in out for s in {e.name, *e.aliases})
    for e in out:
        if not e.is_self:
            e.surfaces = [s for s in [e.name, *e.aliases] if counts[s.lower()] == 1]
    return out


def blocks(entities: list[Entity]) -> list[list[Entity]]:
    core = [e for e in entities if e.index < len(lx.CORE_ENTITIES)]
    rest = entities[len(core):]
    return [core] + [rest[i:i + BLOCK_SIZE] for i in range(0, len(rest), BLOCK_SIZE)]


def _unique(rng: random.Random, taken: set[str], make) -> str:
    for _ in range(30):
        name = make()
        if name.lower() not in taken:
            return name
    base = make()
    k = 2
    while f"{base} {k}".lower() in taken:
        k += 1
    return f"{base} {k}"


def _invent(rng: random.Random, index: int, etype: str, taken: set, reserved: set, people: list[Entity]) -> Entity:
    owner = rng.choice(people).first if people and rng.random() < 0.6 else None
    if etype == "person":
        gender = rng.choice("fm")
        pool = lx.FIRST_NAMES_F if gender == "f" else lx.FIRST_NAMES_M
        firsts = [f for f in pool if f.lower() not in reserved]
        name = _unique(rng, taken, lambda: f"{rng.choice(firsts)} {rng.choice(lx.SURNAMES)}")
        first, last = name.split(" ", 1)
        sub, relation, context = rng.choice(lx.RELATIONS)
        aliases = [first, f"{first} {last[0]}", f"{first} from {context}"]
        if first in lx.NICKNAMES:
            aliases.append(lx.NICKNAMES[first])
        return Entity(index, name, "person", sub, aliases, gender,
                      {"relation": relation, "city": rng.choice(lx.CITIES)[0]}, first, last)
    if etype == "project":
        sub, short, label = rng.choice(lx.PROJECT_KINDS)
        word = rng.choice(lx.PROJECT_WORDS)
        name = _unique(rng, taken, lambda: f"{rng.choice(lx.PROJECT_WORDS)} {label}")
        word = name.split()[0]
        client = rng.choice(lx.COMPANIES)
        aliases = [f"the {word} {short}", f"the {word} project", word]
        attrs = {"kind": label, "client": client}
        if sub in ("website", "shop"):
            attrs["domain"] = f"{word.lower()}{rng.choice(['.co.uk', '.com', '.studio'])}"
            aliases.append(attrs["domain"])
        return Entity(index, name, "project", sub, aliases, None, attrs, name)
    if etype == "device":
        sub, brand, model = rng.choice(lx.DEVICE_MODELS)
        who = owner or rng.choice(["the studio", "the spare", "the office"])
        name = _unique(rng, taken, lambda: f"{who}'s {brand} {model}" if owner else f"{brand} {model} ({who[4:]})")
        aliases = [f"the {model}", f"the {brand}", f"{who}'s {sub}" if owner else f"{who[4:]} {sub}"]
        return Entity(index, name, "device", sub, aliases, None,
                      {"brand": brand, "model": f"{brand} {model}", "owner": owner or who}, name)
    if etype == "vehicle":
        sub, make, model = rng.choice(lx.VEHICLE_MODELS)
        who = owner or "the business"
        name = _unique(rng, taken, lambda: f"{who}'s {make} {model}" if owner else f"{make} {model} (business)")
        aliases = [f"the {model}", f"{who}'s {sub}" if owner else f"the work {sub}", f"the {make}"]
        return Entity(index, name, "vehicle", sub, aliases, None, {"make": make, "model": model}, name)
    if etype in ("account", "subscription"):
        options = [s for s in lx.SERVICES if s[0] == etype]
        _, sub, service = rng.choice(options)
        name = service if service.lower() not in taken else _unique(
            rng, taken, lambda: f"{service} ({rng.choice([owner or 'family', 'work', 'old', 'joint', 'business'])})")
        aliases = [service.split()[0], service.lower()]
        return Entity(index, name, etype, sub, aliases, None, {"provider": service.split()[0]}, name)
    if etype == "place":
        sub, base = rng.choice(lx.PLACE_NAMES)
        city = rng.choice(lx.CITIES)[0]
        name = base if base.lower() not in taken else _unique(rng, taken, lambda: f"{base} {rng.choice(lx.CITIES)[0]}")
        city = name[len(base) + 1:].rstrip(" 0123456789") or city
        aliases = [f"the {sub}", base.split()[0]]
        return Entity(index, name, "place", sub, aliases, None, {"kind": sub, "city": city}, name)
    if etype == "pet":
        species = rng.choice(["dog", "cat", "rabbit"])
        who = owner or rng.choice(["Mum", "Jess", "Gran"])
        name = _unique(rng, taken, lambda: f"{rng.choice(lx.PET_NAMES)} ({who}'s {species})")
        aliases = [name.split()[0], f"{who}'s {species}"]
        return Entity(index, name, "pet", species, aliases, rng.choice("fm"), {"species": species, "owner": who}, name)
    if etype == "document":
        sub, base = rng.choice(lx.DOCUMENT_NAMES)
        name = base if base.lower() not in taken else _unique(rng, taken, lambda: f"{base} ({owner or 'old'})")
        aliases = [base.split(" (")[0].lower(), f"the {base.split()[0].lower()} {sub}"]
        return Entity(index, name, "document", sub, aliases, None, {"kind": sub}, name)
    sub, pattern = rng.choice(lx.TRIP_NAMES)
    city = rng.choice(lx.TRAVEL_CITIES)
    name = _unique(rng, taken, lambda: pattern.format(city=city, name=rng.choice([p.first for p in people] or ["Kemi"]),
                                                      word=rng.choice(lx.PROJECT_WORDS)))
    aliases = [name.lower(), f"the {name.split()[-1].lower()}"]
    attrs = {"city": city} if "{city}" in pattern else {}
    return Entity(index, name, "trip", sub, aliases, None, attrs, name)


def fact_budgets(seed: int, entities: list[Entity], scale: float) -> dict[int, int]:
    """How many facts each entity gets, so that the total is about ``FACTS_PER_SCALE * scale``."""
    rng = random.Random(f"{seed}:budgets")
    weights = [kd.FACT_WEIGHT["self" if e.is_self else e.type] * rng.uniform(0.6, 1.4) for e in entities]
    total = FACTS_PER_SCALE * scale
    return {e.index: max(4, round(total * w / sum(weights))) for e, w in zip(entities, weights)}


def block_facts(seed: int, block: list[Entity], budgets: dict[int, int], next_id: int) -> list[Fact]:
    """All facts about the entities of one block, with ids from ``next_id`` on, in a fixed order."""
    facts: list[Fact] = []
    for ent, budget in zip(block, _fill(seed, block, budgets)):
        rng = random.Random(f"{seed}:facts:{ent.index}")
        for kind, slots in _draw(rng, ent, budget):
            fid = f"mem-{next_id:06d}"
            next_id += 1
            facts.append(_make_fact(rng, fid, ent, kind, slots))
            if not kind.is_event and rng.random() < 0.6 and kind.key != "identity":
                ent.attrs.setdefault(kind.key, V.canonical(slots[kind.obj]))
    return facts


def _fill(seed: int, block: list[Entity], budgets: dict[int, int]) -> list[int]:
    """Final budgets for a block: an entity that runs out of distinct things to say passes the rest of its share
    to the others, in proportion to what they have left."""
    caps = [len(_draw(random.Random(f"{seed}:facts:{e.index}"), e, 10**6)) for e in block]
    want = [budgets[e.index] for e in block]
    alloc = [min(w, c) for w, c in zip(want, caps)]
    for _ in range(5):
        short = sum(want) - sum(alloc)
        room = [c - a for c, a in zip(caps, alloc)]
        if short <= 0 or sum(room) == 0:
            break
        alloc = [a + min(r, math.ceil(short * r / sum(room))) for a, r in zip(alloc, room)]
    excess = sum(alloc) - sum(want)
    for i in sorted(range(len(alloc)), key=lambda i: -alloc[i]):  # rounding up may overshoot by a few
        take = min(max(excess, 0), alloc[i] - min(want[i], caps[i]))
        alloc[i] -= take
        excess -= take
    return alloc


def _draw(rng: random.Random, ent: Entity, budget: int) -> list[tuple[kd.Kind, dict]]:
    kinds = kd.kinds_for(ent.type, ent.sub)
    if ent.attrs.get("child"):
        kinds = [k for k in kinds if k.key not in ("work", "partner", "kids", "email", "loan", "phone", "news",
                                                    "recommendation")]
    out = [(k, k.value(rng, ent)) for k in kinds if not k.is_event and rng.random() < k.p]
    events = [k for k in kinds if k.is_event]
    seen: dict[str, set] = {k.key: set() for k in events}
    misses = {k.key: 0 for k in events}
    while len(out) < budget and events:
        k = rng.choices(events, weights=[e.weight for e in events])[0]
        slots = k.value(rng, ent)
        key = V.canonical(slots[k.distinct])
        if key in seen[k.key]:
            misses[k.key] += 1
        else:
            seen[k.key].add(key)
            out.append((k, slots))
        if len(seen[k.key]) >= k.cap or misses[k.key] > 12:  # this kind has nothing new left to say
            events.remove(k)
    rng.shuffle(out)
    return out


def _make_fact(rng: random.Random, fid: str, ent: Entity, kind: kd.Kind, slots: dict) -> Fact:
    names = [ent.name] * 3 + [a for a in ent.aliases if not a.startswith("my ") or rng.random() < 0.3]
    if ent.is_self:
        names = ["Alex"]
    rendered = {k: V.render(rng, v) for k, v in slots.items()}
    text = rng.choice(kind.facts).format(E=rng.choice(names), **rendered)
    text = noise.capfirst(text.replace(" .", ".").replace("..", ".").strip())
    if rng.random() < 0.05:
        text = noise.typo(rng, text)
    when = slots.get("date")
    if isinstance(when, date) and when <= V.BASE_DATE + timedelta(days=V.SPAN_DAYS):
        day = when + timedelta(days=rng.choice([0, 0, 1, 2, 5]))
    else:
        day = V.day(rng, 0, V.SPAN_DAYS - 30)
    created = datetime.combine(day, datetime.min.time()) + timedelta(minutes=rng.randint(7 * 60, 23 * 60 + 30),
                                                                   seconds=rng.randint(0, 59))
    topic = kind.topic or kd.TOPIC_BY_SUB.get(ent.sub) or kd.TOPIC_BY_TYPE.get(ent.type, "personal")
    store = "d2" if rng.random() < 0.6 else "db"
    return Fact(fid, ent, kind, slots, text, created, topic, store, has_triple=rng.random() < 0.65)


def triple(fact: Fact) -> tuple[str, str, str]:
    kind = fact.kind
    obj = fact.slots.get(kind.obj, next(iter(fact.slots.values())))
    return fact.entity.name, kind.key, V.canonical(obj)

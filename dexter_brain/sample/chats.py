"""Whole conversations for one block: who says what, in which order, when, and where it is stored.

Telling conversations come first (a user tells the assistant something, which becomes a fact with a
``source_message``); question conversations follow until the block has its share of user turns. Each
conversation is placed in time after every fact it relies on, then all are sorted by time and given ids.
"""

from __future__ import annotations

import random
from datetime import timedelta

from dexter_brain.sample import lexicon as lx
from dexter_brain.sample import phrases as P
from dexter_brain.sample import values as V
from dexter_brain.sample.dialogue import Conversation, Group, Index, Talk, Turn
from dexter_brain.sample.moves import Moves, State
from dexter_brain.sample.world import Entity, Fact

USER_TURNS_PER_FACT = 2.1
"""Question conversations continue until a block has this many user turns per fact."""
TOLD_SHARE = 0.3
"""Share of d2_memory facts that were told in a conversation (and so carry a source_message)."""
HISTORY_SHARE = 0.22
"""Share of question conversations stored as brain.db history rows instead of in d2_memory.json."""

_OPENERS = [("open_question", 0.6), ("open_pair", 0.08), ("open_group", 0.07), ("open_clarify", 0.06),
            ("not_stored", 0.05), ("small_talk", 0.04), ("action", 0.1)]
_FOLLOW = [("more", 0.13), ("ellipsis", 0.3), ("same_for", 0.09), ("other_one", 0.12), ("compare", 0.14),
           ("ordinal", 0.1), ("missing", 0.04), ("action", 0.04), ("thanks", 0.1), ("open_question", 0.1),
           ("not_stored", 0.015), ("small_talk", 0.015)]


def core_groups(entities: list[Entity]) -> list[Group]:
    """The hand-made groups whose members are all present, and which words can be clarified in this world."""
    by_name = {e.name: e for e in entities}
    out = []
    for g in lx.CORE_GROUPS:
        members = [by_name[n] for n in g["members"] if n in by_name]
        if len(members) < 2:
            continue
        subs = {(m.type, m.sub) for m in members}
        # A listing is only true if no invented entity of the same sort exists.
        invented = [e for e in entities if e.index >= len(lx.CORE_ENTITIES)]
        can_list = len(members) == len(g["members"]) and not any((e.type, e.sub) in subs for e in invented)
        shared = set.intersection(*({a.lower() for a in m.aliases} for m in members))
        alias = next(iter(sorted(shared)), None)
        candidates = [e for e in entities if alias in {a.lower() for a in e.aliases}] if alias else members
        clarify = g.get("clarify", []) if (alias or can_list) else []
        out.append(Group(g["noun"], members, g["asks"], clarify, candidates, can_list))
    return out


def block_conversations(seed: int, block_no: int, facts: list[Fact], groups: list[Group]) -> list[Conversation]:
    """All conversations of one block, sorted by start time, with ids."""
    r = random.Random(f"{seed}:dialogue:{block_no}")
    moves = Moves(Talk(r, Index(facts), groups if block_no == 0 else []))
    told = [f for f in facts if f.store == "d2" and r.random() < TOLD_SHARE]
    moves.t.pending = {f.id for f in told}
    convs: list[Conversation] = []
    queue = sorted(told, key=lambda f: (f.created, f.id), reverse=True)  # pop() takes the oldest first
    while queue:
        batch = [queue.pop()]
        if queue and r.random() < 0.2:
            batch.append(queue.pop())
        convs.append(_place(r, _telling(moves, batch)))
    target = round(USER_TURNS_PER_FACT * len(facts))
    turns = sum(1 for c in convs for t in c.turns if t.role == "user")
    while turns < target:
        conv = _questions(moves, "d2" if r.random() > HISTORY_SHARE else "db")
        if conv is None:
            continue
        convs.append(_place(r, conv))
        turns += sum(1 for t in conv.turns if t.role == "user")
    convs.sort(key=lambda c: c.start)
    for c in convs:
        c.id = f"c_{r.getrandbits(64):016x}"
    return convs


def _telling(moves: Moves, batch: list[Fact]) -> Conversation:
    r, st = moves.t.r, State()
    turns: list[Turn] = []
    if r.random() < 0.1:
        turns += moves.greeting(st)
    for f in batch:
        turns += moves.tell(f)
        st.focus, st.kind = f.entity, f.kind
        st.given.add(f.id)
    # Follow-ups may only use what was stored by then, so that the chat stays close to the told facts in time.
    moves.t.horizon = max(f.created for f in batch) + timedelta(days=2)
    while r.random() < 0.45 and len(turns) < 10:
        new = getattr(moves, r.choice(["ellipsis", "more", "ellipsis", "same_for"]))(st)
        if new:
            turns += new
    moves.t.horizon = None
    if r.random() < 0.3:
        turns += moves.thanks(st)
    return Conversation(turns, "d2", _title(r, turns, batch[0].entity), _system(r))


def _questions(moves: Moves, store: str) -> Conversation | None:
    r, st = moves.t.r, State()
    turns: list[Turn] = []
    if r.random() < 0.1:
        turns += moves.greeting(st)
    opened = None
    for _ in range(6):
        name = r.choices([n for n, _ in _OPENERS], weights=[w for _, w in _OPENERS])[0]
        opened = getattr(moves, name)(st)
        if opened:
            break
    if not opened:
        return None
    turns += opened
    while r.random() < 0.74 and sum(t.role == "user" for t in turns) < 10:
        name = r.choices([n for n, _ in _FOLLOW], weights=[w for _, w in _FOLLOW])[0]
        new = getattr(moves, name)(st)
        if not new:
            continue
        turns += new
        if name == "thanks" and r.random() < 0.7:
            break
    first = next((f.entity for t in turns for f in (t.refs or [])), None)
    return Conversation(turns, store, _title(r, turns, first), _system(r) if store == "d2" else None)


def _title(r: random.Random, turns: list[Turn], e: Entity | None) -> str | None:
    x = r.random()
    if x < 0.3 or e is None:
        return None
    if x < 0.6:
        return e.name
    first = next(t.content for t in turns if t.role == "user" and t.refs is not None)
    return first[:40].rstrip(" ?").capitalize()


def _system(r: random.Random) -> str | None:
    return r.choice(P.SYSTEM_PROMPTS) if r.random() < 0.08 else None


def _place(r: random.Random, conv: Conversation) -> Conversation:
    """Start the conversation after every fact it relies on; told facts are created at their turn."""
    known = [f.created for t in conv.turns for f in (t.refs or [])]
    known += [t.told.created for t in conv.turns if t.told]
    if known:
        start = max(known) + timedelta(minutes=min(r.expovariate(1 / (60 * 24 * 10)), 60 * 24 * 60))
    else:
        start = V.BASE_TIME + timedelta(days=r.uniform(0, V.SPAN_DAYS), hours=r.uniform(7, 23))
    if start.hour < 7:  # people rarely chat to their assistant at 3am
        start += timedelta(hours=7 - start.hour + r.random() * 3)
    start = start.replace(microsecond=0)
    _fit_greeting(conv, start.hour)
    t = start
    conv.start, conv.times = start, []
    for turn in conv.turns:
        t += timedelta(seconds=r.randint(4, 90) if turn.role == "user" else r.randint(1, 9))
        conv.times.append(t)
        if turn.told:
            turn.told.created = t
    return conv


def _fit_greeting(conv: Conversation, hour: int) -> None:
    """Nobody says "good morning" at 11pm: swap a time-of-day greeting that does not fit the start time."""
    daypart = "morning" if hour < 12 else "evening" if hour >= 17 else "afternoon"
    for turn in conv.turns[:2]:
        for word in ("morning", "evening"):
            if word in turn.content.lower() and word != daypart:
                turn.content = "hi" if turn.role == "user" else "Hi! What can I do for you?"

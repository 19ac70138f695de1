"""Conversation moves: openers ("what's mum's address?", "what laptops do I have?", "what's Sam's number?") and
follow-ups ("and her email?", "tell me more", "which one is cheaper?", "the second one", "the other one?").

Each move reads and updates a ``State`` (the entity in focus, the other one of a pair, the list just given, the
facts already mentioned) and returns the turns it adds, with the facts that answer each user turn in context.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from dexter_brain.sample import kinds as kd
from dexter_brain.sample import noise
from dexter_brain.sample import phrases as P
from dexter_brain.sample import values as V
from dexter_brain.sample.dialogue import Talk, Turn, possessive
from dexter_brain.sample.world import Entity, Fact


@dataclass
class State:
    focus: Entity | None = None
    kind: kd.Kind | None = None
    other: Entity | None = None
    listed: list[Entity] | None = None
    given: set[str] = field(default_factory=set)
    compared: set[tuple[str, str]] = field(default_factory=set)


_SUB_NOUN = {"laptop": "laptop", "phone": "phone", "car": "car", "website": "site", "insurance": "policy",
             "bank": "account", "dog": "dog", "cat": "cat", "streaming": "one"}


class Moves:
    """Openers and follow-ups. Each returns the new turns, or None when it does not fit the state."""

    def __init__(self, talk: Talk):
        self.t = talk

    def open_question(self, st: State) -> list[Turn] | None:
        for _ in range(12):
            e = self.t.pick_entity()
            f = self.t.pick_fact(self.t.askable(e))
            q = self.t.question(f, self.t.named(e)) if f else None
            if q:
                st.focus, st.kind, st.other, st.listed = e, f.kind, None, None
                st.given.add(f.id)
                return [self.t.user(q, [f]), Turn("assistant", self.t.reply([f]))]
        return None

    def _summary_facts(self, members: list[Entity]) -> list[Fact]:
        out = []
        for m in members:
            summary = [self.t.ix.static.get((m.index, k)) for k in ("identity", "plan", "dates", "expiry", "address")]
            f = next((f for f in summary if self.t.ok(f)), None)
            if f:
                out.append(f)
        return out

    def open_pair(self, st: State) -> list[Turn] | None:
        a = self.t.pick_entity()
        mates = [e for e in self.t.entities if e is not a and e.type == a.type and e.sub == a.sub and not e.is_self]
        if a.is_self or not mates:
            return None
        b = self.t.r.choice(mates)
        facts = self._summary_facts([a, b])
        if len(facts) < 2:
            return None
        text = self.t.r.choice(P.PAIR_OPEN).format(a=self.t.named(a)["e"], b=self.t.named(b)["e"])
        st.listed, st.focus, st.other, st.kind = [a, b], None, None, None
        st.given.update(f.id for f in facts)
        return [self.t.user(text, facts), Turn("assistant", self.t.reply(facts))]

    def open_group(self, st: State) -> list[Turn] | None:
        groups = [g for g in self.t.groups if g.can_list]
        if not groups:
            return None
        g = self.t.r.choice(groups)
        facts = self._summary_facts(g.members)
        names = ", ".join(m.name for m in g.members[:-1]) + " and " + g.members[-1].name
        reply = self.t.r.choice(P.LIST_REPLY).format(n=len(g.members), noun=g.noun, items=names)
        st.listed, st.focus, st.other, st.kind = list(g.members), None, None, None
        st.given.update(f.id for f in facts)
        return [self.t.user(self.t.r.choice(g.asks), facts), Turn("assistant", reply)]

    def open_clarify(self, st: State) -> list[Turn] | None:
        groups = [g for g in self.t.groups if g.clarify]
        if not groups:
            return None
        g = self.t.r.choice(groups)
        text, key = self.t.r.choice(g.clarify)
        facts = [self.t.ix.static.get((c.index, key)) for c in g.candidates]
        pairs = [(c, f) for c, f in zip(g.candidates, facts) if self.t.ok(f)]
        if len(pairs) < 2:
            return None
        ask = self.t.r.choice(P.CLARIFY_ASK).format(opts=", ".join(c.name for c, _ in pairs[:-1]) + " or "
                                                  + pairs[-1][0].name)
        i = self.t.r.randrange(len(pairs))
        chosen, fact = pairs[i]
        surfaces = [s for s in chosen.surfaces if s.lower() not in text.lower()] or [chosen.name]
        pick = self.t.r.choice(P.CLARIFY_PICK).format(s=self.t.r.choice(surfaces), ord=P.ORDINALS[i][0])
        st.focus, st.kind, st.listed = chosen, fact.kind, [c for c, _ in pairs]
        st.other = pairs[1 - i][0] if len(pairs) == 2 else None
        st.given.add(fact.id)
        return [self.t.user(text, [f for _, f in pairs]), Turn("assistant", ask),
                self.t.user(pick, [fact], follow_up=True, question=False), Turn("assistant", self.t.reply([fact]))]

    def more(self, st: State) -> list[Turn] | None:
        if st.focus is None:
            return None
        facts = self.t.askable(st.focus, st.given)
        statics = [f for f in facts if not f.kind.is_event]
        events = [f for f in facts if f.kind.is_event]
        self.t.r.shuffle(statics)
        self.t.r.shuffle(events)
        chosen = (statics[:2] + events[:1])[: self.t.r.choice([2, 2, 3])]
        if not chosen:
            return None
        who = self.t.pronoun(st.focus) if self.t.r.random() < 0.75 else self.t.named(st.focus)
        text = self.t.r.choice(P.MORE).format(**who)
        st.given.update(f.id for f in chosen)
        facts_text = "; ".join(f.text.rstrip(".") for f in chosen) + "."
        reply = self.t.r.choice(P.MORE_REPLY).format(E="you" if st.focus.is_self else st.focus.name, facts=facts_text)
        return [self.t.user(text, chosen, follow_up=True), Turn("assistant", reply)]

    def ellipsis(self, st: State) -> list[Turn] | None:
        if st.focus is None:
            return None
        facts = [f for f in self.t.askable(st.focus, st.given) if f.kind.key != "identity"]
        if not facts:
            return None
        f = self.t.pick_fact(facts)
        who = self.t.pronoun(st.focus)
        if f.kind.nouns and not f.kind.is_event and self.t.r.random() < 0.55:
            text = self.t.r.choice(P.ELLIPSIS).format(pp=who["pp"], noun=self.t.r.choice(f.kind.nouns))
        else:
            text = self.t.question(f, who)
        if not text:
            return None
        st.kind = f.kind
        st.given.add(f.id)
        return [self.t.user(text, [f], follow_up=True), Turn("assistant", self.t.reply([f]))]

    def same_for(self, st: State) -> list[Turn] | None:
        if st.focus is None or st.kind is None or st.kind.is_event:
            return None
        key = st.kind.key
        mates = [e for e in self.t.entities if e is not st.focus and not e.is_self and e.type == st.focus.type
                 and self.t.ok(self.t.ix.static.get((e.index, key)))]
        if not mates:
            return None
        e2 = self.t.r.choice(mates)
        f = self.t.ix.static[(e2.index, key)]
        text = self.t.r.choice(P.SAME_FOR).format(**self.t.named(e2))
        st.other, st.focus = st.focus, e2
        st.given.add(f.id)
        return [self.t.user(text, [f], follow_up=True), Turn("assistant", self.t.reply([f]))]

    def other_one(self, st: State) -> list[Turn] | None:
        if st.other is None or st.focus is None or st.kind is None or st.kind.is_event \
                or (st.other.type, st.other.sub) != (st.focus.type, st.focus.sub):
            return None
        f = self.t.ix.static.get((st.other.index, st.kind.key))
        if not self.t.ok(f):
            return None
        noun = _SUB_NOUN.get(st.other.sub)
        options = [t for t in P.OTHER_ONE if "{sub}" not in t or noun]
        text = self.t.r.choice(options).format(sub=noun)
        st.focus, st.other = st.other, st.focus
        st.given.add(f.id)
        return [self.t.user(text, [f], follow_up=True), Turn("assistant", self.t.reply([f]))]

    def compare(self, st: State) -> list[Turn] | None:
        pool = st.listed or ([st.focus, st.other] if st.focus and st.other else None)
        if not pool or len(pool) < 2 or len({(m.type, m.sub) for m in pool}) > 1:
            return None
        options = []
        for k in kd.kinds_for(pool[0].type, pool[0].sub):
            facts = [self.t.ix.static.get((m.index, k.key)) for m in pool]
            if k.cmp and all(self.t.ok(f) for f in facts):
                options += [(k, c, facts) for c in k.cmp if all(c[0] in f.slots for f in facts)]
        if not options:
            return None
        options = [o for o in options if (o[0].key, o[1][1]) not in st.compared]
        if not options:
            return None
        k, (slot, direction, asks), facts = self.t.r.choice(options)
        st.compared.add((k.key, direction))
        keys = [V.sort_key(f.slots[slot]) for f in facts]
        best = min(keys) if direction == "min" else max(keys)
        if keys.count(best) > 1:
            return None
        i = keys.index(best)
        winner, fact = pool[i], facts[i]
        st.focus, st.kind = winner, k
        st.other = pool[1 - i] if len(pool) == 2 else None
        st.given.add(fact.id)
        reply = f"{winner.name}. " + self.t.reply([fact])
        return [self.t.user(self.t.r.choice(asks), [fact], follow_up=True), Turn("assistant", reply)]

    def ordinal(self, st: State) -> list[Turn] | None:
        if not st.listed or len(st.listed) < 2:
            return None
        i = self.t.r.randrange(min(len(st.listed), len(P.ORDINALS)))
        m = st.listed[i]
        word = "last" if i == len(st.listed) - 1 and self.t.r.random() < 0.4 else self.t.r.choice(P.ORDINALS[i])
        facts = [f for f in self.t.askable(m, st.given) if not f.kind.is_event and f.kind.key != "identity"]
        self.t.r.shuffle(facts)
        if not facts:
            return None
        chosen = facts[: self.t.r.choice([1, 2])]
        st.focus, st.kind = m, chosen[0].kind
        st.other = st.listed[1 - i] if len(st.listed) == 2 else None
        st.given.update(f.id for f in chosen)
        text = self.t.r.choice(P.ORDINAL).format(ord=word)
        return [self.t.user(text, chosen, follow_up=True), Turn("assistant", self.t.reply(chosen))]

    def missing(self, st: State) -> list[Turn] | None:
        e = st.focus
        if e is None or e.is_self:
            return None
        absent = [k for k in kd.kinds_for(e.type, e.sub) if not k.is_event and k.nouns
                  and (e.index, k.key) not in self.t.ix.static]
        if not absent:
            return None
        k = self.t.r.choice(absent)
        who, noun = self.t.pronoun(e), self.t.r.choice(k.nouns)
        text = self.t.r.choice(P.ELLIPSIS).format(pp=who["pp"], noun=noun)
        reply = self.t.r.choice(P.MISSING_REPLY).format(ep=possessive(e.name), noun=noun)
        return [self.t.user(text, [], follow_up=True), Turn("assistant", reply)]

    def action(self, st: State) -> list[Turn] | None:
        e = st.focus if st.focus is not None and self.t.r.random() < 0.6 else self.t.pick_entity()
        options = [self.t.ix.static[(e.index, k)] for k in P.ACTIONS if (e.index, k) in self.t.ix.static]
        options = [f for f in options if self.t.ok(f)]
        if not options or e.is_self:
            return None
        f = self.t.r.choice(options)
        templates, tool = P.ACTIONS[f.kind.key]
        if f.kind.key == "phone" and (e.type == "place" or self.t.r.random() < 0.4):
            templates, tool = P.CALL
        is_follow_up = e is st.focus
        who = self.t.pronoun(e) if is_follow_up else self.t.named(e)
        text = self.t.r.choice(templates).format(**who)
        value = V.canonical(f.slots[f.kind.obj])
        if e is not st.focus:
            st.other, st.listed = None, None
        st.focus, st.kind = e, f.kind
        st.given.add(f.id)
        status = "success" if self.t.r.random() < 0.93 else "error"
        payload = {"tool": tool, "status": status, "args": {"target": e.name, "value": value}}
        reply = self.t.r.choice(P.ACTION_REPLY).format(v=value) if status == "success" else \
            "That didn't go through - want me to try again?"
        return [self.t.user(text, [f], follow_up=is_follow_up, question=False),
                Turn("tool", json.dumps(payload, ensure_ascii=False), tool=(tool, status)),
                Turn("assistant", reply)]

    def thanks(self, st: State) -> list[Turn]:
        return [self.t.user(self.t.r.choice(P.THANKS), [], question=False),
                Turn("assistant", self.t.r.choice(P.THANKS_REPLY))]

    def not_stored(self, st: State) -> list[Turn]:
        return [self.t.user(self.t.r.choice(P.NOT_STORED), []), Turn("assistant", self.t.r.choice(P.NOT_STORED_REPLY))]

    def small_talk(self, st: State) -> list[Turn]:
        q, a = self.t.r.choice(P.SMALL_TALK)
        return [self.t.user(q, [], question=False), Turn("assistant", a)]

    def greeting(self, st: State) -> list[Turn]:
        return [self.t.user(self.t.r.choice(P.GREETINGS), [], question=False),
                Turn("assistant", self.t.r.choice(P.GREETING_REPLY))]

    def tell(self, f: Fact) -> list[Turn]:
        text = f.text.rstrip(".")
        if f.entity.is_self:
            for a, b in (("Alex's ", "my "), ("Alex is ", "I'm "), ("Alex ", "I "), ("User is ", "I'm "),
                         ("User ", "I ")):
                text = text.replace(a, b)
        templates = f.kind.tell or P.TELL
        slots = {k: V.canonical(v) for k, v in f.slots.items()}
        said = self.t.r.choice(templates).format(t=text, **slots)
        turn = Turn("user", noise.humanize(self.t.r, said, question=False, lower_rate=0.35), [], told=f)
        self.t.pending.discard(f.id)
        return [turn, Turn("assistant", self.t.r.choice(P.TELL_ACK))]

"""Mine the memory corpus: the fact bank and (query -> relevant fact ids) examples.

Signals, strongest first: ``memory_refs`` on user turns (``d2_memory.json`` messages and ``brain.db``
history rows); follow-up turns without refs that inherit the previous turn's refs; a fact's own source
message; questions generated from triples; pseudo-queries cut from the facts' own words (inverse cloze).
Generated examples are derived from the bank itself and only ever train.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections import defaultdict

import numpy as np

from dexter_brain.schema import CorpusSettings, FactRow, MemoryExample
from dexter_brain.entities import EntityIndex
from dexter_brain.lexical import LexicalIndex, STOPWORDS, content_words, normalize, words
from dexter_brain.raw import RawStore
from dexter_brain.raw.records import Conversation

logger = logging.getLogger(__name__)

# Words that make a short unlabelled turn refer back to the previous one ("and the other one?").
# "one" alone is left out: "nice one" is thanks, not a question.
_ANAPHORA = frozenset("it its that those them this these other another more else which same there "
                      "he she her his they their him".split())
_MAX_INHERIT_WORDS = 10
BANK_GROUP = "bank"


def build_entity_index(store: RawStore) -> EntityIndex:
    index = EntityIndex((e.name, e.aliases) for e in store.entities)
    for fact in store.facts:
        if fact.entity:
            index.add(fact.entity)
    for triple in store.triples:
        index.add(triple.subject)
    return index


def build_bank(store: RawStore, entities: EntityIndex) -> list[FactRow]:
    """Every stored fact with its entity (explicit, via a triple, or named in its text) and neighbours."""
    subject_of = {t.fact_id: t.subject for t in store.triples if t.fact_id}
    by_message: dict[tuple[str, int], list[str]] = defaultdict(list)
    for fact in store.facts:
        if fact.source_conversation is not None and fact.source_message is not None:
            by_message[(fact.source_conversation, fact.source_message)].append(fact.id)
    rows = []
    for fact in store.facts:
        entity = fact.entity or subject_of.get(fact.id) or entities.main_entity(fact.text)
        neighbours: list[str] = []
        if fact.source_conversation is not None and fact.source_message is not None:
            for offset in (-1, 0, 1):
                key = (fact.source_conversation, fact.source_message + offset)
                neighbours.extend(f for f in by_message.get(key, ()) if f != fact.id)
        rows.append(FactRow(
            id=fact.id, text=fact.text, source=str(fact.provenance), entity=entity, topic=fact.topic,
            created_at=fact.created_at.isoformat() if fact.created_at else None, neighbours=tuple(neighbours),
        ))
    return rows


class _Miner:
    def __init__(self, store: RawStore, settings: CorpusSettings):
        self.store, self.settings = store, settings
        self.entities = build_entity_index(store)
        self.bank = build_bank(store, self.entities)
        self.fact = {f.id: f for f in self.bank}
        self.by_entity: dict[str, list[str]] = defaultdict(list)
        for f in self.bank:
            if f.entity:
                self.by_entity[f.entity].append(f.id)
        self.fact_ids = [f.id for f in self.bank]
        self.position = {f: i for i, f in enumerate(self.fact_ids)}
        self.entity_ids = {e: i for i, e in enumerate(sorted(self.by_entity))}
        self.fact_entity = np.array([self.entity_ids[f.entity] if f.entity else -1 for f in self.bank], dtype=np.int64)
        self.entity_sizes = np.bincount(self.fact_entity[self.fact_entity >= 0], minlength=len(self.entity_ids))
        self.index = LexicalIndex(content_words(f.text) for f in self.bank)
        self.drafts: list[dict] = []  # keyword arguments of the examples, until ``build_examples``

    # --- helpers ---------------------------------------------------------------------------------------
    def entities_of(self, fact_ids) -> set[str]:
        return {self.fact[f].entity for f in fact_ids if f in self.fact and self.fact[f].entity}

    def is_grounded(self, query: str, positives: tuple[str, ...]) -> bool:
        """Whether the query alone names what its positives are about (an entity or their rare words)."""
        if self.entities.mentions(query) & self.entities_of(positives):
            return True
        q = set(content_words(query))
        if not q:
            return False
        fact_words = set()
        for f in positives:
            fact_words.update(content_words(self.fact[f].text))
        shared = q & fact_words
        weight = sum(self.index.idf(w) for w in q) or 1.0
        if not (len(shared) >= 2 and sum(self.index.idf(w) for w in shared) / weight >= 0.5):
            return False
        # The words must also single out the positives' entity: "and the return flight?" names no trip when
        # another trip has a return flight too, so its answer depends on the earlier turns.
        mine = [self.entity_ids[e] for e in self.entities_of(positives)]
        if not mine:
            return True
        if int(self.entity_sizes.sum() - self.entity_sizes[mine].sum()) == 0:
            return True  # no fact of another entity to confuse it with
        scores = self.index.scores(sorted(q))
        best = max(scores[self.position[f]] for f in positives)
        # Scores are never negative, so the best other-entity score is the best among the facts that score
        # at all (0 when none does): no pass over the whole bank per turn.
        hits = np.flatnonzero(scores)
        entity = self.fact_entity[hits]
        others = hits[(entity >= 0) & ~np.isin(entity, mine)]
        return best > (scores[others].max() if others.size else scores.dtype.type(0))

    def add(self, **kw) -> None:
        """Record an example (a conversation turn's difficulty is decided in ``build_examples``)."""
        self.drafts.append(kw)

    def build_examples(self) -> list[MemoryExample]:
        """The examples, from the drafts: a related turn whose query is not grounded on its own is a follow-up."""
        examples = []
        for kw in self.drafts:
            if "related" in kw:
                kw = dict(kw)
                grounded = bool(kw["positives"]) and self.is_grounded(kw["query"], kw["positives"])
                followup = kw.pop("related") and not grounded
                kw["difficulty"] = 2 if followup else (0 if grounded or not kw["positives"] else 1)
                kw["is_followup"] = followup
            examples.append(MemoryExample(**kw))
        return examples

    # --- conversations ---------------------------------------------------------------------------------
    def mine_conversation(self, conv: Conversation, episode: str) -> None:
        history: list[str] = []
        prev_refs: tuple[str, ...] = ()
        turn = 0
        for msg in conv.messages:
            text = msg.content.strip()
            if msg.role == "user" and text:
                refs = tuple(r for r in msg.memory_refs if r in self.fact)
                origin = "memory_refs"
                if not refs and prev_refs and self._refers_back(text):
                    refs, origin = prev_refs, "inherited"
                elif not refs:
                    origin = "no_refs"
                # A follow-up: about what the previous turn was about, and not grounded on its own (decided
                # in ``build_examples``, with the difficulty).
                related = (turn > 0 and bool(refs)
                           and bool(set(refs) & set(prev_refs)
                                    or self.entities_of(refs) & self.entities_of(prev_refs)))
                self.add(
                    id=f"mem:{episode}:{turn}", episode=episode, turn=turn, group=conv.id,
                    source=str(msg.provenance), query=text, positives=refs,
                    context=tuple(history[-self.settings.max_context_turns:]), related=related, origin=origin,
                )
                turn += 1
                if refs:
                    prev_refs = refs
            if text:
                history.append(f"{msg.role}: {text}")

    @staticmethod
    def _refers_back(text: str) -> bool:
        tokens = words(text)
        return 0 < len(tokens) <= _MAX_INHERIT_WORDS and bool(_ANAPHORA & set(tokens))

    # --- generated from the bank (train only) ----------------------------------------------------------
    def mine_generated(self) -> None:
        messages = {(c.id, i): m for c in self.store.conversations for i, m in enumerate(c.messages)}
        for fact in self.store.facts:
            msg = messages.get((fact.source_conversation, fact.source_message))
            if msg is not None and msg.content.strip():
                self.add(id=f"mem:prov:{fact.id}", episode=f"prov:{fact.id}", turn=0, group=BANK_GROUP,
                         difficulty=0, source=str(msg.provenance), query=msg.content.strip(),
                         positives=(fact.id,), origin="provenance")
        seen: set[str] = set()
        for triple in self.store.triples:
            if triple.fact_id not in self.fact:
                continue
            subject = self._surface(triple.subject, triple.fact_id)
            query = f"What is the {' '.join(words(triple.predicate))} of {subject}?"
            if normalize(query) in seen:
                continue
            seen.add(normalize(query))
            self.add(id=f"mem:triple:{triple.fact_id}:{len(seen)}", episode=f"triple:{triple.fact_id}:{len(seen)}",
                     turn=0, group=BANK_GROUP, difficulty=0, source=str(triple.provenance), query=query,
                     positives=(triple.fact_id,), origin="triple")
        for fact in self.bank:
            for k in range(self.settings.pseudo_queries_per_fact):
                query = self._pseudo_query(fact, k)
                if query:
                    self.add(id=f"mem:pseudo:{fact.id}:{k}", episode=f"pseudo:{fact.id}:{k}", turn=0,
                             group=BANK_GROUP, difficulty=0, source=fact.source, query=query,
                             positives=(fact.id,), origin="pseudo")

    def _rng(self, *key: object) -> random.Random:
        digest = hashlib.sha256(repr((self.settings.seed, *key)).encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))

    def _surface(self, name: str, key: str) -> str:
        """The entity's name or one of its aliases, chosen stably."""
        forms = [name, *self.entities.aliases.get(name, [])]
        return self._rng("alias", key).choice(forms)

    def _pseudo_query(self, fact: FactRow, k: int) -> str | None:
        """Inverse cloze: the entity (or an alias) plus a few of the fact's own content words, in order."""
        rng = self._rng("pseudo", fact.id, k)
        entity_words = set(normalize(fact.entity).split()) if fact.entity else set()
        pool = [w for w in content_words(fact.text) if w not in entity_words and w not in STOPWORDS]
        if len(pool) < 2:
            return None
        keep = sorted(rng.sample(range(len(pool)), min(len(pool), rng.randint(2, 4))))
        parts = [pool[i] for i in keep]
        if fact.entity:
            parts.insert(0, self._surface(fact.entity, f"{fact.id}:{k}"))
        return " ".join(parts)


def mine_memory(store: RawStore, settings: CorpusSettings) -> tuple[list[FactRow], list[MemoryExample], EntityIndex]:
    """The memory bank, the memory examples (unsplit) and the entity index."""
    miner = _Miner(store, settings)
    seen: set[str] = set()
    for conv in store.conversations:
        # The same id in two sources (a JSON dump and brain.db history) is kept as two episodes.
        episode = conv.id if conv.id not in seen else f"{conv.id}@{conv.provenance.file}"
        seen.add(conv.id)
        miner.mine_conversation(conv, episode)
    # Conversations with no user turn that references anything carry no memory signal.
    labelled = {d["episode"] for d in miner.drafts if d["positives"]}
    miner.drafts = [d for d in miner.drafts if d["episode"] in labelled]
    if miner.bank:
        miner.mine_generated()
    examples = miner.build_examples()
    logger.info("memory: %d facts, %d examples", len(miner.bank), len(examples))
    return miner.bank, examples, miner.entities

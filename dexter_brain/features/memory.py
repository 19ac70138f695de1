"""Memory inputs: BM25 candidates over the fact bank and the hand-made features of each (query, fact).

The same ``MemoryFeaturizer`` builds the training tensors and serves ``MemoryTRM.retrieve``, so what the
model sees at inference is what it saw in training. Features follow what beat BM25 on real conversational
memory: BM25 score shape, term and IDF-weighted overlap (after spelling correction), entity scoping,
neighbour and entity-group scores, and how often and how similarly past queries referenced the fact.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from dexter_brain.entities import EntityIndex
from dexter_brain.lexical import LexicalIndex, SpellingIndex, content_words, jaccard, normalize, words

CANDIDATE_FEATURES = (
    "bm25_log", "bm25_share", "bm25_z", "bm25_rrank", "overlap", "idf_overlap", "entity_match",
    "entity_partial", "neighbour_bm25", "entity_bm25", "past_count", "past_similarity", "length",
    "recency", "topic_match", "corrected_match", "focus_fact", "focus_entity", "focus_neighbour",
)
# Features that exist only through the conversation's carry (the previous turn's focus): a fresh start
# (or a stateless wrapper) sees them as zero.
CARRY_FEATURES = ("focus_fact", "focus_entity", "focus_neighbour")
FOCUS_CANDIDATES = 24
QUERY_FEATURES = ("length", "bm25_max", "names_entity", "known_share", "corrections", "question")
BM25_CANDIDATES = 24


@dataclass
class QueryView:
    """A query read against the bank: tokens, BM25 scores of every fact and its lexical top list."""

    text: str
    tokens: list[str]
    token_set: set[str]
    corrected: set[str]
    mentions: set[str]
    scores: np.ndarray
    top: np.ndarray
    top_scores: np.ndarray
    query_feats: np.ndarray
    entity_cache: dict = field(default_factory=dict)


class MemoryFeaturizer:
    """The fact bank's lexical side: BM25 index, spelling index, entities and past-query statistics."""

    def __init__(self, facts: Iterable[dict], entities: EntityIndex,
                 past_queries: Iterable[tuple[str, str, Sequence[str]]] = ()):
        self.entities = entities
        self.facts: list[dict] = []
        self.position: dict[str, int] = {}
        self.index = LexicalIndex()
        self.by_entity: dict[str, list[int]] = defaultdict(list)
        self.fact_words: list[set[str]] = []
        for fact in facts:
            self.add_fact(fact)
        self.spelling = SpellingIndex(w for ws in self.fact_words for w in ws)
        for key in entities.canonical:
            for w in key:
                self.spelling.add(w)
        # fact id -> [(episode, content words of a past query that referenced it)]
        self.past: dict[str, list[tuple[str, frozenset[str]]]] = defaultdict(list)
        self.past_rows: list[tuple[str, str, list[str]]] = []
        for episode, query, fact_ids in past_queries:
            self.add_past_query(episode, query, fact_ids)

    # --- the bank --------------------------------------------------------------------------------------
    def add_fact(self, fact: dict) -> int:
        if fact["id"] in self.position:
            raise ValueError(f"fact id {fact['id']!r} is already in the bank")
        i = len(self.facts)
        self.facts.append(dict(fact))
        self.position[fact["id"]] = i
        entity_words = normalize(fact.get("entity") or "").split()
        tokens = content_words(fact["text"]) + [w for w in entity_words if w not in fact["text"].lower()]
        self.fact_words.append(set(tokens))
        self.index.add(tokens)
        if fact.get("entity"):
            self.by_entity[fact["entity"]].append(i)
        if hasattr(self, "spelling"):
            for w in tokens:
                self.spelling.add(w)
        self._recency = None
        return i

    def remove_fact(self, fact_id: str) -> None:
        i = self.position.pop(fact_id)
        self.index.remove(i)
        self.facts[i] = {**self.facts[i], "removed": True}
        entity = self.facts[i].get("entity")
        if entity and i in self.by_entity.get(entity, []):
            self.by_entity[entity].remove(i)

    def add_past_query(self, episode: str, query: str, fact_ids: Sequence[str]) -> None:
        qw = frozenset(content_words(query))
        self.past_rows.append((episode, query, list(fact_ids)))
        for f in fact_ids:
            self.past[f].append((episode, qw))

    @property
    def live(self) -> np.ndarray:
        return self.index.live

    def recency(self) -> np.ndarray:
        if getattr(self, "_recency", None) is None:
            stamps = [f.get("created_at") or "" for f in self.facts]
            known = sorted({s for s in stamps if s})
            rank = {s: (i + 1) / len(known) for i, s in enumerate(known)}
            self._recency = np.array([rank.get(s, 0.5) for s in stamps], dtype=np.float32)
        return self._recency

    # --- reading a query -------------------------------------------------------------------------------
    def view(self, query: str, context: str | None = None) -> QueryView:
        raw = content_words(query)
        tokens, fixed = self.spelling.expand(raw)
        corrected = {t for t, r in zip(tokens, raw) if t != r}
        search = tokens + (content_words(context) if context else [])
        scores = self.index.scores(search)
        top, top_scores = self.index.top_k(search, BM25_CANDIDATES, scores)
        mentions = self.entities.mentions(query)
        known = sum(1 for t in tokens if self.index.known(t))
        query_feats = np.array([
            np.log1p(len(tokens)) / 3, np.log1p(float(top_scores[0]) if len(top_scores) else 0.0) / 3,
            float(bool(mentions)), known / max(len(tokens), 1), fixed / max(len(raw), 1),
            float("?" in query),
        ], dtype=np.float32)
        return QueryView(text=query, tokens=tokens, token_set=set(tokens), corrected=corrected,
                         mentions=mentions, scores=scores, top=top, top_scores=top_scores,
                         query_feats=query_feats)

    def _entity_best(self, view: QueryView, entity: str) -> tuple[int, float, float]:
        """(index of the best-scoring fact, best, second best) BM25 within an entity's facts, per view."""
        cache = view.entity_cache
        if entity not in cache:
            group = self.by_entity.get(entity, [])
            scores = view.scores[group] if group else np.zeros(0, dtype=np.float32)
            if len(scores) == 0:
                cache[entity] = (-1, 0.0, 0.0)
            else:
                order = np.argsort(-scores, kind="stable")[:2]
                second = float(scores[order[1]]) if len(order) > 1 else 0.0
                cache[entity] = (group[int(order[0])], float(scores[order[0]]), second)
        return cache[entity]

    def focus_candidates(self, view: QueryView, focus: Sequence[str]) -> list[int]:
        """The focus facts and the other facts of their entities, best BM25 first (at most FOCUS_CANDIDATES)."""
        chosen = [self.position[f] for f in focus if f in self.position]
        entities = {self.facts[i].get("entity") for i in chosen} - {None}
        same = [i for e in sorted(entities) for i in self.by_entity.get(e, []) if i not in chosen]
        same.sort(key=lambda i: (-float(view.scores[i]), -float(self.recency()[i]), i))
        return (chosen + same)[:FOCUS_CANDIDATES]

    def features(self, view: QueryView, candidates: Sequence[int], exclude_episode: str | None = None,
                 focus: Sequence[str] = ()) -> np.ndarray:
        """(K, F) features of the candidate facts (bank positions) for the query; ``focus`` holds the ids
        of the facts the conversation's previous turn was about (from the carry)."""
        cands = np.asarray(candidates, dtype=np.int64)
        out = np.zeros((len(cands), len(CANDIDATE_FEATURES)), dtype=np.float32)
        if len(cands) == 0:
            return out
        s = view.scores
        sc = s[cands].astype(np.float64)
        best = float(view.top_scores[0]) if len(view.top_scores) else 0.0
        if best > 0:
            mean, std = float(view.top_scores.mean()), float(view.top_scores.std()) + 1e-3
            out[:, 1] = sc / best
            out[:, 2] = (sc - mean) / std / 3
        out[:, 0] = np.log1p(sc) / 3
        rank = {int(i): r for r, i in enumerate(view.top)}
        q = view.token_set
        idf = self.index.idf
        q_idf = sum(idf(t) for t in q) or 1.0
        qwords = set(words(view.text))
        out[:, 13] = self.recency()[cands]
        for row, i in enumerate(cands.tolist()):
            fact = self.facts[i]
            fw = self.fact_words[i]
            shared = q & fw
            entity = fact.get("entity")
            if i in rank:
                out[row, 3] = 1.0 / (1 + rank[i])
            out[row, 4] = len(shared) / max(len(q), 1)
            out[row, 5] = sum(idf(t) for t in shared) / q_idf
            if entity:
                out[row, 6] = float(entity in view.mentions)
                entity_words = normalize(entity).split()
                out[row, 7] = sum(w in qwords for w in entity_words) / max(len(entity_words), 1)
                if best > 0:
                    top_i, top, second = self._entity_best(view, entity)
                    out[row, 9] = (second if top_i == i else top) / best
            if best > 0 and fact.get("neighbours"):
                nb = [self.position[n] for n in fact["neighbours"] if n in self.position]
                out[row, 8] = float(s[nb].max()) / best if nb else 0.0
            past = self.past.get(fact["id"])
            if past:
                past = [qw for ep, qw in past if ep != exclude_episode]
                out[row, 10] = np.log1p(len(past)) / 2
                out[row, 11] = max((jaccard(q, qw) for qw in past), default=0.0)
            out[row, 12] = np.log1p(len(fw)) / 3
            topic = fact.get("topic")
            out[row, 14] = float(bool(topic) and bool(set(normalize(topic).split()) & qwords))
            out[row, 15] = len(view.corrected & fw) / max(len(q), 1)
        if focus:
            focus_pos = {self.position[f] for f in focus if f in self.position}
            focus_entities = [self.facts[i].get("entity") for i in focus_pos]
            focus_neighbours = {self.position[n] for i in focus_pos for n in self.facts[i].get("neighbours", ())
                                if n in self.position}
            for row, i in enumerate(cands.tolist()):
                entity = self.facts[i].get("entity")
                out[row, 16] = float(i in focus_pos)
                out[row, 17] = focus_entities.count(entity) / len(focus_entities) if entity and focus_entities else 0.0
                out[row, 18] = float(i in focus_neighbours)
        return out

    def to_state(self) -> dict:
        """Everything needed to rebuild the featurizer (saved in the memory checkpoint)."""
        return {
            "facts": [f for f in self.facts if not f.get("removed")],
            "entities": self.entities.to_json(),
            "past_queries": [list(r) for r in self.past_rows],
        }

    @classmethod
    def from_state(cls, state: dict) -> "MemoryFeaturizer":
        return cls(state["facts"], EntityIndex.from_json(state["entities"]),
                   [tuple(r) for r in state["past_queries"]])

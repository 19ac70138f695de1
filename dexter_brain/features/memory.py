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
from dexter_brain.features.ragged import Ragged
from dexter_brain.lexical import LexicalIndex, SpellingIndex, content_words, normalize, top_of, words

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
    hits: np.ndarray | None = None
    """Positions of the facts with a positive score, ascending (None: not computed)."""


def _member(sorted_ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Which ``values`` occur in ``sorted_ids`` (a short sorted array)."""
    if len(sorted_ids) == 0:
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_ids, values), len(sorted_ids) - 1)
    return sorted_ids[at] == values


class _Column:
    """A growable integer column (one value per fact or per past query) readable as a numpy array."""

    def __init__(self):
        self._data = np.zeros(64, dtype=np.int64)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def append(self, value: int) -> None:
        if self._size == len(self._data):
            self._data = np.concatenate([self._data, np.zeros_like(self._data)])
        self._data[self._size] = value
        self._size += 1

    @property
    def values(self) -> np.ndarray:
        return self._data[: self._size]


class MemoryFeaturizer:
    """The fact bank's lexical side: BM25 index, spelling index, entities and past-query statistics.

    Besides the per-fact dicts it keeps per-fact arrays (word ids, entity and topic ids, neighbour positions,
    the past queries that used each fact) so ``features`` works over the candidate list with a few numpy
    calls. All of them grow by one row per ``add_fact``: adding a fact never costs the size of the bank.
    """

    def __init__(self, facts: Iterable[dict], entities: EntityIndex,
                 past_queries: Iterable[tuple[str, str, Sequence[str]]] = ()):
        self.entities = entities
        self.facts: list[dict] = []
        self.position: dict[str, int] = {}
        self.index = LexicalIndex()
        self.by_entity: dict[str, list[int]] = defaultdict(list)
        self.fact_words: list[set[str]] = []
        self._word_ids: dict[str, int] = {}
        self._fact_word_ids = Ragged()  # per fact: ids of its words
        self._fact_entity = _Column()  # per fact: entity id, -1 for none
        self._fact_topic = _Column()  # per fact: topic id, -1 for none
        self._fact_length = _Column()  # per fact: number of distinct words
        self._entity_ids: dict[str, int] = {}
        self._entity_words: list[list[str]] = []
        self._entity_length = _Column()  # per entity: number of words of its normalised name
        self._entities_with_word: dict[str, list[int]] = defaultdict(list)  # word -> entities whose name has it
        self._topic_ids: dict[str, int] = {}
        self._topic_words: list[set[str]] = []
        self._neighbours = Ragged()  # per fact: positions of its neighbours now in the bank
        self._cited_by: dict[str, list[int]] = defaultdict(list)  # fact id -> positions naming it a neighbour
        self._positions_of: dict[str, list[int]] = defaultdict(list)  # fact id -> every position it held
        # fact id -> [(episode, content words of a past query that referenced it)]
        self.past: dict[str, list[tuple[str, frozenset[str]]]] = defaultdict(list)
        self.past_rows: list[tuple[str, str, list[str]]] = []
        self._episode_ids: dict[str, int] = {}
        self._past_episode = _Column()  # per past query: episode id
        self._past_length = _Column()  # per past query: number of distinct content words
        self._past_word_ids = Ragged()  # per past query: ids of its content words
        self._past_by_id: dict[str, list[int]] = defaultdict(list)  # fact id -> past queries naming it
        self._fact_past = Ragged()  # per fact: the past queries naming its id
        for fact in facts:
            self.add_fact(fact)
        self.spelling = SpellingIndex(w for ws in self.fact_words for w in ws)
        for key in entities.canonical:
            for w in key:
                self.spelling.add(w)
        for episode, query, fact_ids in past_queries:
            self.add_past_query(episode, query, fact_ids)

    # --- the bank --------------------------------------------------------------------------------------
    def _word_id(self, word: str) -> int:
        wid = self._word_ids.get(word)
        if wid is None:
            wid = self._word_ids[word] = len(self._word_ids)
        return wid

    def add_fact(self, fact: dict) -> int:
        if fact["id"] in self.position:
            raise ValueError(f"fact id {fact['id']!r} is already in the bank")
        i = len(self.facts)
        self.facts.append(dict(fact))
        self.position[fact["id"]] = i
        entity_words = normalize(fact.get("entity") or "").split()
        tokens = content_words(fact["text"]) + [w for w in entity_words if w not in fact["text"].lower()]
        words_set = set(tokens)
        self.fact_words.append(words_set)
        self.index.add(tokens)
        entity = fact.get("entity")
        if entity:
            self.by_entity[entity].append(i)
        if hasattr(self, "spelling"):
            for w in tokens:
                self.spelling.add(w)
        self._recency = None
        self._fact_word_ids.append(sorted(self._word_id(w) for w in words_set))
        self._fact_length.append(len(words_set))
        self._fact_entity.append(self._entity_id(entity) if entity else -1)
        topic = fact.get("topic")
        if topic and topic not in self._topic_ids:
            self._topic_ids[topic] = len(self._topic_words)
            self._topic_words.append(set(normalize(topic).split()))
        self._fact_topic.append(self._topic_ids[topic] if topic else -1)
        self._positions_of[fact["id"]].append(i)
        for n in fact.get("neighbours") or ():
            self._cited_by[n].append(i)
        self._neighbours.append(self._resolve_neighbours(i))
        # Facts that named this id as a neighbour can reach it now.
        for j in self._cited_by.get(fact["id"], ()):
            if j != i:
                self._neighbours.replace(j, self._resolve_neighbours(j))
        self._fact_past.append(self._past_by_id.get(fact["id"], ()))
        return i

    def _entity_id(self, entity: str) -> int:
        eid = self._entity_ids.get(entity)
        if eid is None:
            eid = self._entity_ids[entity] = len(self._entity_words)
            entity_words = normalize(entity).split()
            self._entity_words.append(entity_words)
            self._entity_length.append(len(entity_words))
            for w in entity_words:  # once per occurrence: a repeated word counts twice
                self._entities_with_word[w].append(eid)
        return eid

    def _resolve_neighbours(self, i: int) -> list[int]:
        return [self.position[n] for n in self.facts[i].get("neighbours") or () if n in self.position]

    def remove_fact(self, fact_id: str) -> None:
        i = self.position.pop(fact_id)
        self.index.remove(i)
        self.facts[i] = {**self.facts[i], "removed": True}
        entity = self.facts[i].get("entity")
        if entity and i in self.by_entity.get(entity, []):
            self.by_entity[entity].remove(i)
        for j in self._cited_by.get(fact_id, ()):
            self._neighbours.replace(j, self._resolve_neighbours(j))

    def add_past_query(self, episode: str, query: str, fact_ids: Sequence[str]) -> None:
        qw = frozenset(content_words(query))
        self.past_rows.append((episode, query, list(fact_ids)))
        k = len(self._past_length)
        if episode not in self._episode_ids:
            self._episode_ids[episode] = len(self._episode_ids)
        self._past_episode.append(self._episode_ids[episode])
        self._past_length.append(len(qw))
        self._past_word_ids.append(sorted(self._word_id(w) for w in qw))
        for f in fact_ids:
            self.past[f].append((episode, qw))
            self._past_by_id[f].append(k)
        for f in dict.fromkeys(fact_ids):
            for i in self._positions_of.get(f, ()):
                self._fact_past.replace(i, self._past_by_id[f])

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
        hits = np.flatnonzero(scores > 0)  # the facts that score at all (BM25 scores are never negative)
        top, top_scores = top_of(scores, hits, BM25_CANDIDATES)
        mentions = self.entities.mentions(query)
        known = sum(1 for t in tokens if self.index.known(t))
        query_feats = np.array([
            np.log1p(len(tokens)) / 3, np.log1p(float(top_scores[0]) if len(top_scores) else 0.0) / 3,
            float(bool(mentions)), known / max(len(tokens), 1), fixed / max(len(raw), 1),
            float("?" in query),
        ], dtype=np.float32)
        return QueryView(text=query, tokens=tokens, token_set=set(tokens), corrected=corrected,
                         mentions=mentions, scores=scores, top=top, top_scores=top_scores,
                         query_feats=query_feats, hits=hits)

    def _entity_best(self, view: QueryView, entities: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each entity id (arrays over all entity ids, filled for ``entities``): the position of its
        best-scoring fact (-1 when none scores), the best and the second best BM25 among its facts."""
        n = len(self._entity_words)
        top_i, top, second = np.full(n, -1, dtype=np.int64), np.zeros(n), np.zeros(n)
        hits = view.hits if view.hits is not None else np.flatnonzero(view.scores > 0)
        wanted = np.zeros(n + 1, dtype=bool)  # the last slot stands for "no entity"
        wanted[entities] = True
        entity = self._fact_entity.values[hits]
        keep = wanted[entity]
        hits, entity = hits[keep], entity[keep]
        if len(hits):
            scores = view.scores[hits]
            # Entity, then score descending, then position: an entity's first row is its best fact (ties
            # to the earlier fact, as a stable sort of the entity's facts gives).
            order = np.lexsort((hits, -scores, entity))
            hits, entity, scores = hits[order], entity[order], scores[order]
            first = np.flatnonzero(np.concatenate(([True], entity[1:] != entity[:-1])))
            top_i[entity[first]] = hits[first]
            top[entity[first]] = scores[first]
            has_second = first + 1 < len(entity)
            has_second[has_second] = entity[first[has_second] + 1] == entity[first[has_second]]
            second[entity[first[has_second]]] = scores[first[has_second] + 1]
        return top_i, top, second

    def focus_candidates(self, view: QueryView, focus: Sequence[str]) -> list[int]:
        """The focus facts and the other facts of their entities, best BM25 first (at most FOCUS_CANDIDATES)."""
        chosen = [self.position[f] for f in focus if f in self.position]
        entities = {self.facts[i].get("entity") for i in chosen} - {None}
        same = [i for e in sorted(entities) for i in self.by_entity.get(e, []) if i not in chosen]
        if not same:
            return chosen[:FOCUS_CANDIDATES]
        same = np.array(same, dtype=np.int64)
        # Best BM25 first, then the most recent, then the earliest position.
        same = same[np.lexsort((same, -self.recency()[same], -view.scores[same]))]
        return (chosen + same[: max(FOCUS_CANDIDATES - len(chosen), 0)].tolist())[:FOCUS_CANDIDATES]

    def features(self, view: QueryView, candidates: Sequence[int], exclude_episode: str | None = None,
                 focus: Sequence[str] = ()) -> np.ndarray:
        """(K, F) features of the candidate facts (bank positions) for the query; ``focus`` holds the ids
        of the facts the conversation's previous turn was about (from the carry)."""
        cands = np.asarray(candidates, dtype=np.int64).reshape(-1)
        K = len(cands)
        out = np.zeros((K, len(CANDIDATE_FEATURES)), dtype=np.float32)
        if K == 0:
            return out
        s = view.scores
        sc = s[cands].astype(np.float64)
        best = float(view.top_scores[0]) if len(view.top_scores) else 0.0
        if best > 0:
            mean, std = float(view.top_scores.mean()), float(view.top_scores.std()) + 1e-3
            out[:, 1] = sc / best
            out[:, 2] = (sc - mean) / std / 3
        out[:, 0] = np.log1p(sc) / 3
        # bm25_rrank: 1 / (1 + rank) in BM25's top list.
        if len(view.top):
            in_top = cands[:, None] == view.top[None, :]
            is_top = in_top.any(axis=1)
            out[is_top, 3] = 1.0 / (1.0 + in_top[is_top].argmax(axis=1))
        q = view.token_set
        idf = self.index.idf
        q_idf = sum(idf(t) for t in q) or 1.0
        qwords = set(words(view.text))
        n_q = max(len(q), 1)
        out[:, 13] = self.recency()[cands]
        # Word overlap: the candidates' word ids against the query's.
        word_ids, owner = self._fact_word_ids.gather(cands)
        q_known = sorted((self._word_ids[t], t) for t in q if t in self._word_ids)
        q_ids = np.array([w for w, _ in q_known], dtype=np.int64)
        if q_known and len(word_ids):
            q_weight = np.array([idf(t) for _, t in q_known], dtype=np.float64)
            at = np.minimum(np.searchsorted(q_ids, word_ids), len(q_ids) - 1)
            shared = q_ids[at] == word_ids  # the candidate word is one of the query's
            out[:, 4] = np.bincount(owner[shared], minlength=K) / n_q
            out[:, 5] = np.bincount(owner[shared], weights=q_weight[at[shared]], minlength=K) / q_idf
            if view.corrected:
                fixed = np.array(sorted(self._word_ids[t] for t in view.corrected if t in self._word_ids),
                                 dtype=np.int64)
                out[:, 15] = np.bincount(owner[_member(fixed, word_ids)], minlength=K) / n_q
        out[:, 12] = np.log1p(self._fact_length.values[cands].astype(np.float64)) / 3
        # Entities: named in the query, partly named, and the best score among the entity's facts.
        entity = self._fact_entity.values[cands]
        has_entity = entity >= 0
        if has_entity.any():
            rows = np.flatnonzero(has_entity)
            ents = entity[rows]
            n = len(self._entity_words)
            mentioned = np.zeros(n)
            mentioned[[self._entity_ids[m] for m in view.mentions if m in self._entity_ids]] = 1.0
            out[rows, 6] = mentioned[ents]
            named = np.zeros(n)
            for w in qwords:
                for e in self._entities_with_word.get(w, ()):
                    named[e] += 1
            out[rows, 7] = named[ents] / np.maximum(self._entity_length.values[ents], 1)
            if best > 0:
                top_i, top, second = self._entity_best(view, ents)
                out[rows, 9] = np.where(top_i[ents] == cands[rows], second[ents], top[ents]) / best
        if best > 0:
            neighbours, nb_owner = self._neighbours.gather(cands)
            if len(neighbours):
                rows = np.unique(nb_owner)
                starts = np.searchsorted(nb_owner, rows)
                out[rows, 8] = np.maximum.reduceat(s[neighbours], starts).astype(np.float64) / best
        # Past queries that referenced each candidate (leaving out the example's own conversation).
        past, past_owner = self._fact_past.gather(cands)
        if len(past):
            if exclude_episode is not None and exclude_episode in self._episode_ids:
                keep = self._past_episode.values[past] != self._episode_ids[exclude_episode]
                past, past_owner = past[keep], past_owner[keep]
            has_past = self._fact_past.lengths(cands) > 0
            out[has_past, 10] = np.log1p(np.bincount(past_owner, minlength=K)[has_past].astype(np.float64)) / 2
            if len(past) and q:
                shared = np.zeros(len(past), dtype=np.float64)
                if q_known:
                    past_words, word_owner = self._past_word_ids.gather(past)
                    shared = np.bincount(word_owner[_member(q_ids, past_words)], minlength=len(past)).astype(
                        np.float64)
                sizes = self._past_length.values[past]
                union = len(q) + sizes - shared
                similarity = np.divide(shared, union, out=np.zeros(len(past)), where=sizes > 0)
                best_similarity = np.zeros(K, dtype=np.float64)
                np.maximum.at(best_similarity, past_owner, similarity)
                out[:, 11] = best_similarity
        # Topic named in the query.
        topic = self._fact_topic.values[cands]
        rows = np.flatnonzero(topic >= 0)
        if len(rows):
            named = {t: float(bool(self._topic_words[t] & qwords)) for t in set(topic[rows].tolist())}
            out[rows, 14] = [named[t] for t in topic[rows].tolist()]
        if focus:
            focus_pos = {self.position[f] for f in focus if f in self.position}
            focus_neighbours = {self.position[n] for i in focus_pos for n in self.facts[i].get("neighbours", ())
                                if n in self.position}
            cand_list = cands.tolist()
            out[:, 16] = [i in focus_pos for i in cand_list]
            out[:, 18] = [i in focus_neighbours for i in cand_list]
            if focus_pos:
                # Share of the focus facts about the candidate's entity.
                focus_entity = self._fact_entity.values[list(focus_pos)]
                rows = np.flatnonzero(has_entity)
                same = (entity[rows, None] == focus_entity[None, :]).sum(axis=1)
                out[rows, 17] = same / len(focus_pos)
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

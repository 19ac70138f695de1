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
FOCUS_CANDIDATES = 64
QUERY_FEATURES = ("length", "bm25_max", "names_entity", "known_share", "corrections", "question")
BM25_CANDIDATES = 64


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


def _lookup(sorted_keys: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which ``keys`` occur in ``sorted_keys``, and where (valid where found)."""
    if len(sorted_keys) == 0:
        return np.zeros(len(keys), dtype=bool), np.zeros(len(keys), dtype=np.int64)
    at = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return sorted_keys[at] == keys, at


def _scores_at(views: Sequence[QueryView], query: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """BM25 scores of bank positions, each under its own query (``query`` sorted ascending)."""
    out = np.empty(len(positions), dtype=np.float32)
    cuts = np.searchsorted(query, np.arange(len(views) + 1))
    for b in np.flatnonzero(np.diff(cuts)).tolist():
        out[cuts[b]:cuts[b + 1]] = views[b].scores[positions[cuts[b]:cuts[b + 1]]]
    return out


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
                 past_queries: Iterable[tuple[str, str, Sequence[str]]] = (), *, index=None):
        """``index``: the lexical index the facts' scores come from, positions aligned with ``facts``: a
        ``BankIndex`` over the ``MemoryBank`` that holds them (the corpus build and the wrappers), or None for
        an in-memory ``LexicalIndex`` built here. With a bank, ``facts`` are its rows, removed ones included
        (``removed`` set), so that positions agree."""
        self.entities = entities
        self.facts: list[dict] = []
        self.position: dict[str, int] = {}
        self.index = index if index is not None else LexicalIndex()
        self.by_entity: dict[str, list[int]] = defaultdict(list)
        self.fact_words: list[set[str]] = []
        self._word_ids: dict[str, int] = {}
        self._fact_word_ids = Ragged()  # per fact: ids of its words
        self._fact_entity = _Column()  # per fact: entity id, -1 for none
        self._fact_topic = _Column()  # per fact: topic id, -1 for none
        self._fact_length = _Column()  # per fact: number of distinct words
        self._entity_ids: dict[str, int] = {}
        self._entity_words: list[str] = []  # entity id -> name
        self._entity_word_ids = Ragged()  # per entity: ids of the words of its normalised name (repeats kept)
        self._entity_facts = Ragged()  # per entity: positions of its facts (``by_entity``), refreshed lazily
        self._stale_entities: set[int] = set()  # entities whose row of ``_entity_facts`` is out of date
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
        removed = []  # positions of removed facts, forgotten once every position is there
        for fact in facts:
            if fact.get("removed"):
                removed.append(len(self.facts))
                fact = {**fact, "id": f"\0removed:{len(self.facts)}"}  # holds the position only
            self._add(fact, indexed=index is not None)
        for i in removed:
            self._forget(i)
        self.spelling = SpellingIndex(w for i, ws in enumerate(self.fact_words) if not self.facts[i].get("removed")
                                      for w in ws)
        for key in entities.canonical:
            for w in key:
                self.spelling.add(w)
        for episode, query, fact_ids in past_queries:
            self.add_past_query(episode, query, fact_ids)
        self._refresh_entities()

    def _refresh_entities(self) -> None:
        """Bring ``_entity_facts`` up to date with ``by_entity`` for the entities changed since."""
        for e in self._stale_entities:
            self._entity_facts.replace(e, self.by_entity.get(self._entity_words[e], ()))
        self._stale_entities.clear()

    # --- the bank --------------------------------------------------------------------------------------
    def _word_id(self, word: str) -> int:
        wid = self._word_ids.get(word)
        if wid is None:
            wid = self._word_ids[word] = len(self._word_ids)
        return wid

    def add_fact(self, fact: dict) -> int:
        """Index a new fact (with a bank index: the one the bank has just stored) and return its position."""
        return self._add(fact, indexed=False)

    def _add(self, fact: dict, indexed: bool) -> int:
        """``indexed``: the lexical index already holds the fact (a bank's rows at construction)."""
        if fact["id"] in self.position:
            raise ValueError(f"fact id {fact['id']!r} is already in the bank")
        i = len(self.facts)
        self.facts.append(dict(fact))
        self.position[fact["id"]] = i
        entity_words = normalize(fact.get("entity") or "").split()
        tokens = content_words(fact["text"]) + [w for w in entity_words if w not in fact["text"].lower()]
        words_set = set(tokens)
        self.fact_words.append(words_set)
        if not indexed:
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
            self._entity_words.append(entity)
            self._entity_word_ids.append([self._word_id(w) for w in normalize(entity).split()])
            self._entity_facts.append(())
        self._stale_entities.add(eid)
        return eid

    def _resolve_neighbours(self, i: int) -> list[int]:
        return [self.position[n] for n in self.facts[i].get("neighbours") or () if n in self.position]

    def remove_fact(self, fact_id: str) -> None:
        """Forget a fact (with a bank index: one the bank has just removed)."""
        i = self.position[fact_id]
        self.index.remove(i)
        self._forget(i)

    def _forget(self, i: int) -> None:
        fact_id = self.facts[i]["id"]
        self.position.pop(fact_id)
        self.facts[i] = {**self.facts[i], "removed": True}
        entity = self.facts[i].get("entity")
        if entity and i in self.by_entity.get(entity, []):
            self.by_entity[entity].remove(i)
            self._stale_entities.add(self._entity_ids[entity])
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

    def neighbours_of(self, position: int) -> list[int]:
        """Bank positions of a fact's stored neighbours (adjacent turns of its session)."""
        values, _ = self._neighbours.gather(np.array([position], dtype=np.int64))
        return values.tolist()

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
        return self.features_batch([view], [candidates], [exclude_episode], [focus])[0]

    def features_batch(self, views: Sequence[QueryView], candidates: Sequence[Sequence[int]],
                       exclude_episodes: Sequence[str | None] | None = None,
                       focus: Sequence[Sequence[str]] | None = None) -> list[np.ndarray]:
        """``features`` of several queries at once: the same numbers, computed over all their candidates
        together (a few numpy calls per batch instead of per query)."""
        B = len(views)
        exclude_episodes = exclude_episodes if exclude_episodes is not None else [None] * B
        focus = focus if focus is not None else [()] * B
        cands = [np.asarray(c, dtype=np.int64).reshape(-1) for c in candidates]
        lengths = np.array([len(c) for c in cands], dtype=np.int64)
        bounds = np.concatenate([[0], np.cumsum(lengths)])
        out = np.zeros((int(bounds[-1]), len(CANDIDATE_FEATURES)), dtype=np.float32)
        if len(out):
            self._fill_features(out, views, cands, bounds, exclude_episodes, focus)
        return [out[bounds[b]:bounds[b + 1]] for b in range(B)]

    def _fill_features(self, out: np.ndarray, views: Sequence[QueryView], cands: list[np.ndarray],
                       bounds: np.ndarray, exclude_episodes: Sequence[str | None],
                       focus: Sequence[Sequence[str]]) -> None:
        B, R, N = len(views), len(out), len(self.facts)
        rows = np.concatenate(cands)  # (R,) bank positions
        query_of = np.repeat(np.arange(B), np.diff(bounds))  # (R,) which query each row belongs to
        idf = self.index.idf
        # Per query: BM25 scale, query words (ids and IDF), entities named, the words of the whole text.
        best, mean, std = np.zeros(B), np.zeros(B), np.ones(B)
        q_size, q_idf = np.zeros(B), np.ones(B)
        sc = np.empty(R, dtype=np.float64)
        q_keys, q_weights, fixed_keys, mention_keys, text_keys, excluded = [], [], [], [], [], []
        top_keys, top_ranks = [], []
        V, E = len(self._word_ids) + 1, len(self._entity_words) + 1
        for b, view in enumerate(views):
            sc[bounds[b]:bounds[b + 1]] = view.scores[cands[b]]
            if len(view.top_scores):
                best[b] = float(view.top_scores[0])
            if best[b] > 0:
                mean[b], std[b] = float(view.top_scores.mean()), float(view.top_scores.std()) + 1e-3
            top_keys.append(b * N + view.top)
            top_ranks.append(np.arange(len(view.top)))
            q = view.token_set
            q_size[b] = len(q)
            q_idf[b] = sum(idf(t) for t in q) or 1.0
            known = sorted((self._word_ids[t], t) for t in q if t in self._word_ids)
            q_keys += [b * V + w for w, _ in known]
            q_weights += [idf(t) for _, t in known]
            fixed_keys += sorted(b * V + self._word_ids[t] for t in view.corrected if t in self._word_ids)
            mention_keys += sorted(b * E + self._entity_ids[m] for m in view.mentions if m in self._entity_ids)
            text_keys += sorted(b * V + self._word_ids[w] for w in set(words(view.text)) if w in self._word_ids)
            episode = exclude_episodes[b]
            excluded.append(self._episode_ids.get(episode, -1) if episode is not None else -1)
        q_keys, q_weights = np.array(q_keys, dtype=np.int64), np.array(q_weights, dtype=np.float64)
        has_best = (best > 0)[query_of]
        # BM25 score shape.
        out[:, 0] = np.log1p(sc) / 3
        out[has_best, 1] = sc[has_best] / best[query_of][has_best]
        out[has_best, 2] = (sc[has_best] - mean[query_of][has_best]) / std[query_of][has_best] / 3
        top_keys, top_ranks = np.concatenate(top_keys), np.concatenate(top_ranks)
        order = np.argsort(top_keys)
        found, at = _lookup(top_keys[order], query_of * N + rows)
        out[found, 3] = 1.0 / (1.0 + top_ranks[order][at[found]])
        # Word overlap with the query (plain, IDF-weighted, and through spelling corrections).
        word_ids, owner = self._fact_word_ids.gather(rows)
        keys = query_of[owner] * V + word_ids
        shared, at = _lookup(q_keys, keys)
        out[:, 4] = np.bincount(owner[shared], minlength=R) / np.maximum(q_size, 1)[query_of]
        out[:, 5] = np.bincount(owner[shared], weights=q_weights[at[shared]], minlength=R) / q_idf[query_of]
        if fixed_keys:
            corrected, _ = _lookup(np.array(fixed_keys, dtype=np.int64), keys)
            out[:, 15] = np.bincount(owner[corrected], minlength=R) / np.maximum(q_size, 1)[query_of]
        out[:, 12] = np.log1p(self._fact_length.values[rows].astype(np.float64)) / 3
        out[:, 13] = self.recency()[rows]
        # Entities: named in the query, partly named, and the best BM25 among the entity's facts.
        entity = self._fact_entity.values[rows]
        with_entity = np.flatnonzero(entity >= 0)
        if len(with_entity):
            pair_keys = query_of[with_entity] * E + entity[with_entity]
            pairs, pair_of = np.unique(pair_keys, return_inverse=True)  # (query, entity) pairs
            pair_query, pair_entity = pairs // E, pairs % E
            named, _ = _lookup(np.array(mention_keys, dtype=np.int64), pairs)
            out[with_entity, 6] = named[pair_of]
            name_ids, name_owner = self._entity_word_ids.gather(pair_entity)
            in_text, _ = _lookup(np.array(text_keys, dtype=np.int64), pair_query[name_owner] * V + name_ids)
            name_len = np.maximum(self._entity_word_ids.lengths(pair_entity), 1)
            out[with_entity, 7] = (np.bincount(name_owner[in_text], minlength=len(pairs)) / name_len)[pair_of]
            scored = (best > 0)[pair_query]
            if scored.any():
                top_i, top, second = self._entity_best(views, pair_query, pair_entity, scored)
                keep = scored[pair_of]
                p, i = pair_of[keep], rows[with_entity[keep]]
                out[with_entity[keep], 9] = np.where(top_i[p] == i, second[p], top[p]) / best[pair_query[p]]
        # The best BM25 among the candidate's neighbours.
        neighbours, nb_owner = self._neighbours.gather(rows)
        keep = has_best[nb_owner]
        neighbours, nb_owner = neighbours[keep], nb_owner[keep]
        if len(neighbours):
            nb_scores = _scores_at(views, query_of[nb_owner], neighbours)
            starts = np.flatnonzero(np.concatenate(([True], nb_owner[1:] != nb_owner[:-1])))
            with_nb = nb_owner[starts]
            out[with_nb, 8] = np.maximum.reduceat(nb_scores, starts).astype(np.float64) / best[query_of[with_nb]]
        # Past queries that referenced each candidate (leaving out the example's own conversation).
        past, past_owner = self._fact_past.gather(rows)
        if len(past):
            excluded = np.array(excluded, dtype=np.int64)[query_of]
            keep = self._past_episode.values[past] != excluded[past_owner]
            past, past_owner = past[keep], past_owner[keep]
            has_past = self._fact_past.lengths(rows) > 0
            out[has_past, 10] = np.log1p(np.bincount(past_owner, minlength=R)[has_past].astype(np.float64)) / 2
            has_q = (q_size > 0)[query_of[past_owner]]
            past, past_owner = past[has_q], past_owner[has_q]
            if len(past):
                past_words, word_owner = self._past_word_ids.gather(past)
                hit, _ = _lookup(q_keys, query_of[past_owner][word_owner] * V + past_words)
                shared = np.bincount(word_owner[hit], minlength=len(past)).astype(np.float64)
                sizes = self._past_length.values[past]
                union = q_size[query_of[past_owner]] + sizes - shared
                similarity = np.divide(shared, union, out=np.zeros(len(past)), where=sizes > 0)
                best_similarity = np.zeros(R, dtype=np.float64)
                np.maximum.at(best_similarity, past_owner, similarity)
                out[:, 11] = best_similarity
        # Topic named in the query.
        topic = self._fact_topic.values[rows]
        with_topic = np.flatnonzero(topic >= 0)
        if len(with_topic):
            T = len(self._topic_words) + 1
            pairs, pair_of = np.unique(query_of[with_topic] * T + topic[with_topic], return_inverse=True)
            text_words = [set(words(view.text)) for view in views]
            named = [float(bool(self._topic_words[p % T] & text_words[p // T])) for p in pairs.tolist()]
            out[with_topic, 14] = np.array(named)[pair_of]
        for b in range(B):
            if focus[b]:
                self._focus_features(out[bounds[b]:bounds[b + 1]], cands[b], focus[b])

    def _entity_best(self, views: Sequence[QueryView], pair_query: np.ndarray, pair_entity: np.ndarray,
                     scored: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each (query, entity) pair: the position of the entity's best-scoring fact, its score and the
        second best score (ties to the earlier fact, as a stable sort of the entity's facts gives)."""
        self._refresh_entities()
        n = len(pair_query)
        top_i, top, second = np.full(n, -1, dtype=np.int64), np.zeros(n), np.zeros(n)
        wanted = np.flatnonzero(scored)
        facts, owner = self._entity_facts.gather(pair_entity[wanted])
        if len(facts):
            scores = _scores_at(views, pair_query[wanted][owner], facts).astype(np.float64)
            starts = np.flatnonzero(np.concatenate(([True], owner[1:] != owner[:-1])))
            groups = wanted[owner[starts]]
            best = np.maximum.reduceat(scores, starts)
            group_of = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(owner))))
            reaching = np.flatnonzero(scores == best[group_of])
            _, earliest = np.unique(group_of[reaching], return_index=True)
            first = reaching[earliest]  # per group, the first (earliest) fact with the best score
            top_i[groups], top[groups] = facts[first], best
            rest = scores.copy()
            rest[first] = -1.0
            runner_up = np.maximum.reduceat(rest, starts)
            second[groups] = np.maximum(runner_up, 0.0)
        return top_i, top, second

    def _focus_features(self, out: np.ndarray, cands: np.ndarray, focus: Sequence[str]) -> None:
        """The carry columns: is the candidate a focus fact, about a focus entity, next to a focus fact."""
        focus_pos = {self.position[f] for f in focus if f in self.position}
        focus_neighbours = {self.position[n] for i in focus_pos for n in self.facts[i].get("neighbours", ())
                            if n in self.position}
        cand_list = cands.tolist()
        out[:, 16] = [i in focus_pos for i in cand_list]
        out[:, 18] = [i in focus_neighbours for i in cand_list]
        if focus_pos:
            # Share of the focus facts about the candidate's entity.
            entity = self._fact_entity.values[cands]
            focus_entity = self._fact_entity.values[list(focus_pos)]
            rows = np.flatnonzero(entity >= 0)
            same = (entity[rows, None] == focus_entity[None, :]).sum(axis=1)
            out[rows, 17] = same / len(focus_pos)

    def to_state(self) -> dict:
        """Everything needed to rebuild the featurizer (saved in the memory checkpoint)."""
        return {
            "facts": [f for f in self.facts if not f.get("removed")],
            "entities": self.entities.to_json(),
            "past_queries": [list(r) for r in self.past_rows],
        }

    @classmethod
    def from_state(cls, state: dict, bank=None) -> "MemoryFeaturizer":
        """Rebuild from ``to_state``; with a ``MemoryBank``, its facts (and FTS5 index) replace the state's."""
        past = [tuple(r) for r in state["past_queries"]]
        entities = EntityIndex.from_json(state["entities"])
        if bank is None:
            return cls(state["facts"], entities, past)
        from dexter_brain.bank.index import BankIndex

        facts = [{**r.fact, "removed": True} if r.is_removed else r.fact for r in bank.rows()]
        return cls(facts, entities, past, index=BankIndex(bank))

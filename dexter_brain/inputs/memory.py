"""``MemoryInputs``: the one path from (query, conversation state) to the memory TRM's inputs.

Candidate facts come, in this order, from BM25 over the bank, the conversation's focus (the facts its
previous turn was about, and their entities' other facts), the entities the query names, the stored
neighbours of BM25's best facts (the adjacent turns of the same session), and BM25 over the query
expanded with the conversation's previous query. Each candidate gets the featurizer's features plus
which of these sources found it and its score under the expanded query.

The corpus build (``tensorize_memory``) and ``MemoryTRM`` both call ``MemoryInputs.rows``: a validation
row's tensors are exactly what the wrapper computes for the same query and state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from dexter_brain.features import memory as mem_features
from dexter_brain.features.common import Encoder, fact_text, memory_query_text
from dexter_brain.features.memory import MemoryFeaturizer, QueryView
from dexter_brain.inputs.common import episode_columns
from dexter_brain.lexical import content_words, top_of
from dexter_brain.schema import MemoryExample

SOURCE_FEATURES = ("from_bm25", "from_focus", "from_entity", "from_neighbour", "from_expansion",
                   "expanded_share")
CANDIDATE_FEATURES = mem_features.CANDIDATE_FEATURES + SOURCE_FEATURES
QUERY_FEATURES = mem_features.QUERY_FEATURES
CARRY_FEATURES = mem_features.CARRY_FEATURES + ("from_focus", "from_expansion", "expanded_share")
"""Columns that only a conversation's state (focus, previous query) fills: a fresh start sees them as a
query without history would (``expanded_share`` then equals ``bm25_share``)."""
BASELINE_FEATURE = CANDIDATE_FEATURES.index("bm25_log")
"""The floor that needs no labels: BM25's own score."""

FOCUS_SIZE = 3
"""Facts of an answer that become the conversation's focus (its top 3)."""
FOCUS_CANDIDATES = 24
ENTITY_CANDIDATES = 16
NEIGHBOURS_OF_TOP = 8
EXPANSION_CANDIDATES = 16
MAX_CANDIDATES = 128
_COL = {name: i for i, name in enumerate(CANDIDATE_FEATURES)}
_BASE = len(mem_features.CANDIDATE_FEATURES)


@dataclass(frozen=True)
class MemoryState:
    """What a conversation's carry gives the inputs of its next turn."""

    focus: tuple[str, ...] = ()
    """Ids of the facts the previous answer was about (its ``FOCUS_SIZE`` best)."""
    last_query: str | None = None
    """The conversation's previous query (expands the lexical search)."""


@dataclass
class MemoryRow:
    """One query's inputs: candidate bank positions and their (K, F) features."""

    view: QueryView
    candidates: list[int]
    feats: np.ndarray
    query_feats: np.ndarray


class MemoryInputs:
    """Candidates and features of memory queries over one ``MemoryFeaturizer`` bank."""

    def __init__(self, featurizer: MemoryFeaturizer):
        self.featurizer = featurizer

    # --- candidates -------------------------------------------------------------------------------------
    def _candidates(self, view: QueryView, expanded: np.ndarray | None, state: MemoryState
                    ) -> tuple[list[int], np.ndarray]:
        """Candidate positions (live facts only, at most MAX_CANDIDATES) and their (K, 5) source flags."""
        fz = self.featurizer
        live = fz.live
        sources: dict[int, list[float]] = {}
        order: list[int] = []

        def take(positions, column: int, limit: int | None = None) -> None:
            taken = 0
            for i in positions:
                i = int(i)
                if not live[i]:
                    continue
                if i not in sources:
                    if len(order) >= MAX_CANDIDATES:
                        return
                    sources[i] = [0.0] * 5
                    order.append(i)
                sources[i][column] = 1.0
                taken += 1
                if limit is not None and taken >= limit:
                    return

        take(view.top, 0)
        take(fz.focus_candidates(view, state.focus)[:FOCUS_CANDIDATES], 1)
        entity_facts = [i for e in sorted(view.mentions) for i in fz.by_entity.get(e, ())]
        if entity_facts:
            ranked = np.array(entity_facts, dtype=np.int64)
            ranked = ranked[np.lexsort((ranked, -fz.recency()[ranked], -view.scores[ranked]))]
            take(ranked, 2, ENTITY_CANDIDATES)
        neighbours = [n for i in view.top[:NEIGHBOURS_OF_TOP].tolist() for n in fz.neighbours_of(i)]
        take(neighbours, 3)
        if expanded is not None:
            top, _ = top_of(expanded, np.flatnonzero(expanded > 0), EXPANSION_CANDIDATES)
            take(top, 4)
        return order, np.array([sources[i] for i in order], dtype=np.float32).reshape(len(order), 5)

    # --- rows -------------------------------------------------------------------------------------------
    def rows(self, queries: Sequence[str], states: Sequence[MemoryState], contexts: Sequence[str | None] | None = None,
             exclude_episodes: Sequence[str | None] | None = None) -> list[MemoryRow]:
        """The inputs of several queries (each with its conversation state); ``exclude_episodes`` leaves a
        training row's own conversation out of the past-query features."""
        fz = self.featurizer
        n = len(queries)
        contexts = contexts if contexts is not None else [None] * n
        views = [fz.view(q, c) for q, c in zip(queries, contexts)]
        expanded = [self._expanded(v, s) for v, s in zip(views, states)]
        picked = [self._candidates(v, e, s) for v, e, s in zip(views, expanded, states)]
        base = fz.features_batch(views, [c for c, _ in picked], exclude_episodes, [s.focus for s in states])
        out = []
        for view, exp, (cands, flags), feats in zip(views, expanded, picked, base):
            full = np.zeros((len(cands), len(CANDIDATE_FEATURES)), dtype=np.float32)
            full[:, :_BASE] = feats
            full[:, _BASE:_BASE + 5] = flags
            if exp is None:
                full[:, _COL["expanded_share"]] = feats[:, mem_features.CANDIDATE_FEATURES.index("bm25_share")]
            elif len(cands):
                top = float(exp.max())
                full[:, _COL["expanded_share"]] = exp[cands] / top if top > 0 else 0.0
            out.append(MemoryRow(view=view, candidates=cands, feats=full, query_feats=view.query_feats))
        return out

    def _expanded(self, view: QueryView, state: MemoryState) -> np.ndarray | None:
        """BM25 of every fact under the query plus the previous query's words (None without one)."""
        if not state.last_query:
            return None
        extra = [w for w in content_words(state.last_query) if w not in view.token_set]
        if not extra:
            return None
        return self.featurizer.index.scores(view.tokens + extra)

    @staticmethod
    def next_state(query: str, ranked_ids: Sequence[str]) -> MemoryState:
        """The state a turn leaves: its answer's best facts and its query."""
        return MemoryState(focus=tuple(ranked_ids[:FOCUS_SIZE]), last_query=query)

    # --- token ids ----------------------------------------------------------------------------------------
    @staticmethod
    def query_ids(encoder: Encoder, queries: Sequence[str]) -> np.ndarray:
        return encoder.queries([memory_query_text(q) for q in queries])

    def bank_ids(self, encoder: Encoder) -> np.ndarray:
        return encoder.candidates([fact_text(f["text"]) for f in self.featurizer.facts])


def replay_states(episodes: Sequence[Sequence[int]], queries: Sequence[str],
                  answer: Callable[[list[int], list[MemoryState]], list[list[str]]]) -> list[MemoryState]:
    """The state each row starts from when a conversation is replayed turn by turn and every turn's focus is
    the answer ``answer(rows, states)`` gives (ranked fact ids per row), as a serving wrapper would.

    Rows of one turn position across all episodes are answered together.
    """
    states: list[MemoryState | None] = [None] * len(queries)
    longest = max((len(e) for e in episodes), default=0)
    current = [MemoryState() for _ in episodes]
    for t in range(longest):
        live = [k for k, e in enumerate(episodes) if len(e) > t]
        rows = [episodes[k][t] for k in live]
        for k, r in zip(live, rows):
            states[r] = current[k]
        ranked = answer(rows, [current[k] for k in live])
        for k, r, ids in zip(live, rows, ranked):
            current[k] = MemoryInputs.next_state(queries[r], ids)
    return states  # type: ignore[return-value]


# --- training tensors ---------------------------------------------------------------------------------------
GENERATED_ORIGINS = ("provenance", "triple", "pseudo")
"""Examples made from the bank itself (not asked by a user): the floor is also fitted without them."""


def _teacher_states(examples: Sequence[MemoryExample]) -> list[MemoryState]:
    """Each row's state when the previous turn's answer was exactly its reference facts."""
    states, last = [], {}
    for ex in examples:
        states.append(last.get(ex.episode, MemoryState()))
        last[ex.episode] = MemoryInputs.next_state(ex.query, ex.positives) if ex.positives else \
            MemoryState(last.get(ex.episode, MemoryState()).focus, ex.query)
    return states


def _episodes(examples: Sequence[MemoryExample]) -> list[list[int]]:
    by: dict[str, list[int]] = {}
    for n, ex in enumerate(examples):
        by.setdefault(ex.episode, []).append(n)
    return list(by.values())


class MemoryTensors:
    """The rows of one memory split (examples in episode and turn order) and their arrays."""

    def __init__(self, inputs: MemoryInputs, examples: Sequence[MemoryExample], exclude_own_episode: bool):
        self.inputs, self.examples = inputs, list(examples)
        self.exclude = [e.episode if exclude_own_episode else None for e in self.examples]
        self.rows: list[MemoryRow | None] = [None] * len(self.examples)
        self.states: list[MemoryState] = [MemoryState()] * len(self.examples)

    def compute(self, indices: Sequence[int], states: Sequence[MemoryState]) -> list[MemoryRow]:
        """The rows of ``indices`` from these states (a row whose state is unchanged is not made again)."""
        ex = self.examples
        todo = [k for k, (i, s) in enumerate(zip(indices, states)) if self.rows[i] is None or self.states[i] != s]
        made = self.inputs.rows([ex[indices[k]].query for k in todo], [states[k] for k in todo], None,
                                [self.exclude[indices[k]] for k in todo])
        for k, row in zip(todo, made):
            self.rows[indices[k]], self.states[indices[k]] = row, states[k]
        return [self.rows[i] for i in indices]

    def teacher(self) -> None:
        """Rows with the reference answers as every turn's focus."""
        self.compute(range(len(self.examples)), _teacher_states(self.examples))

    def replay(self, floor) -> None:
        """Rows with every turn's state left by ``floor``'s own answer to the previous turn (as served)."""
        fz = self.inputs.featurizer

        def answer(indices, states):
            out = []
            for row in self.compute(indices, states):
                scores = floor.scores(row.feats) if len(row.candidates) else np.zeros(0)
                order = np.argsort(-scores, kind="stable")
                out.append([fz.facts[row.candidates[j]]["id"] for j in order[:FOCUS_SIZE]])
            return out

        replay_states(_episodes(self.examples), [e.query for e in self.examples], answer)

    def floor_rows(self, *, real_only: bool = False) -> list[int]:
        """The rows a floor learns from (``floor_data`` takes an even sample of them): those with a reference
        fact among the candidates or with none; ``real_only``: asked by users, not generated from the bank."""
        keep = []
        for n, (ex, row) in enumerate(zip(self.examples, self.rows)):
            if real_only and ex.origin in GENERATED_ORIGINS:
                continue
            if ex.positives and not set(ex.positives) & {self.inputs.featurizer.facts[i]["id"] for i in row.candidates}:
                continue
            if ex.scored or ex.split == "train":
                keep.append(n)
        return keep

    def floor_data(self, keep: list[int] | None = None, *, max_rows: int | None = None):
        """``FloorData`` of the rows ``keep`` (default ``floor_rows()``; listwise): rows whose reference facts are
        not among the candidates are left out (nothing to rank); rows without references teach "nothing
        relevant"."""
        from dexter_brain.floor import FloorData, even_rows

        keep = self.floor_rows() if keep is None else keep
        if max_rows is not None and len(keep) > max_rows:
            keep = [keep[i] for i in even_rows(len(keep), max_rows)]
        arrays = self._padded([self.rows[n] for n in keep], [self.examples[n] for n in keep])
        return FloorData(arrays["cand_feats"], arrays["cand_index"] >= 0, labels=arrays["labels"])

    def _padded(self, rows: Sequence[MemoryRow], examples: Sequence[MemoryExample]) -> dict[str, np.ndarray]:
        fz = self.inputs.featurizer
        n, K, F = len(rows), max([len(r.candidates) for r in rows] + [1]), len(CANDIDATE_FEATURES)
        out = {"cand_index": np.full((n, K), -1, dtype=np.int32), "cand_feats": np.zeros((n, K, F), np.float32),
               "labels": np.zeros((n, K), np.float32),
               "query_feats": np.zeros((n, len(QUERY_FEATURES)), np.float32)}
        for k, (row, ex) in enumerate(zip(rows, examples)):
            c = len(row.candidates)
            out["cand_index"][k, :c] = row.candidates
            out["cand_feats"][k, :c] = row.feats
            positives = {fz.position[f] for f in ex.positives if f in fz.position}
            out["labels"][k, :c] = [float(i in positives) for i in row.candidates]
            out["query_feats"][k] = row.query_feats
        return out

    def arrays(self, encoder: Encoder) -> dict[str, np.ndarray]:
        fz, ex = self.inputs.featurizer, self.examples
        out = self._padded(self.rows, ex)
        focus = np.full((len(ex), FOCUS_SIZE), -1, dtype=np.int32)
        for n, s in enumerate(self.states):
            pos = [fz.position[f] for f in s.focus if f in fz.position]
            focus[n, : len(pos)] = pos
        return {
            **out,
            "query_ids": MemoryInputs.query_ids(encoder, [e.query for e in ex]),
            "num_gold": np.array([len(e.positives) for e in ex], dtype=np.int32),
            "mode": np.zeros(len(ex), dtype=np.int64),
            "focus_index": focus,
            "is_followup": np.array([e.is_followup for e in ex], dtype=np.int32),
            "carry_columns": np.array([CANDIDATE_FEATURES.index(c) for c in CARRY_FEATURES], dtype=np.int32),
            **episode_columns(ex),
        }

"""Reasoning inputs: candidate steps taken from the nearest stored plans, adapted to the new goal, and the
features of each step (how many similar plans use it, where, and what it follows).

Plans for an unseen goal are assembled from the steps of its neighbours rather than generated from
nothing: a neighbour's goal words that differ from the new goal (a city, a product, a name) are swapped
into its steps, and the model chooses and orders the steps. A text index over every stored step adds the
steps that share most words with the goal (a goal that names what it needs, "get planting instructions
and the weather", reaches the steps that say so even when no stored goal resembles it).
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from dexter_brain.features.common import NEAR_DUPLICATE, STEP_MATCH_THRESHOLD, step_similarity
from dexter_brain.lexical import LexicalIndex, content_words, normalize

CANDIDATE_FEATURES = (
    "support", "best_rank", "best_similarity", "mean_position", "goal_overlap", "frequency",
    "completed_match", "follows_last", "position_gap", "is_done", "done_support", "share_of_neighbours",
    "next_share", "top_next",
)
_COLUMN = {name: i for i, name in enumerate(CANDIDATE_FEATURES)}
QUERY_FEATURES = ("next_mode", "completed", "top_similarity", "neighbour_length", "progress")
NEIGHBOUR_PLANS = 8
MAX_CANDIDATES = 48
STEP_INDEX_CANDIDATES = 16
"""Steps the text index adds (besides the neighbour plans' own)."""
COMMON_GOAL_SHARE = 0.02
DONE = "<done>"


@dataclass
class Candidate:
    text: str
    """The step, adapted to the goal (``DONE`` for the end-of-plan candidate)."""
    support: float = 0.0
    best_rank: int = 99
    best_similarity: float = 0.0
    positions: list[float] | None = None
    follows_last: float = 0.0
    occurrences: int = 0
    next_share: float = 0.0
    """Similarity share of the neighbour plans whose step at the next position (len(completed)) this is."""
    top_next: float = 0.0
    """1 when this is the nearest plan's step at the next position (what copying that plan would say)."""
    step_match: float = 0.0
    """Its BM25 share (of the best) when the step text index found it (or a near duplicate of it)."""
    from_index: bool = False
    """Only the step text index found it: no neighbour plan has it."""


@dataclass
class _Neighbourhood:
    """A goal's nearest plans and the candidates they give, before any step is completed."""

    goal: str
    near: list[tuple[int, float]]
    total: float
    candidates: list[Candidate]
    occurrences: list[tuple[int, float, str | None, int, int]]
    """Each admitted step occurrence in (neighbour rank, step) order: candidate row, similarity share, the
    step before it in its plan (None for a first step), the neighbour's rank and the step's index."""
    mean_length: float
    static: np.ndarray
    """(K, F) float64 feature rows with the columns that depend on the completed steps left at 0."""
    similarities: dict[str, np.ndarray] = field(default_factory=dict)

    def similarity_to(self, step: str) -> np.ndarray:
        """``step_similarity`` of every candidate to a completed step (cached: later prefixes repeat it)."""
        found = self.similarities.get(step)
        if found is None:
            found = self.similarities[step] = np.array(
                [step_similarity(c.text, step) for c in self.candidates], dtype=np.float64).reshape(-1)
        return found


@dataclass
class StepCandidates:
    """The candidate steps for one goal and what the neighbourhood says about plan length."""

    items: list[Candidate]
    query_feats: np.ndarray
    mean_length: float
    num_neighbours: int
    neighbourhood: _Neighbourhood | None = field(default=None, repr=False, compare=False)
    """Where the items came from, so ``features`` can reuse what depends only on the goal."""


def _done_row(c: Candidate, progress: float) -> np.ndarray:
    """The feature row of the end-of-plan candidate."""
    row = np.zeros(len(CANDIDATE_FEATURES), dtype=np.float32)
    row[_COLUMN["is_done"]] = 1.0
    row[_COLUMN["done_support"]] = c.support
    row[_COLUMN["position_gap"]] = abs(1.0 - min(progress, 1.0))
    row[_COLUMN["next_share"]], row[_COLUMN["top_next"]] = c.next_share, c.top_next
    return row


def _same_items(source: list[Candidate], items: list[Candidate]) -> bool:
    """Whether ``items`` are ``source`` (in order, by text) plus at most the end-of-plan candidate."""
    n = len(source)
    if any(c.text == DONE for c in source):  # a stored step spelled like the end marker: take the long way
        return False
    return (len(items) - n in (0, 1) and all(a.text == b.text for a, b in zip(source, items))
            and all(c.text == DONE for c in items[n:]))


def common_goal_words(goals: Sequence[str]) -> frozenset[str]:
    """Content words in more than COMMON_GOAL_SHARE of the goals (at least 3): verbs and generic nouns ("get",
    "plan", "trip"). A difference in such a word between two goals is a different task, not a different
    object of the same task, so it is never swapped into the steps."""
    df: Counter[str] = Counter()
    for g in goals:
        df.update(set(content_words(g)))
    floor = max(3.0, COMMON_GOAL_SHARE * len(goals))
    return frozenset(w for w, n in df.items() if n > floor)


@lru_cache(maxsize=4096)
def goal_substitutions(source_goal: str, goal: str, common: frozenset[str] = frozenset()
                       ) -> tuple[tuple[re.Pattern, str], ...]:
    """Where the two goals differ in short aligned spans: (pattern of the old words, new words); spans whose
    words are all ``common`` (see ``common_goal_words``) are left alone."""
    src, dst = source_goal.split(), goal.split()
    matcher = difflib.SequenceMatcher(a=[normalize(w) for w in src], b=[normalize(w) for w in dst], autojunk=False)
    subs = []
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op != "replace" or a1 - a0 > 3 or b1 - b0 > 3:
            continue
        old = " ".join(src[a0:a1]).strip(".,;:!?")
        new = " ".join(dst[b0:b1]).strip(".,;:!?")
        specific = [w for w in content_words(old) + content_words(new) if w not in common]
        if old and new and content_words(old) and specific:
            subs.append((re.compile(rf"(?i)\b{re.escape(old)}\b"), new))
    return tuple(subs)


def adapt_step(step: str, source_goal: str, goal: str, common: frozenset[str] = frozenset()) -> str:
    """Swap the words where ``source_goal`` and ``goal`` differ (short aligned spans) into ``step``."""
    for pattern, new in goal_substitutions(source_goal, goal, common):
        step = pattern.sub(new, step)
    return step


class StepIndex:
    """BM25 over the distinct steps of the stored plans, remembering which goal groups use each step."""

    def __init__(self, plans: Sequence[dict]):
        self.texts: list[str] = []
        self.groups: list[set[str]] = []
        at: dict[str, int] = {}
        for p in plans:
            for step in p["steps"]:
                key = normalize(step)
                if key not in at:
                    at[key] = len(self.texts)
                    self.texts.append(step)
                    self.groups.append(set())
                self.groups[at[key]].add(p.get("group") or "")
        self.index = LexicalIndex(content_words(t) for t in self.texts)

    def search(self, goal: str, k: int, exclude_group: str | None) -> list[tuple[str, float]]:
        """The ``k`` steps sharing most with the goal (BM25 share of the best), leaving out the steps only
        ``exclude_group``'s plans use."""
        idx, scores = self.index.top_k(content_words(goal), k + 8)
        out = [(self.texts[i], float(s)) for i, s in zip(idx.tolist(), scores.tolist())
               if exclude_group is None or self.groups[i] - {exclude_group}][:k]
        best = out[0][1] if out else 1.0
        return [(t, s / best) for t, s in out]


class ReasoningFeaturizer:
    """The bank of stored plans, its goal index and its step index."""

    def __init__(self, plans: Iterable[dict]):
        self.plans: list[dict] = [dict(p) for p in plans]
        self.index = LexicalIndex(content_words(p["goal"]) for p in self.plans)
        self.common_words = common_goal_words([p["goal"] for p in self.plans])
        counts: Counter[str] = Counter()
        for p in self.plans:
            counts.update({normalize(s) for s in p["steps"]})
        self.frequency = counts
        self.max_frequency = np.log1p(max(counts.values(), default=0)) or 1.0
        self.mean_length = float(np.mean([len(p["steps"]) for p in self.plans])) if self.plans else 4.0
        self.steps = StepIndex(self.plans)
        self._cache: dict[tuple[str, str | None], _Neighbourhood] = {}

    def neighbours(self, goal: str, exclude_group: str | None = None) -> list[tuple[int, float]]:
        idx, scores = self.index.top_k(content_words(goal), NEIGHBOUR_PLANS + 4)
        out = [(int(i), float(s)) for i, s in zip(idx, scores) if self.plans[i].get("group") != exclude_group]
        return out[:NEIGHBOUR_PLANS]

    def _neighbourhood(self, goal: str, exclude_group: str | None) -> _Neighbourhood:
        """The part of ``candidates`` and ``features`` that depends only on the goal (cached: every prefix
        of a plan asks for the same goal)."""
        key = (goal, exclude_group)
        found = self._cache.get(key)
        if found is not None:
            return found
        near = self.neighbours(goal, exclude_group)
        total = sum(s for _, s in near) or 1.0
        by_key: dict[str, int] = {}
        cands: list[Candidate] = []
        occurrences: list[tuple[int, float, str | None, int, int]] = []
        for rank, (i, sim) in enumerate(near):
            plan = self.plans[i]
            steps = [adapt_step(s, plan["goal"], goal, self.common_words) for s in plan["steps"]]
            n = len(steps)
            for j, step in enumerate(steps):
                key_ = normalize(step)
                k = by_key.get(key_)
                if k is None:
                    if len(by_key) >= MAX_CANDIDATES:
                        continue
                    k = by_key[key_] = len(cands)
                    cands.append(Candidate(text=step, positions=[]))
                c = cands[k]
                c.support += sim / total
                c.occurrences += 1
                c.positions.append(j / max(n - 1, 1))
                if rank < c.best_rank:
                    c.best_rank, c.best_similarity = rank, sim / (near[0][1] or 1.0)
                occurrences.append((k, sim / total, steps[j - 1] if j > 0 else None, rank, j))
        self._add_indexed_steps(goal, exclude_group, cands)
        lengths = [len(self.plans[i]["steps"]) for i, _ in near] or [self.mean_length]
        mean_len = float(np.average(lengths, weights=[s for _, s in near] or None))
        goal_words = set(content_words(goal))
        static = np.zeros((len(cands), len(CANDIDATE_FEATURES)), dtype=np.float64)
        for k, c in enumerate(cands):
            static[k] = self._goal_row(c, goal_words, max(len(near), 1))
        found = _Neighbourhood(goal=goal, near=near, total=total, candidates=cands, occurrences=occurrences,
                               mean_length=mean_len, static=static)
        if len(self._cache) >= 1024:
            self._cache.clear()
        self._cache[key] = found
        return found

    def _add_indexed_steps(self, goal: str, exclude_group: str | None, cands: list[Candidate]) -> None:
        """Mark the candidates the step index finds for the goal, and add the ones no neighbour has."""
        added: list[Candidate] = []
        for text, share in self.steps.search(goal, STEP_INDEX_CANDIDATES, exclude_group):
            known = next((c for c in cands if step_similarity(c.text, text) >= NEAR_DUPLICATE), None)
            if known is not None:
                known.step_match = max(known.step_match, share)
            elif not any(step_similarity(c.text, text) >= NEAR_DUPLICATE for c in added):
                added.append(Candidate(text=text, positions=[], step_match=share, from_index=True))
        cands.extend(added)

    def candidates(self, goal: str, completed: Sequence[str] = (), exclude_group: str | None = None,
                   with_done: bool = False) -> StepCandidates:
        """Candidate steps and the query features for a goal (and the steps completed so far)."""
        hood = self._neighbourhood(goal, exclude_group)
        near, total = hood.near, hood.total
        cands = [Candidate(text=c.text, support=c.support, best_rank=c.best_rank,
                           best_similarity=c.best_similarity, positions=list(c.positions),
                           occurrences=c.occurrences, step_match=c.step_match, from_index=c.from_index)
                 for c in hood.candidates]
        last = completed[-1] if completed else None
        at = len(completed)
        for k, share, previous, rank, j in hood.occurrences:
            if j == at:
                cands[k].next_share += share
                cands[k].top_next = max(cands[k].top_next, float(rank == 0))
            if last is not None and previous is not None and step_similarity(previous, last) >= STEP_MATCH_THRESHOLD:
                cands[k].follows_last += share
            elif last is None and previous is None:
                cands[k].follows_last += share
        if with_done:
            done = Candidate(text=DONE, positions=[1.0])
            done.support = sum(s for i, s in near if len(self.plans[i]["steps"]) <= len(completed)) / total
            done.next_share = done.support
            done.top_next = float(bool(near) and len(self.plans[near[0][0]]["steps"]) <= len(completed))
            cands.append(done)
        mean_len = hood.mean_length
        query_feats = np.array([
            float(with_done), np.log1p(len(completed)) / 2, np.log1p(near[0][1] if near else 0.0) / 3,
            np.log1p(mean_len) / 3, len(completed) / max(mean_len, 1.0),
        ], dtype=np.float32)
        return StepCandidates(items=cands, query_feats=query_feats, mean_length=mean_len,
                              num_neighbours=len(near), neighbourhood=hood)

    def features(self, goal: str, cands: StepCandidates, completed: Sequence[str] = ()) -> np.ndarray:
        """(K, F) features of the candidate steps."""
        progress = len(completed) / max(cands.mean_length, 1.0)
        hood = cands.neighbourhood
        if hood is not None and hood.goal == goal and _same_items(hood.candidates, cands.items):
            return self._features_from(hood, cands, completed, progress)
        goal_words = set(content_words(goal))
        out = np.zeros((len(cands.items), len(CANDIDATE_FEATURES)), dtype=np.float32)
        for k, c in enumerate(cands.items):
            if c.text == DONE:
                out[k] = _done_row(c, progress)
                continue
            row = self._goal_row(c, goal_words, max(cands.num_neighbours, 1))
            row[_COLUMN["completed_match"]] = max((step_similarity(c.text, s) for s in completed), default=0.0)
            row[_COLUMN["follows_last"]] = c.follows_last
            row[_COLUMN["position_gap"]] = abs(row[_COLUMN["mean_position"]] - min(progress, 1.0))
            row[_COLUMN["next_share"]], row[_COLUMN["top_next"]] = c.next_share, c.top_next
            out[k] = row
        return out

    def _goal_row(self, c: Candidate, goal_words: set[str], num_near: int) -> np.ndarray:
        """A step's feature row with only the columns that depend on the goal alone filled in."""
        words = set(content_words(c.text))
        row = np.zeros(len(CANDIDATE_FEATURES), dtype=np.float64)
        row[_COLUMN["support"]] = c.support
        row[_COLUMN["best_rank"]] = 1.0 / (1 + c.best_rank)
        row[_COLUMN["best_similarity"]] = c.best_similarity
        row[_COLUMN["mean_position"]] = float(np.mean(c.positions)) if c.positions else 0.5
        row[_COLUMN["goal_overlap"]] = len(words & goal_words) / max(len(words), 1)
        row[_COLUMN["frequency"]] = np.log1p(self.frequency.get(normalize(c.text), 0)) / self.max_frequency
        row[_COLUMN["share_of_neighbours"]] = c.occurrences / num_near
        return row

    def _features_from(self, hood: _Neighbourhood, cands: StepCandidates, completed: Sequence[str],
                       progress: float) -> np.ndarray:
        """``features`` for candidates that came from ``hood`` unchanged: its goal-only columns plus the
        columns that depend on the completed steps."""
        n = len(hood.candidates)
        out = np.zeros((len(cands.items), len(CANDIDATE_FEATURES)), dtype=np.float32)
        rows = hood.static.copy()
        if completed:
            rows[:, _COLUMN["completed_match"]] = np.max([hood.similarity_to(s) for s in completed], axis=0)
        rows[:, _COLUMN["follows_last"]] = [c.follows_last for c in cands.items[:n]]
        rows[:, _COLUMN["next_share"]] = [c.next_share for c in cands.items[:n]]
        rows[:, _COLUMN["top_next"]] = [c.top_next for c in cands.items[:n]]
        rows[:, _COLUMN["position_gap"]] = np.abs(rows[:, _COLUMN["mean_position"]] - min(progress, 1.0))
        out[:n] = rows
        for k in range(n, len(cands.items)):  # the end-of-plan candidate
            out[k] = _done_row(cands.items[k], progress)
        return out

    def to_state(self) -> dict:
        return {"plans": self.plans}

    @classmethod
    def from_state(cls, state: dict) -> "ReasoningFeaturizer":
        return cls(state["plans"])

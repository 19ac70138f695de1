"""Reasoning inputs: candidate steps taken from the nearest stored plans, adapted to the new goal, and the
features of each step (how many similar plans use it, where, and what it follows).

Plans for an unseen goal are assembled from the steps of its neighbours rather than generated from
nothing: a neighbour's goal words that differ from the new goal (a city, a product, a name) are swapped
into its steps, and the model chooses and orders the steps.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from dexter_brain.features.common import STEP_MATCH_THRESHOLD, step_similarity
from dexter_brain.lexical import LexicalIndex, content_words, normalize

CANDIDATE_FEATURES = (
    "support", "best_rank", "best_similarity", "mean_position", "goal_overlap", "frequency",
    "completed_match", "follows_last", "position_gap", "is_done", "done_support", "share_of_neighbours",
)
QUERY_FEATURES = ("next_mode", "completed", "top_similarity", "neighbour_length", "progress")
NEIGHBOUR_PLANS = 8
MAX_CANDIDATES = 48
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


@dataclass
class StepCandidates:
    """The candidate steps for one goal and what the neighbourhood says about plan length."""

    items: list[Candidate]
    query_feats: np.ndarray
    mean_length: float
    num_neighbours: int


@lru_cache(maxsize=4096)
def goal_substitutions(source_goal: str, goal: str) -> tuple[tuple[re.Pattern, str], ...]:
    """Where the two goals differ in short aligned spans: (pattern of the old words, new words)."""
    src, dst = source_goal.split(), goal.split()
    matcher = difflib.SequenceMatcher(a=[normalize(w) for w in src], b=[normalize(w) for w in dst], autojunk=False)
    subs = []
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op != "replace" or a1 - a0 > 3 or b1 - b0 > 3:
            continue
        old = " ".join(src[a0:a1]).strip(".,;:!?")
        new = " ".join(dst[b0:b1]).strip(".,;:!?")
        if old and new and content_words(old):
            subs.append((re.compile(rf"(?i)\b{re.escape(old)}\b"), new))
    return tuple(subs)


def adapt_step(step: str, source_goal: str, goal: str) -> str:
    """Swap the words where ``source_goal`` and ``goal`` differ (short aligned spans) into ``step``."""
    for pattern, new in goal_substitutions(source_goal, goal):
        step = pattern.sub(new, step)
    return step


class ReasoningFeaturizer:
    """The bank of stored plans and its goal index."""

    def __init__(self, plans: Iterable[dict]):
        self.plans: list[dict] = [dict(p) for p in plans]
        self.index = LexicalIndex(content_words(p["goal"]) for p in self.plans)
        counts: Counter[str] = Counter()
        for p in self.plans:
            counts.update({normalize(s) for s in p["steps"]})
        self.frequency = counts
        self.max_frequency = np.log1p(max(counts.values(), default=0)) or 1.0
        self.mean_length = float(np.mean([len(p["steps"]) for p in self.plans])) if self.plans else 4.0

    def neighbours(self, goal: str, exclude_group: str | None = None) -> list[tuple[int, float]]:
        idx, scores = self.index.top_k(content_words(goal), NEIGHBOUR_PLANS + 4)
        out = [(int(i), float(s)) for i, s in zip(idx, scores) if self.plans[i].get("group") != exclude_group]
        return out[:NEIGHBOUR_PLANS]

    def candidates(self, goal: str, completed: Sequence[str] = (), exclude_group: str | None = None,
                   with_done: bool = False) -> StepCandidates:
        """Candidate steps and the query features for a goal (and the steps completed so far)."""
        near = self.neighbours(goal, exclude_group)
        total = sum(s for _, s in near) or 1.0
        by_key: dict[str, Candidate] = {}
        last = completed[-1] if completed else None
        for rank, (i, sim) in enumerate(near):
            plan = self.plans[i]
            steps = [adapt_step(s, plan["goal"], goal) for s in plan["steps"]]
            n = len(steps)
            for j, step in enumerate(steps):
                key = normalize(step)
                c = by_key.get(key)
                if c is None:
                    if len(by_key) >= MAX_CANDIDATES:
                        continue
                    c = by_key[key] = Candidate(text=step, positions=[])
                c.support += sim / total
                c.occurrences += 1
                c.positions.append(j / max(n - 1, 1))
                if rank < c.best_rank:
                    c.best_rank, c.best_similarity = rank, sim / (near[0][1] or 1.0)
                if last is not None and j > 0 and step_similarity(steps[j - 1], last) >= STEP_MATCH_THRESHOLD:
                    c.follows_last += sim / total
                elif last is None and j == 0:
                    c.follows_last += sim / total
        cands = list(by_key.values())
        if with_done:
            done = Candidate(text=DONE, positions=[1.0])
            done.support = sum(s for i, s in near if len(self.plans[i]["steps"]) <= len(completed)) / total
            cands.append(done)
        lengths = [len(self.plans[i]["steps"]) for i, _ in near] or [self.mean_length]
        mean_len = float(np.average(lengths, weights=[s for _, s in near] or None))
        query_feats = np.array([
            float(with_done), np.log1p(len(completed)) / 2, np.log1p(near[0][1] if near else 0.0) / 3,
            np.log1p(mean_len) / 3, len(completed) / max(mean_len, 1.0),
        ], dtype=np.float32)
        return StepCandidates(items=cands, query_feats=query_feats, mean_length=mean_len,
                              num_neighbours=len(near))

    def features(self, goal: str, cands: StepCandidates, completed: Sequence[str] = ()) -> np.ndarray:
        """(K, F) features of the candidate steps."""
        goal_words = set(content_words(goal))
        progress = len(completed) / max(cands.mean_length, 1.0)
        near = max(cands.num_neighbours, 1)
        out = np.zeros((len(cands.items), len(CANDIDATE_FEATURES)), dtype=np.float32)
        for k, c in enumerate(cands.items):
            if c.text == DONE:
                out[k, CANDIDATE_FEATURES.index("is_done")] = 1.0
                out[k, CANDIDATE_FEATURES.index("done_support")] = c.support
                out[k, CANDIDATE_FEATURES.index("position_gap")] = abs(1.0 - min(progress, 1.0))
                continue
            words = set(content_words(c.text))
            mean_pos = float(np.mean(c.positions)) if c.positions else 0.5
            out[k] = (
                c.support, 1.0 / (1 + c.best_rank), c.best_similarity, mean_pos,
                len(words & goal_words) / max(len(words), 1),
                np.log1p(self.frequency.get(normalize(c.text), 0)) / self.max_frequency,
                max((step_similarity(c.text, s) for s in completed), default=0.0),
                c.follows_last, abs(mean_pos - min(progress, 1.0)), 0.0, 0.0, c.occurrences / near,
            )
        return out

    def to_state(self) -> dict:
        return {"plans": self.plans}

    @classmethod
    def from_state(cls, state: dict) -> "ReasoningFeaturizer":
        return cls(state["plans"])

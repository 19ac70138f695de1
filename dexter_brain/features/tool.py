"""Tool inputs: the features of each (task, available tool) pair.

Evidence combined per tool: BM25 of the task against the tool's name and description, name and
IDF-weighted description overlap, a similarity-weighted vote of the nearest logged tasks (the supervised
signal a linear model over n-grams gets), the tool's success statistics, whether it just failed, which
tools the logs used after that tool failed, and overlap with the UI context. A tool never logged is still
ranked by its text.

History features of a training row leave out the row's own conversation (``exclude_episode``): what a
tool's past calls say is only ever what other conversations said, exactly as for a new call at serving
time. Without that, a tool logged once would carry its own call as history in training and none in
service, and the model would learn that history, not text, picks the tool.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from dexter_brain.lexical import LexicalIndex, SpellingIndex, content_words, words

CANDIDATE_FEATURES = (
    "bm25_log", "bm25_share", "bm25_rrank", "name_overlap", "desc_idf_overlap", "knn_vote", "knn_best",
    "prior", "fail_rate", "just_failed", "context_overlap", "has_description", "after_failure_vote",
    "name_prefix", "desc_prefix",
)
HISTORY_FEATURES = ("knn_vote", "knn_best", "prior", "fail_rate", "after_failure_vote")
"""What a tool's past calls say (zero for a tool never called in training)."""
QUERY_FEATURES = ("has_error", "num_available", "length", "knn_top", "has_context")
NEIGHBOURS = 20
PREFIX = 4
"""Two words match loosely when they share their first PREFIX letters ("planting" and "plant")."""


@dataclass(frozen=True)
class _ToolText:
    """What the features need of one tool that does not depend on the task."""

    doc: list[str]
    doc_set: frozenset[str]
    doc_counts: tuple[tuple[str, int], ...]
    name_words: frozenset[str]
    desc_words: frozenset[str]
    name_prefixes: frozenset[str]
    desc_prefixes: frozenset[str]
    prior: float
    fail_rate: float
    has_description: float


@dataclass
class TaskView:
    text: str
    tokens: list[str]
    token_set: set[str]
    context_set: set[str]
    neighbours: list[tuple[str, float]]
    """(tool, similarity share) of the nearest logged tasks."""


class ToolFeaturizer:
    """Catalogue descriptions, the index of logged tasks and per-tool statistics."""

    def __init__(self, catalogue: Iterable[dict], logged: Iterable[dict] = ()):
        self.catalogue: dict[str, dict] = {t["name"]: dict(t) for t in catalogue}
        self.names = sorted(self.catalogue)
        self.tool_words = {n: self._doc(n) for n in self.names}
        self.tool_index = LexicalIndex(self.tool_words[n] for n in self.names)
        self.tool_pos = {n: i for i, n in enumerate(self.names)}
        self.logged: list[dict] = [dict(r) for r in logged]
        self.task_index = LexicalIndex(content_words(r["task"] + " " + r.get("context", "")) for r in self.logged)
        self.successes: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.after_failure: dict[str, Counter[str]] = defaultdict(Counter)
        # Per conversation, what its own calls added to the statistics (taken back out for its rows).
        self._own: dict[str, list[dict]] = defaultdict(list)
        for r in self.logged:
            self.calls[r["tool"]] += 1
            if r["status"] == "success":
                self.successes[r["tool"]] += 1
            else:
                self.errors[r["tool"]] += 1
            if r.get("previous_tool") and r["status"] == "success":
                self.after_failure[r["previous_tool"]][r["tool"]] += 1
            if r.get("episode") is not None:
                self._own[r["episode"]].append(r)
        self.max_prior = np.log1p(max(self.successes.values(), default=0)) or 1.0
        vocabulary = {w for ws in self.tool_words.values() for w in ws}
        vocabulary.update(w for r in self.logged for w in content_words(r["task"]))
        self.spelling = SpellingIndex(vocabulary)
        self._tools: dict[str, _ToolText] = {}

    def _doc(self, name: str) -> list[str]:
        desc = self.catalogue.get(name, {}).get("description") or ""
        return words(name) + content_words(desc)

    def describe(self, name: str) -> str | None:
        return self.catalogue.get(name, {}).get("description")

    def add_tool(self, name: str, description: str | None) -> None:
        """Make an unknown tool rankable by its text (descriptions given at call time are kept)."""
        if name in self.catalogue and (self.catalogue[name].get("description") or not description):
            return
        self.catalogue[name] = {"name": name, "description": description}
        self.tool_words[name] = self._doc(name)
        self._tools.pop(name, None)
        for w in self.tool_words[name]:
            self.spelling.add(w)

    def view(self, task: str, context: str = "", exclude_episode: str | None = None) -> TaskView:
        tokens, _ = self.spelling.expand(content_words(task))
        context_words = content_words(context) if context else []
        idx, sims = self.task_index.top_k(tokens + context_words, NEIGHBOURS + 8)
        logged = self.logged
        neighbours = [(logged[i]["tool"], s) for i, s in zip(idx.tolist(), sims.tolist())
                      if logged[i].get("episode") != exclude_episode and logged[i]["status"] == "success"][:NEIGHBOURS]
        return TaskView(text=task, tokens=tokens, token_set=set(tokens), context_set=set(context_words),
                        neighbours=neighbours)

    def query_features(self, view: TaskView, available: Sequence[str], previous_error: str | None) -> np.ndarray:
        top = view.neighbours[0][1] if view.neighbours else 0.0
        return np.array([float(bool(previous_error)), np.log1p(len(available)) / 4, np.log1p(len(view.tokens)) / 3,
                         np.log1p(top) / 3, float(bool(view.context_set))], dtype=np.float32)

    def _tool(self, name: str) -> _ToolText:
        """The words and log statistics of a tool, computed once (until ``add_tool`` changes it)."""
        info = self._tools.get(name)
        if info is None:
            doc = self.tool_words.get(name) or self._doc(name)
            calls = self.calls.get(name, 0)
            info = self._tools[name] = _ToolText(
                doc=doc, doc_set=frozenset(doc), doc_counts=tuple(Counter(doc).items()),
                name_words=frozenset(words(name)), desc_words=frozenset(content_words(self.describe(name) or "")),
                name_prefixes=frozenset(_prefixes(words(name))),
                desc_prefixes=frozenset(_prefixes(content_words(self.describe(name) or ""))),
                prior=np.log1p(self.successes.get(name, 0)) / self.max_prior,
                fail_rate=(self.errors.get(name, 0) + 0.5) / (calls + 2),
                has_description=float(bool(self.describe(name))),
            )
        return info

    def _history(self, name: str, exclude_episode: str | None) -> tuple[float, float]:
        """(prior, fail rate) of a tool from the logged calls, its own conversation's calls left out."""
        tool = self._tool(name)
        own = [r for r in self._own.get(exclude_episode, ()) if r["tool"] == name] if exclude_episode else []
        if not own:
            return tool.prior, tool.fail_rate
        successes = self.successes.get(name, 0) - sum(r["status"] == "success" for r in own)
        errors = self.errors.get(name, 0) - sum(r["status"] != "success" for r in own)
        return np.log1p(successes) / self.max_prior, (errors + 0.5) / (successes + errors + 2)

    def _after(self, previous_tool: str | None, exclude_episode: str | None) -> Counter[str]:
        after = Counter(self.after_failure.get(previous_tool, Counter())) if previous_tool else Counter()
        for r in self._own.get(exclude_episode, ()) if exclude_episode and previous_tool else ():
            if r.get("previous_tool") == previous_tool and r["status"] == "success":
                after[r["tool"]] -= 1
        return +after

    def features(self, view: TaskView, available: Sequence[str], previous_tool: str | None = None,
                 previous_error: str | None = None, exclude_episode: str | None = None,
                 hidden: frozenset[str] = frozenset()) -> np.ndarray:
        """(K, F) features of the available tools for the task; ``exclude_episode`` leaves a training row's
        own conversation out of the history features (``view`` must have been made with it too), and the
        tools in ``hidden`` get the history features of a tool never logged."""
        tools = [self._tool(n) for n in available]
        bm25 = _bm25_of(view.tokens, tools, self.tool_index)
        best = float(bm25.max()) if len(bm25) else 0.0
        rank = np.empty(len(bm25), dtype=np.int64)
        rank[np.argsort(-bm25, kind="stable")] = np.arange(len(bm25))
        total = sum(s for _, s in view.neighbours) or 1.0
        votes: Counter[str] = Counter()
        best_sim: dict[str, float] = {}
        for tool, s in view.neighbours:
            if tool in hidden:
                continue
            votes[tool] += s / total
            best_sim[tool] = max(best_sim.get(tool, 0.0), s)
        top = view.neighbours[0][1] if view.neighbours else 1.0
        failed = {previous_tool} if previous_tool else set()
        if previous_error:
            error_words = set(words(previous_error))
            failed |= {n for n in available if words(n) and set(words(n)) <= error_words}
        after = self._after(previous_tool, exclude_episode) if previous_tool not in hidden else Counter()
        after_total = sum(after.values()) or 1
        q = view.token_set
        q_prefixes = set(_prefixes(q))
        q_idf = sum(self.tool_index.idf(t) for t in q) or 1.0
        out = np.zeros((len(available), len(CANDIDATE_FEATURES)), dtype=np.float32)
        out[:, 0] = np.log1p(bm25) / 3
        if best > 0:
            out[:, 1] = bm25 / np.float32(best)
        out[:, 2] = np.where(bm25 > 0, 1.0 / (1 + rank), 0.0)
        columns = [[] for _ in range(3, len(CANDIDATE_FEATURES))]
        for name, tool in zip(available, tools):
            desc_shared = q & tool.desc_words
            prior, fail_rate = self._history(name, exclude_episode) if name not in hidden else (0.0, 0.25)
            for column, value in zip(columns, (
                len(q & tool.name_words) / max(len(tool.name_words), 1),
                sum(self.tool_index.idf(t) for t in desc_shared) / q_idf if desc_shared else 0 / q_idf,
                votes.get(name, 0.0),
                best_sim.get(name, 0.0) / top if top > 0 else 0.0,
                prior,
                fail_rate,
                float(name in failed),
                len(view.context_set & tool.doc_set) / max(len(tool.doc_set), 1),
                tool.has_description,
                after.get(name, 0) / after_total if name not in hidden else 0.0,
                len(q_prefixes & tool.name_prefixes) / max(len(tool.name_prefixes), 1),
                len(q_prefixes & tool.desc_prefixes) / max(len(q_prefixes), 1),
            )):
                column.append(value)
        out[:, 3:] = np.array(columns, dtype=np.float64).T
        return out

    def to_state(self) -> dict:
        return {"catalogue": [self.catalogue[n] for n in sorted(self.catalogue)], "logged": self.logged}

    @classmethod
    def from_state(cls, state: dict) -> "ToolFeaturizer":
        return cls(state["catalogue"], state["logged"])


def _prefixes(tokens) -> list[str]:
    """The first PREFIX letters of each word long enough to have them (shorter words are left out)."""
    return [t[:PREFIX] for t in tokens if len(t) >= PREFIX and not t.isdigit()]


def _bm25_of(query: Sequence[str], tools: Sequence[_ToolText], ref: LexicalIndex,
             k1: float = 1.5, b: float = 0.75) -> np.ndarray:
    """BM25 of the query against the tools' documents, with IDF taken from the whole catalogue."""
    if not tools:
        return np.zeros(0, dtype=np.float32)
    avg = sum(len(t.doc) for t in tools) / len(tools) or 1.0
    q = set(query)
    out = np.zeros(len(tools), dtype=np.float32)
    for i, tool in enumerate(tools):
        if q.isdisjoint(tool.doc_set):
            continue
        norm = k1 * (1 - b + b * len(tool.doc) / avg)
        # Terms in the order they first occur in the document, as a Counter of the document gives them.
        out[i] = sum(ref.idf(t) * f * (k1 + 1) / (f + norm) for t, f in tool.doc_counts if t in q)
    return out

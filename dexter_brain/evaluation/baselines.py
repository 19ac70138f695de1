"""The baselines the report measures each TRM against, on the same bank, catalogue and queries.

- Memory: ``BM25Memory`` (bm25s over the facts' lower-cased words, stop words removed). The other bar, a
  logistic regression over the hand-made features, is each TRM's own linear floor (``dexter_brain.floor``).
- Tool: ``BM25Tools`` (task words against tool name + description), ``LinearTools`` (TF-IDF over word
  1-2-grams + multinomial logistic regression over the logged tools), ``KnnTools`` (most frequent tool
  among the nearest logged tasks by BM25) and ``PriorTools`` (the most often logged tool). Every one ranks
  only the tools available to the call.
- Reasoning: ``NearestPlan`` copies the plan of the most similar training goal by BM25 (optionally with
  the goal's words swapped into its steps, as the TRM's candidates are).

Each takes plain corpus rows (dicts from the JSONL files) and knows nothing about the TRMs.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from dexter_brain.features.reasoning import adapt_step, common_goal_words
from dexter_brain.lexical import LexicalIndex, content_words, words

KNN_NEIGHBOURS = 10
TOOL_C_GRID = (1.0, 10.0, 100.0)


def tool_input_text(row: dict) -> str:
    """What the linear tool model reads: the same task, UI context and previous error the TRM reads."""
    return " ".join(t for t in (row["task"], row.get("context") or "", row.get("previous_error") or "") if t)


# --- memory ---------------------------------------------------------------------------------------------
class BM25Memory:
    """Plain BM25 over the bank: bm25s on lower-cased words with stop words removed, nothing else."""

    def __init__(self, facts: Iterable[dict]):
        facts = [f for f in facts if not f.get("removed")]
        self.ids = [f["id"] for f in facts]
        self.index = LexicalIndex(content_words(f["text"]) for f in facts)

    def rank(self, query: str, k: int = 100) -> list[str]:
        """Fact ids, best first (only facts sharing a word with the query)."""
        idx, _ = self.index.top_k(content_words(query), k)
        return [self.ids[i] for i in idx]


# --- tool -----------------------------------------------------------------------------------------------
def _restrict(scores: dict[str, float], available: Sequence[str]) -> list[str]:
    """``available`` best score first; ties keep name order (never the log's order, which may leak)."""
    return sorted(dict.fromkeys(available), key=lambda t: (-scores.get(t, float("-inf")), t))


class BM25Tools:
    """BM25 of the task's words against each tool's name and description."""

    def __init__(self, catalogue: dict[str, str | None]):
        self.names = sorted(catalogue)
        self.index = LexicalIndex(words(n) + content_words(catalogue[n] or "") for n in self.names)

    def rank(self, task: str, available: Sequence[str]) -> list[str]:
        scores = self.index.scores(content_words(task))
        return _restrict({n: float(s) for n, s in zip(self.names, scores)}, available)


def _successes(rows: Iterable[dict]) -> list[dict]:
    return [r for r in rows if r["status"] == "success"]


class PriorTools:
    """The tool logged successfully most often in training, among the available ones."""

    def __init__(self, train_rows: Iterable[dict]):
        self.counts = Counter(r["tool"] for r in _successes(train_rows))

    def rank(self, available: Sequence[str]) -> list[str]:
        return _restrict({t: float(c) for t, c in self.counts.items()}, available)


class KnnTools:
    """The most frequent tool among the ``neighbours`` nearest successful training tasks (BM25), among the
    available tools; ties go to the tool of the nearer task, then to the more often logged one."""

    def __init__(self, train_rows: Iterable[dict], neighbours: int = KNN_NEIGHBOURS):
        self.rows = _successes(train_rows)
        self.index = LexicalIndex(content_words(r["task"]) for r in self.rows)
        self.prior = PriorTools(self.rows)
        self.neighbours = neighbours

    def rank(self, task: str, available: Sequence[str]) -> list[str]:
        allowed = set(available)
        idx, _ = self.index.top_k(content_words(task), len(self.rows))
        votes: Counter[str] = Counter()
        first: dict[str, int] = {}
        for i in idx.tolist():
            tool = self.rows[i]["tool"]
            if tool not in allowed:
                continue
            votes[tool] += 1
            first.setdefault(tool, len(first))
            if sum(votes.values()) >= self.neighbours:
                break
        prior = self.prior.rank(available)
        voted = sorted(votes, key=lambda t: (-votes[t], first[t]))
        return voted + [t for t in prior if t not in votes]


class LinearTools:
    """TF-IDF (word 1-2-grams) + multinomial logistic regression over the tools logged in training; at
    call time only the available tools are ranked (a tool never logged ranks last: it has no weights)."""

    def __init__(self, vectorizer, model):
        self.vectorizer, self.model = vectorizer, model
        self.classes = {c: i for i, c in enumerate(model.classes_)}

    @property
    def c(self) -> float:
        """The regularisation strength chosen on validation."""
        return float(self.model.C)

    @classmethod
    def fit(cls, train_rows: Iterable[dict], val_rows: Iterable[dict] = (), *, c_grid: Sequence[float] = TOOL_C_GRID,
            seed: int = 0) -> "LinearTools":
        """Fit on the successful training calls; the regularisation C is chosen on the validation calls."""
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        train = _successes(train_rows)
        val = _successes(val_rows)
        if len({r["tool"] for r in train}) < 2:
            raise ValueError("the linear tool baseline needs successful training calls of at least two tools")
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
        x = vectorizer.fit_transform([tool_input_text(r) for r in train])
        y = [r["tool"] for r in train]
        best, best_acc = None, -1.0
        for c in (c_grid if val else (10.0,)):
            # saga converges in well under a second here where lbfgs takes ten or more.
            model = LogisticRegression(C=c, solver="saga", max_iter=300, tol=1e-3, random_state=seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a ConvergenceWarning at tol 1e-3 changes no ranking
                model.fit(x, y)
            candidate = cls(vectorizer, model)
            acc = float(np.mean([r[0] == row["tool"] for r, row in zip(candidate.rank_many(val), val)])) \
                if val else 0.0
            if acc > best_acc:
                best, best_acc = candidate, acc
        return best

    def rank_many(self, rows: Sequence[dict]) -> list[list[str]]:
        """Rankings of each row's available tools (rows carry task, context, previous_error, available)."""
        if not rows:
            return []
        probs = self.model.predict_proba(self.vectorizer.transform([tool_input_text(r) for r in rows]))
        out = []
        for p, row in zip(probs, rows):
            scores = {t: float(p[self.classes[t]]) for t in row["available"] if t in self.classes}
            out.append(_restrict(scores, row["available"]))
        return out


# --- reasoning ------------------------------------------------------------------------------------------
class NearestPlan:
    """The plan of the training goal most similar to the new goal by BM25 (``adapt``: with the words where
    the two goals differ swapped into the steps, as the TRM's candidate steps are)."""

    def __init__(self, plans: Iterable[dict], adapt: bool = False):
        self.plans = [p for p in plans if p.get("steps")]
        self.index = LexicalIndex(content_words(p["goal"]) for p in self.plans)
        self.common = common_goal_words([p["goal"] for p in self.plans])
        self.adapt = adapt

    def plan(self, goal: str) -> list[str]:
        idx, _ = self.index.top_k(content_words(goal), 1)
        if len(idx) == 0:
            return []
        near = self.plans[int(idx[0])]
        if not self.adapt:
            return list(near["steps"])
        return [adapt_step(s, near["goal"], goal, self.common) for s in near["steps"]]

    def next_step(self, goal: str, completed: Sequence[str]) -> str | None:
        """The copied plan's step at position ``len(completed)``; None ("done") past its end."""
        steps = self.plan(goal)
        return steps[len(completed)] if len(completed) < len(steps) else None


def plans_of(rows: Iterable[dict]) -> list[dict]:
    """The whole plans (``kind == "plan"`` rows) of a reasoning split as {goal, steps}."""
    return [{"goal": r["goal"], "steps": list(r["steps"])} for r in rows if r["kind"] == "plan"]


__all__ = ["BM25Memory", "BM25Tools", "LinearTools", "KnnTools", "PriorTools", "NearestPlan",
           "plans_of", "tool_input_text"]

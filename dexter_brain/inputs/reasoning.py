"""``ReasoningInputs``: the one path from (goal, steps done so far) to the reasoning TRM's inputs.

Candidate steps come from the nearest stored plans (adapted to the goal's words, see
``dexter_brain.features.reasoning``) and from a text index over every stored step (a goal that names what
it needs, "get planting instructions and the weather", reaches the steps that say so even when no stored
goal resembles it). ``plan`` rows choose steps among them; ``next`` rows choose one, or "done". The corpus
build (``ReasoningTensors``) and ``ReasoningTRM`` both call ``ReasoningInputs.rows``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dexter_brain.features import reasoning as reason_features
from dexter_brain.features.common import DONE_TEXT, NEAR_DUPLICATE, STEP_MATCH_THRESHOLD, Encoder, \
    reasoning_query_text, step_similarity, step_text
from dexter_brain.features.reasoning import DONE, Candidate, ReasoningFeaturizer
from dexter_brain.inputs.common import episode_columns
from dexter_brain.lexical import LexicalIndex, content_words, normalize
from dexter_brain.metrics import step_f1
from dexter_brain.schema import COMPLEXITY_LEVELS, ReasoningExample

EXTRA_FEATURES = ("in_nearest", "step_match", "from_step_index")
CANDIDATE_FEATURES = reason_features.CANDIDATE_FEATURES + EXTRA_FEATURES
QUERY_FEATURES = reason_features.QUERY_FEATURES
MODES = ("plan", "next")
BASELINE_FEATURES = {"plan": CANDIDATE_FEATURES.index("in_nearest"), "next": CANDIDATE_FEATURES.index("top_next")}
"""The floors that need no labels: copy the nearest stored plan (its steps; its step at the next position)."""
STEP_INDEX_CANDIDATES = 16
MAX_CANDIDATES = reason_features.MAX_CANDIDATES + STEP_INDEX_CANDIDATES + 1  # + "done"
_BASE = len(reason_features.CANDIDATE_FEATURES)
_BEST_RANK = reason_features.CANDIDATE_FEATURES.index("best_rank")


@dataclass
class ReasoningRow:
    """One call's inputs: candidate step texts (``DONE`` for the end), features, the length of the nearest
    stored plan and where each candidate sits in the nearest stored plan that has it."""

    texts: list[str]
    feats: np.ndarray
    query_feats: np.ndarray
    plan_length: int
    """Steps a plan for this goal keeps: as many as the nearest stored plan has (at least 1)."""
    order: np.ndarray
    """(K,) relative position (0-1) of each candidate in the nearest plan that has it; 0.5 for a step no
    neighbour plan has, 1 for "done": plans list their steps in this order."""


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


class ReasoningInputs:
    """Candidates and features of plan and next-step calls over one ``ReasoningFeaturizer``."""

    def __init__(self, featurizer: ReasoningFeaturizer):
        self.featurizer = featurizer
        self.steps = StepIndex(featurizer.plans)

    def row(self, goal: str, completed: Sequence[str] = (), *, next_mode: bool,
            exclude_group: str | None = None) -> ReasoningRow:
        fz = self.featurizer
        cands = fz.candidates(goal, completed, exclude_group=exclude_group, with_done=next_mode)
        near = cands.neighbourhood.near if cands.neighbourhood is not None else []
        length = len(fz.plans[near[0][0]]["steps"]) if near else int(round(cands.mean_length))
        base = fz.features(goal, cands, completed)
        texts = [c.text for c in cands.items]
        extra = {t: 0.0 for t in texts}
        added = []
        for text, share in self.steps.search(goal, STEP_INDEX_CANDIDATES, exclude_group):
            known = next((t for t in texts if t != DONE and step_similarity(t, text) >= NEAR_DUPLICATE), None)
            if known is not None:
                extra[known] = max(extra[known], share)
            elif not any(step_similarity(a, text) >= NEAR_DUPLICATE for a, _ in added):
                added.append((text, share))
        if added:
            # Steps only the index found: no neighbour plan supports them, so only their text and the steps
            # done so far describe them.
            more = [Candidate(text=t, positions=[]) for t, _ in added]
            items = [c for c in cands.items if c.text != DONE] + more + [c for c in cands.items if c.text == DONE]
            cands.items = items
            cands.neighbourhood = None
            base = fz.features(goal, cands, completed)
            texts = [c.text for c in items]
            extra.update(added)
        feats = np.zeros((len(texts), len(CANDIDATE_FEATURES)), dtype=np.float32)
        feats[:, :_BASE] = base
        feats[:, _BASE] = (base[:, _BEST_RANK] == 1.0) & np.array([t != DONE for t in texts], dtype=bool)
        feats[:, _BASE + 1] = [extra.get(t, 0.0) if t != DONE else 0.0 for t in texts]
        feats[:, _BASE + 2] = [float(t in dict(added)) for t in texts]
        order = np.array([1.0 if c.text == DONE else c.positions[0] if c.positions else 0.5 for c in cands.items],
                         dtype=np.float32)
        return ReasoningRow(texts=texts, feats=feats, query_feats=cands.query_feats, plan_length=max(1, length),
                            order=order)

    @staticmethod
    def query_ids(encoder: Encoder, goals: Sequence[str], completed: Sequence[Sequence[str]],
                  states: Sequence[str | None], constraints: Sequence[Sequence[str]]) -> np.ndarray:
        return encoder.queries([reasoning_query_text(g, c, s, k)
                                for g, c, s, k in zip(goals, completed, states, constraints)])

    @staticmethod
    def candidate_texts(texts: Sequence[str]) -> list[str]:
        return [DONE_TEXT if t == DONE else step_text(t) for t in texts]


def plan_from(row: ReasoningRow, scores: np.ndarray) -> list[int]:
    """A plan from a row's candidate scores: its ``plan_length`` best steps (a step that says what a better
    one already says counts once), listed in the nearest plans' order."""
    best = np.argsort(-np.asarray(scores), kind="stable")
    kept: list[int] = []
    for i in best.tolist():
        if len(kept) >= row.plan_length:
            break
        if row.texts[i] != DONE and all(step_similarity(row.texts[i], row.texts[j]) < NEAR_DUPLICATE for j in kept):
            kept.append(i)
    return sorted(kept, key=lambda i: (row.order[i], -scores[i]))


def reasoning_targets(cands: Sequence[str], ex: ReasoningExample) -> tuple[list[float], list[float], int]:
    """Inclusion labels, relative positions and the next-step index for an example's candidates."""
    labels = [0.0] * len(cands)
    positions = [0.0] * len(cands)
    target = -1
    if ex.kind == "plan":
        # A candidate is in the plan when it matches a step; a weak match (under NEAR_DUPLICATE, e.g. "check
        # tyres" and "check what it's worth" share one word of two) only when no candidate matches that step
        # better, so loosely related steps are not taught as part of the plan.
        n = len(ex.steps)
        sims = np.array([[step_similarity(c, s) for s in ex.steps] for c in cands]).reshape(len(cands), n)
        if n and len(cands):
            best_for_step = sims.max(0)
            for k in range(len(cands)):
                j = int(np.argmax(sims[k]))
                strong = sims[k, j] >= NEAR_DUPLICATE
                if sims[k, j] >= STEP_MATCH_THRESHOLD and (strong or sims[k, j] >= best_for_step[j]):
                    labels[k], positions[k] = 1.0, j / max(n - 1, 1)
    elif ex.next_step is None:
        target = cands.index(DONE) if DONE in cands else -1
    else:
        sims = [step_similarity(c, ex.next_step) if c != DONE else 0.0 for c in cands]
        if sims and max(sims) >= STEP_MATCH_THRESHOLD:
            target = int(np.argmax(sims))
    return labels, positions, target


class ReasoningTensors:
    """The rows of one reasoning split and their arrays; candidate texts are numbered in ``texts``."""

    def __init__(self, inputs: ReasoningInputs, examples: Sequence[ReasoningExample], *, training: bool):
        self.inputs, self.examples = inputs, list(examples)
        self.rows = [inputs.row(e.goal, e.completed, next_mode=e.kind == "next",
                                exclude_group=e.group if training else None) for e in self.examples]

    def _padded(self, text_ids: dict[str, int] | None = None) -> dict[str, np.ndarray]:
        n = len(self.rows)
        K, F = max([len(r.texts) for r in self.rows] + [1]), len(CANDIDATE_FEATURES)
        out = {"cand_index": np.full((n, K), -1, dtype=np.int32), "cand_feats": np.zeros((n, K, F), np.float32),
               "labels": np.zeros((n, K), np.float32), "positions": np.zeros((n, K), np.float32),
               "target": np.full(n, -1, dtype=np.int64), "plan_length": np.zeros(n, dtype=np.int32),
               "query_feats": np.zeros((n, len(QUERY_FEATURES)), np.float32)}
        for k, (row, ex) in enumerate(zip(self.rows, self.examples)):
            c = len(row.texts)
            out["cand_index"][k, :c] = [text_ids.setdefault(t, len(text_ids)) for t in row.texts] \
                if text_ids is not None else np.arange(c)
            out["cand_feats"][k, :c] = row.feats
            lab, pos, out["target"][k] = reasoning_targets(row.texts, ex)
            out["labels"][k, :c], out["positions"][k, :c] = lab, pos
            out["plan_length"][k] = row.plan_length
            out["query_feats"][k] = row.query_feats
        return out

    def _mode_rows(self, mode: str) -> np.ndarray:
        return np.array([e.kind == mode and (e.scored or e.split == "train") for e in self.examples], dtype=bool)

    def plan_metric(self):
        """How the floor's plan scores are judged: step F1 of the plan ``plan_from`` lists (order counts), as
        the wrapper serves it; the set F1 of the chosen steps breaks ties."""
        from dexter_brain.floor import evaluate_scores

        rows = np.flatnonzero(self._mode_rows("plan"))
        data = self.floor_data("plan")

        def judge(scores: np.ndarray) -> tuple[float, float]:
            f1 = [step_f1([self.rows[k].texts[i] for i in plan_from(self.rows[k], scores[n, : len(self.rows[k].texts)])],
                          self.examples[k].steps) for n, k in enumerate(rows.tolist())]
            return (float(np.mean(f1)) if f1 else float("nan")), evaluate_scores(scores, data, "binary")[0]

        return judge

    def floor_data(self, mode: str):
        """``FloorData`` of the ``plan`` rows (binary, keeping ``plan_length`` steps) or ``next`` rows (softmax)."""
        from dexter_brain.floor import FloorData

        rows = self._mode_rows(mode)
        a = self._padded()
        mask = a["cand_index"] >= 0
        if mode == "plan":
            return FloorData(a["cand_feats"][rows], mask[rows], labels=a["labels"][rows], top_n=a["plan_length"][rows])
        return FloorData(a["cand_feats"][rows], mask[rows], target=a["target"][rows])

    def arrays(self, encoder: Encoder, text_ids: dict[str, int]) -> dict[str, np.ndarray]:
        """The split's arrays; candidate texts are numbered into ``text_ids`` (shared by the splits)."""
        ex = self.examples
        return {
            **self._padded(text_ids),
            "query_ids": ReasoningInputs.query_ids(encoder, [e.goal for e in ex], [e.completed for e in ex],
                                                   [e.state for e in ex], [e.constraints for e in ex]),
            "mode": np.array([MODES.index(e.kind) for e in ex], dtype=np.int64),
            "next_mode": np.array([e.kind == "next" for e in ex], dtype=np.int32),
            "complexity": np.array([COMPLEXITY_LEVELS.index(e.complexity) for e in ex],
                                   dtype=np.int32),
            **episode_columns(ex),
        }

"""``ReasoningInputs``: the one path from (goal, steps done so far) to the reasoning TRM's inputs.

Candidate steps come from the nearest stored plans (adapted to the goal's words) and from a text index over
every stored step (see ``dexter_brain.features.reasoning``). ``plan`` rows choose steps among them; ``next``
rows choose one, or "done". The corpus build (``ReasoningTensors``) and ``ReasoningTRM`` both call
``ReasoningInputs.row``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dexter_brain.features import reasoning as reason_features
from dexter_brain.features.common import DONE_TEXT, NEAR_DUPLICATE, STEP_MATCH_THRESHOLD, Encoder, \
    reasoning_query_text, step_similarity, step_text
from dexter_brain.features.reasoning import DONE, ReasoningFeaturizer
from dexter_brain.inputs.common import episode_columns
from dexter_brain.metrics import step_f1
from dexter_brain.schema import COMPLEXITY_LEVELS, ReasoningExample

EXTRA_FEATURES = ("in_nearest", "step_match", "from_step_index")
CANDIDATE_FEATURES = reason_features.CANDIDATE_FEATURES + EXTRA_FEATURES
QUERY_FEATURES = reason_features.QUERY_FEATURES
MODES = ("plan", "next")
BASELINE_FEATURES = {"plan": CANDIDATE_FEATURES.index("in_nearest"), "next": CANDIDATE_FEATURES.index("top_next")}
"""The floors that need no labels: copy the nearest stored plan (its steps; its step at the next position)."""
MAX_CANDIDATES = reason_features.MAX_CANDIDATES + reason_features.STEP_INDEX_CANDIDATES + 1  # + "done"
_BASE = len(reason_features.CANDIDATE_FEATURES)


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


class ReasoningInputs:
    """Candidates and features of plan and next-step calls over one ``ReasoningFeaturizer``."""

    def __init__(self, featurizer: ReasoningFeaturizer):
        self.featurizer = featurizer

    def row(self, goal: str, completed: Sequence[str] = (), *, next_mode: bool,
            exclude_group: str | None = None) -> ReasoningRow:
        fz = self.featurizer
        cands = fz.candidates(goal, completed, exclude_group=exclude_group, with_done=next_mode)
        near = cands.neighbourhood.near if cands.neighbourhood is not None else []
        length = len(fz.plans[near[0][0]]["steps"]) if near else int(round(cands.mean_length))
        base = fz.features(goal, cands, completed)
        items = cands.items
        feats = np.zeros((len(items), len(CANDIDATE_FEATURES)), dtype=np.float32)
        feats[:, :_BASE] = base
        feats[:, _BASE] = [float(c.best_rank == 0 and c.text != DONE) for c in items]
        feats[:, _BASE + 1] = [c.step_match for c in items]
        feats[:, _BASE + 2] = [float(c.from_index) for c in items]
        order = np.array([1.0 if c.text == DONE else c.positions[0] if c.positions else 0.5 for c in items],
                         dtype=np.float32)
        return ReasoningRow(texts=[c.text for c in items], feats=feats, query_feats=cands.query_feats,
                            plan_length=max(1, length), order=order)

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

"""``ReasoningTRM``: plans for a goal, and the next step given the steps done so far.

Candidate steps come from the nearest stored plans, adapted to the goal's own words; the model chooses
which belong (``plan``) and in what order, or which comes next (``next_step``, where "done" is one of the
candidates). The carry links a conversation's ``plan`` and ``next_step`` calls.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dexter_brain.checkpoint import save_checkpoint
from dexter_brain.config import InferConfig
from dexter_brain.corpora.reasoning import COMPLEXITY_LEVELS, complexity_of
from dexter_brain.features.common import DONE_TEXT, NEAR_DUPLICATE, reasoning_query_text, step_similarity, step_text
from dexter_brain.features.reasoning import CANDIDATE_FEATURES, DONE, ReasoningFeaturizer
from dexter_brain.lexical import normalize
from dexter_brain.wrappers.carry import CarryStore
from dexter_brain.wrappers.common import (
    CALIBRATION_FILE, TRMCore, featurizer_from_state, softmax, validate_conversation_id, validate_text,
)

COMPLEXITY = COMPLEXITY_LEVELS
MAX_STEPS_IN = 64


def _steps(value, name: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise TypeError(f"{name} must be a list of strings, got {type(value).__name__}")
    if len(value) > MAX_STEPS_IN:
        raise ValueError(f"{name} has {len(value)} items (at most {MAX_STEPS_IN})")
    return [validate_text(s, f"{name}[{i}]") for i, s in enumerate(value)]


PLAN_EVIDENCE_WEIGHT = 8.0
"""Added to the logit of a step in the nearest stored plan. Chosen on the validation split of the scale-1
sample (weights 0-100: plan F1 0.318 at 0, 0.427 from 8 on); at this weight a plan follows the nearest
stored plan unless the model is very sure."""
NEXT_EVIDENCE_WEIGHT = 0.5
"""Added to the logit of the nearest plan's step at the next position (validation accuracy 0.393 at 0.5,
0.388 at 0, 0.379 at 100)."""


class ReasoningTRM:
    """Plan and step through goals with a per-conversation carry.

    Example:
        >>> reasoning = ReasoningTRM.from_checkpoint("models/reasoning")
        >>> reasoning.plan("Build an income-generating website")["plan_steps"]
        >>> reasoning.next_step("Build website", completed=["analyze market"])["next_step"]
    """

    def __init__(self, core: TRMCore):
        self.core = core
        self.featurizer = featurizer_from_state(ReasoningFeaturizer, core)

    @classmethod
    def from_checkpoint(cls, path: str | Path, use_carry: bool = True, device: str = "auto", *,
                        infer_config: InferConfig | None = None, carry_store: CarryStore | None = None
                        ) -> "ReasoningTRM":
        """Load a reasoning checkpoint. Raises CheckpointError for a missing, corrupt or other-kind one."""
        return cls(TRMCore(path, "reasoning", use_carry=use_carry, device=device, infer_config=infer_config,
                           carry_store=carry_store))

    @torch.inference_mode()
    def _run(self, goal: str, completed: list[str], state: str | None, constraints: list[str],
             conversation_id: str, next_mode: bool):
        core, model = self.core, self.core.model
        cands = self.featurizer.candidates(goal, completed, with_done=next_mode)
        texts = [c.text for c in cands.items]
        feats = self.featurizer.features(goal, cands, completed)
        K = max(len(texts), 1)
        cand_ids = np.zeros((1, K, model.config.max_candidate_len), dtype=np.int64)
        if texts:
            cand_ids[0, : len(texts)] = core.encoder.candidates(
                [DONE_TEXT if t == DONE else step_text(t) for t in texts])
        cand_feats = np.zeros((1, K, len(feats[0]) if len(feats) else model.config.num_candidate_features),
                              dtype=np.float32)
        cand_feats[0, : len(texts)] = feats
        mask = np.zeros((1, K), dtype=bool)
        mask[0, : len(texts)] = True
        batch = {"query_ids": core.tensor(core.encoder.queries(
                     [reasoning_query_text(goal, completed, state, constraints)]), torch.long),
                 "query_feats": core.tensor(cands.query_feats[None]), "cand_ids": core.tensor(cand_ids, torch.long),
                 "cand_feats": core.tensor(cand_feats), "cand_mask": core.tensor(mask)}
        result = core.call(batch, [conversation_id])
        core.keep_carry([conversation_id], result)
        return texts, result, cands.mean_length, feats

    def plan(self, goal: str, state: str | None = None, constraints: list[str] | None = None,
             conversation_id: str = "default") -> dict:
        """An ordered plan for ``goal``.

        Args:
            goal: What to achieve.
            state: Where things stand now (free text).
            constraints: Constraints to respect (free text each).
            conversation_id: Whose carry to start from and update.

        Returns:
            ``plan_steps`` (ordered list of strings; empty when no stored plan resembles the goal),
            ``complexity`` (the length of ``plan_steps``: simple 1-3 steps, moderate 4-6, complex 7 or more;
            simple for an empty plan), ``confidence`` (0-1), ``steps`` (recursion steps),
            ``candidates``: every candidate step with its probability of belonging to the plan, best first.
        """
        goal = validate_text(goal, "goal")
        state = validate_text(state, "state", allow_empty=True) if state is not None else None
        constraints = _steps(constraints, "constraints")
        conversation_id = validate_conversation_id(conversation_id)
        with self.core.conversations.hold([conversation_id]):
            texts, result, length, feats = self._run(goal, [], state, constraints, conversation_id, next_mode=False)
        out = result.out
        n = len(texts)
        if n == 0:
            return {"plan_steps": [], "complexity": "simple", "confidence": 0.0, "steps": int(result.steps[0]),
                    "candidates": []}
        # The model's score plus the evidence of the nearest stored plan (in it or not), weighted as chosen on
        # the validation split: a model trained on few plans is not yet a better judge than that plan.
        in_nearest = (feats[:, CANDIDATE_FEATURES.index("best_rank")] == 1.0).astype(np.float32)
        logits = out.scores[0, :n].float().cpu().numpy() + PLAN_EVIDENCE_WEIGHT * in_nearest
        probs = 1.0 / (1.0 + np.exp(-logits / self.core.calibration.temperature))
        positions = out.position[0, :n].float().cpu().numpy()
        # As many steps as the nearest stored plans have (their weighted mean length), the most probable
        # first: the scores rank steps well but sit below 0.5 for most of a plan, so a fixed cut drops most.
        chosen = _distinct([int(i) for i in np.argsort(-probs, kind="stable")], texts)[: max(1, round(length))]
        chosen.sort(key=lambda i: (positions[i], -probs[i]))
        # Confidence that the plan is right: every chosen step in, every other step out.
        inside = float(np.prod(probs[chosen]) ** (1 / len(chosen)))
        outside = [1 - probs[i] for i in range(n) if i not in chosen]
        confidence = inside * (float(np.prod(outside) ** (1 / len(outside))) if outside else 1.0)
        # Named from the returned plan's length, as the corpus names it (simple 1-3 steps, moderate 4-6,
        # complex 7+), so the label always agrees with the plan beside it; the complexity head is trained as
        # an auxiliary task and its guess can disagree with the chosen steps.
        complexity = complexity_of(len(chosen))
        order = np.argsort(-probs, kind="stable")
        return {"plan_steps": [texts[i] for i in chosen], "complexity": complexity, "confidence": confidence,
                "steps": int(result.steps[0]), "candidates": [(texts[i], float(probs[i])) for i in order]}

    def next_step(self, goal: str, completed: list[str] | None = None, conversation_id: str = "default") -> dict:
        """The step that should follow ``completed`` on the way to ``goal``.

        Returns:
            ``next_step`` (a string, or None when the plan is done), ``done`` (bool), ``confidence``
            (calibrated probability of the choice), ``steps`` (recursion steps), ``ranking``: the candidate
            next steps with their probabilities, best first (None stands for "done").
        """
        goal = validate_text(goal, "goal")
        completed = _steps(completed, "completed")
        conversation_id = validate_conversation_id(conversation_id)
        with self.core.conversations.hold([conversation_id]):
            texts, result, _, feats = self._run(goal, completed, None, [], conversation_id, next_mode=True)
        n = len(texts)
        scores = result.out.scores[0, :n].float().cpu().numpy()
        if n:
            scores = scores + NEXT_EVIDENCE_WEIGHT * feats[:n, CANDIDATE_FEATURES.index("top_next")]
        # A step already done is never the next one.
        done_before = {normalize(s) for s in completed}
        scores = np.where([t != DONE and normalize(t) in done_before for t in texts], -np.inf, scores)
        probs = softmax(scores, self.core.calibration.temperature)
        best = int(np.argmax(probs))
        done = texts[best] == DONE
        order = [i for i in np.argsort(-probs, kind="stable") if probs[i] > 0]
        return {"next_step": None if done else texts[best], "done": done, "confidence": float(probs[best]),
                "steps": int(result.steps[0]),
                "ranking": [(None if texts[i] == DONE else texts[i], float(probs[i])) for i in order]}

    def reset_carry(self, conversation_id: str | None = None) -> None:
        self.core.carries.reset(conversation_id)

    def save_carry(self, path: str | Path) -> Path:
        return self.core.carries.save(path)

    def load_carry(self, path: str | Path) -> int:
        return self.core.carries.load(path)

    def save(self, directory: str | Path) -> Path:
        core = self.core
        return save_checkpoint(directory, core.model, meta=core.meta, tokenizer=core.vocab.model_proto,
                               featurizer=self.featurizer.to_state(),
                               extra_json={CALIBRATION_FILE: core.calibration.to_dict()})

    def describe(self) -> dict:
        return {**self.core.describe(), "plans": len(self.featurizer.plans)}


def _distinct(order: list[int], texts: list[str]) -> list[int]:
    """``order`` (best first) without the steps that say what a better one already says: stored plans word
    the same step differently, and a plan should hold it once."""
    kept: list[int] = []
    for i in order:
        if all(step_similarity(texts[i], texts[j]) < NEAR_DUPLICATE for j in kept):
            kept.append(i)
    return kept

"""``ReasoningTRM``: plans for a goal, and the next step given the steps done so far.

Candidate steps come from the nearest stored plans, adapted to the goal's own words, and from a text index
over every stored step (``dexter_brain.inputs.reasoning``, the same code that made the training tensors);
the model chooses which belong (``plan``, listed in the nearest plans' order) or which comes next
(``next_step``, where "done" is one of the candidates). The carry links a conversation's ``plan`` and
``next_step`` calls.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dexter_brain.checkpoint import save_checkpoint
from dexter_brain.config import InferConfig
from dexter_brain.features.reasoning import DONE, ReasoningFeaturizer
from dexter_brain.inputs.reasoning import MODES, ReasoningInputs, plan_from
from dexter_brain.lexical import normalize
from dexter_brain.schema import complexity_of
from dexter_brain.wrappers.carry import CarryStore
from dexter_brain.wrappers.common import (
    CALIBRATION_FILE, FeedbackSink, TRMCore, featurizer_from_state, softmax, validate_conversation_id, validate_text,
)

MAX_STEPS_IN = 64


def _steps(value, name: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise TypeError(f"{name} must be a list of strings, got {type(value).__name__}")
    if len(value) > MAX_STEPS_IN:
        raise ValueError(f"{name} has {len(value)} items (at most {MAX_STEPS_IN})")
    return [validate_text(s, f"{name}[{i}]") for i, s in enumerate(value)]


class ReasoningTRM:
    """Plan and step through goals with a per-conversation carry.

    Example:
        >>> reasoning = ReasoningTRM.from_checkpoint("models/reasoning")
        >>> reasoning.plan("Build an income-generating website")["plan_steps"]
        >>> reasoning.next_step("Build website", completed=["analyze market"])["next_step"]
    """

    def __init__(self, core: TRMCore, feedback_dir: str | Path | None = None):
        self.core = core
        self.feedback_sink = FeedbackSink(feedback_dir, core.directory)
        self.featurizer = featurizer_from_state(ReasoningFeaturizer, core)
        self.inputs = ReasoningInputs(self.featurizer)

    @classmethod
    def from_checkpoint(cls, path: str | Path, use_carry: bool = True, device: str = "auto", *,
                        infer_config: InferConfig | None = None, carry_store: CarryStore | None = None,
                        backend: str = "torch", feedback_dir: str | Path | None = None) -> "ReasoningTRM":
        """Load a reasoning checkpoint. Raises CheckpointError for a missing, corrupt or other-kind one (or,
        with ``backend="onnx"``/``"onnx-int8"``, a missing or stale ONNX export). ``feedback_dir``: where
        ``record_outcome`` appends (default ``<models_dir>/feedback``)."""
        return cls(TRMCore(path, "reasoning", use_carry=use_carry, device=device, infer_config=infer_config,
                           carry_store=carry_store, backend=backend), feedback_dir=feedback_dir)

    def inputs_for(self, goal: str, completed: list[str] | None = None, *, next_mode: bool,
                   state: str | None = None, constraints: list[str] | None = None) -> dict:
        """What a ``plan`` (``next_mode=False``) or ``next_step`` (True) call would score, as numpy arrays of
        one row: ``query_ids``, ``query_feats``, ``cand_feats``, ``mode`` and ``candidates`` (the step texts,
        ``DONE`` for the end). Changes nothing; for inspection (the same arrays the training tensors hold)."""
        goal = validate_text(goal, "goal")
        completed = _steps(completed, "completed")
        row = self.inputs.row(goal, completed, next_mode=next_mode)
        return {"query_ids": ReasoningInputs.query_ids(self.core.encoder, [goal], [completed], [state],
                                                       [_steps(constraints, "constraints")]),
                "query_feats": row.query_feats[None], "cand_feats": row.feats[None],
                "mode": np.array([MODES.index("next" if next_mode else "plan")]), "candidates": row.texts}

    @torch.inference_mode()
    def _run(self, goal: str, completed: list[str], state: str | None, constraints: list[str],
             conversation_id: str, next_mode: bool):
        core, model = self.core, self.core.model
        row = self.inputs.row(goal, completed, next_mode=next_mode)
        K = max(len(row.texts), 1)
        cand_ids = np.zeros((1, K, model.config.max_candidate_len), dtype=np.int64)
        if row.texts and model.use_residual:
            cand_ids[0, : len(row.texts)] = core.encoder.candidates(ReasoningInputs.candidate_texts(row.texts))
        cand_feats = np.zeros((1, K, model.config.num_candidate_features), dtype=np.float32)
        cand_feats[0, : len(row.texts)] = row.feats
        mask = np.zeros((1, K), dtype=bool)
        mask[0, : len(row.texts)] = True
        batch = {"query_ids": core.tensor(ReasoningInputs.query_ids(core.encoder, [goal], [completed], [state],
                                                                    [constraints]), torch.long),
                 "query_feats": core.tensor(row.query_feats[None]), "cand_ids": core.tensor(cand_ids, torch.long),
                 "cand_feats": core.tensor(cand_feats), "cand_mask": core.tensor(mask),
                 "mode": core.tensor(np.array([MODES.index("next" if next_mode else "plan")]), torch.long)}
        result = core.call(batch, [conversation_id])
        core.keep_carry([conversation_id], result)
        return row, result

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
            row, result = self._run(goal, [], state, constraints, conversation_id, next_mode=False)
        n = len(row.texts)
        if n == 0:
            return {"plan_steps": [], "complexity": complexity_of(0), "confidence": 0.0,
                    "steps": int(result.steps[0]), "candidates": []}
        logits = result.out.scores[0, :n].float().cpu().numpy()
        probs = 1.0 / (1.0 + np.exp(-logits / self.core.calibration.temperature))
        chosen = plan_from(row, logits)
        inside = float(np.prod(probs[chosen]) ** (1 / len(chosen)))
        outside = [1 - probs[i] for i in range(n) if i not in chosen]
        confidence = inside * (float(np.prod(outside) ** (1 / len(outside))) if outside else 1.0)
        order = np.argsort(-probs, kind="stable")
        return {"plan_steps": [row.texts[i] for i in chosen], "complexity": complexity_of(len(chosen)),
                "confidence": confidence, "steps": int(result.steps[0]),
                "candidates": [(row.texts[i], float(probs[i])) for i in order]}

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
            row, result = self._run(goal, completed, None, [], conversation_id, next_mode=True)
        texts = row.texts
        scores = result.out.scores[0, : len(texts)].float().cpu().numpy()
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

    def record_outcome(self, goal: str, steps: list[str], success: bool) -> dict:
        """Record whether a plan worked, for ``dexter-brain learn``: a plan that worked becomes a stored pattern
        in the feedback directory (the same goal and steps again count it up); one that failed is kept apart,
        never learnt as a plan to follow.

        Args:
            goal: What the plan was for.
            steps: Its steps in the order they were carried out.
            success: Whether it worked.

        Returns:
            ``pattern_id`` (the same for the same goal and steps), ``goal``, ``steps``, ``success``.

        Raises:
            ValueError / TypeError: An empty goal, no steps or an empty one, a ``success`` that is not a bool; a
                feedback directory that may not be written.

        Example:
            >>> r = reasoning.plan("Book a weekend getaway")  # doctest: +SKIP
            >>> reasoning.record_outcome("Book a weekend getaway", r["plan_steps"], success=True)  # doctest: +SKIP
        """
        goal, steps, success = self.check_outcome(goal, steps, success)
        return {"pattern_id": self.feedback_sink.log.plan(goal, steps, success), "goal": goal, "steps": steps,
                "success": success}

    @staticmethod
    def check_outcome(goal, steps, success) -> tuple[str, list[str], bool]:
        """The arguments of ``record_outcome`` checked; writes nothing."""
        goal = validate_text(goal, "goal")
        steps = _steps(steps, "steps")
        if not steps:
            raise ValueError("steps is empty: give the plan's steps in order")
        if not isinstance(success, bool):
            raise TypeError(f"success must be True or False, got {success!r}")
        return goal, steps, success

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

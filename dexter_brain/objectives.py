"""What each TRM kind is trained to do: its loss for one supervision step, whether its current prediction
is correct (the halting target), and its validation metrics. The trainer only ever calls these.

Batches are dicts of tensors (see ``dexter_brain.data``); every loss returns (loss, correct (B,), parts).
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from dexter_brain.model import StepOutput

NEG = -1e4
PLAN_CORRECT_F1 = 0.8


class Head(Protocol):
    """The task-specific part of training: loss, correctness and per-example validation metrics."""

    kind: str
    primary_metric: str

    def loss(self, out: StepOutput, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, dict[str, Tensor]]: ...

    def example_metrics(self, out: StepOutput, batch: dict[str, Tensor]) -> dict[str, Tensor]: ...


def _finite(scores: Tensor) -> Tensor:
    return scores.masked_fill(~torch.isfinite(scores), NEG)


def recall_at(scores: Tensor, labels: Tensor, k: int) -> Tensor:
    """Share of the positives ranked in the top k (B,); NaN where a row has no positive."""
    k = min(k, scores.shape[1])
    top = scores.topk(k, dim=1).indices
    hit = labels.gather(1, top).sum(1)
    total = labels.sum(1)
    return torch.where(total > 0, hit / total.clamp(min=1), torch.full_like(total, float("nan")))


class MemoryHead:
    """Multi-positive listwise loss over candidates plus "nothing relevant"; an in-batch dense loss trains
    the query vector used to search the whole bank."""

    kind = "memory"
    primary_metric = "recall@5"

    def __init__(self, dense_weight: float = 0.5):
        self.dense_weight = dense_weight

    def loss(self, out, batch):
        labels = batch["labels"]  # (B, K)
        has_pos = labels.sum(1) > 0
        logits = torch.cat([_finite(out.scores), out.null_score[:, None]], dim=1)  # (B, K+1)
        target = torch.cat([labels, (~has_pos).float()[:, None]], dim=1)
        listwise = torch.logsumexp(logits.masked_fill(target == 0, NEG), 1) - torch.logsumexp(logits, 1)
        task = -listwise.mean()
        correct = target.gather(1, logits.argmax(1, keepdim=True)).squeeze(1) > 0
        parts = {"listwise": task.detach()}
        if self.dense_weight and out.cand_vecs is not None and has_pos.any():
            dense = self._dense_loss(out, batch, has_pos)
            task = task + self.dense_weight * dense
            parts["dense"] = dense.detach()
        return task, correct, parts

    @staticmethod
    def _dense_loss(out, batch, has_pos):
        # Every candidate of the batch is a negative for every row, except the row's own positives.
        vecs = F.normalize(out.cand_vecs.reshape(-1, out.cand_vecs.shape[-1]), dim=-1)  # (B*K, D)
        ids = batch["cand_index"].reshape(-1)  # (B*K,)
        logits = out.query_vec @ vecs.T * 20.0  # (B, B*K)
        pos_ids = torch.where(batch["labels"] > 0, batch["cand_index"], torch.full_like(batch["cand_index"], -2))
        is_pos = (ids[None, None, :] == pos_ids[:, :, None]).any(1)  # (B, B*K)
        logits = logits.masked_fill((ids < 0)[None, :], NEG)
        ls = torch.logsumexp(logits.masked_fill(~is_pos, NEG), 1) - torch.logsumexp(logits, 1)
        return -(ls[has_pos]).mean()

    def example_metrics(self, out, batch):
        scores = _finite(out.scores)
        labels = batch["labels"]
        r5 = recall_at(scores, labels, 5)
        rank = (scores > (scores.masked_fill(labels == 0, NEG).max(1, keepdim=True).values)).sum(1)
        rr = torch.where(labels.sum(1) > 0, 1.0 / (rank + 1).float(), torch.full_like(r5, float("nan")))
        return {"recall@1": recall_at(scores, labels, 1), "recall@5": r5, "mrr": rr,
                "followup_recall@5": torch.where(batch["is_followup"] > 0, r5, torch.full_like(r5, float("nan")))}


class ToolHead:
    """Cross-entropy over the available tools for successful calls; BCE on the called tool's failure."""

    kind = "tool"
    primary_metric = "top1"

    def __init__(self, fail_weight: float = 0.3):
        self.fail_weight = fail_weight

    def loss(self, out, batch):
        target, failed = batch["target"], batch["failed"].bool()
        scores = _finite(out.scores)
        ce = F.cross_entropy(scores, target.clamp(min=0), reduction="none")
        select = (~failed) & (target >= 0)
        task = (ce * select).sum() / select.sum().clamp(min=1)
        fail_logit = out.fail_logit.gather(1, target.clamp(min=0)[:, None]).squeeze(1)
        fail = F.binary_cross_entropy_with_logits(fail_logit, failed.float())
        correct = scores.argmax(1) == target
        return task + self.fail_weight * fail, correct, {"select": task.detach(), "fail": fail.detach()}

    def example_metrics(self, out, batch):
        scores = _finite(out.scores)
        target, failed = batch["target"], batch["failed"].bool()
        nan = torch.full(target.shape, float("nan"), device=scores.device)
        valid = (~failed) & (target >= 0)
        top1 = (scores.argmax(1) == target).float()
        top3 = (scores.topk(min(3, scores.shape[1]), 1).indices == target[:, None]).any(1).float()
        return {"top1": torch.where(valid, top1, nan), "top3": torch.where(valid, top3, nan),
                "correction_top1": torch.where(valid & (batch["is_correction"] > 0), top1, nan)}


class ReasoningHead:
    """Plan mode: which candidate steps belong (BCE), where (position), and the plan's complexity.
    Next mode: cross-entropy over candidate steps and "done"."""

    kind = "reasoning"
    primary_metric = "score"

    def loss(self, out, batch):
        next_mode = batch["next_mode"].bool()
        mask = batch["cand_mask"]
        scores = _finite(out.scores)
        target = batch["target"]
        has_target = next_mode & (target >= 0)
        ce = F.cross_entropy(scores, target.clamp(min=0), reduction="none")
        next_loss = (ce * has_target).sum() / has_target.sum().clamp(min=1)
        plan = ~next_mode
        labels = batch["labels"]
        bce = F.binary_cross_entropy_with_logits(scores, labels, reduction="none") * mask
        plan_loss = (bce.sum(1) / mask.sum(1).clamp(min=1) * plan).sum() / plan.sum().clamp(min=1)
        pos_mask = (labels > 0) & plan[:, None]
        position = ((out.position - batch["positions"]) ** 2 * pos_mask).sum() / pos_mask.sum().clamp(min=1)
        complexity = (F.cross_entropy(out.complexity_logits, batch["complexity"], reduction="none") * plan).sum() \
            / plan.sum().clamp(min=1)
        chosen = (scores > 0) & mask
        gold = (labels > 0) & mask
        # "Correct enough to stop thinking" for a plan: its steps agree with the reference at F1 >= 0.8
        # (all-or-nothing over dozens of candidates would never let the halting head stop).
        f1 = 2 * (chosen & gold).sum(1) / (chosen.sum(1) + gold.sum(1)).clamp(min=1)
        correct = torch.where(next_mode, scores.argmax(1) == target, f1 >= PLAN_CORRECT_F1)
        loss = next_loss + plan_loss + position + 0.2 * complexity
        return loss, correct, {"next": next_loss.detach(), "plan": plan_loss.detach(), "position": position.detach()}

    def example_metrics(self, out, batch):
        next_mode = batch["next_mode"].bool()
        mask = batch["cand_mask"]
        scores = _finite(out.scores)
        nan = torch.full(next_mode.shape, float("nan"), device=scores.device)
        next_acc = torch.where(next_mode & (batch["target"] >= 0), (scores.argmax(1) == batch["target"]).float(), nan)
        labels = (batch["labels"] > 0) & mask
        chosen = (scores > 0) & mask
        tp = (chosen & labels).sum(1).float()
        f1 = 2 * tp / (chosen.sum(1) + labels.sum(1)).clamp(min=1)
        plan_f1 = torch.where(~next_mode, f1, nan)
        score = torch.where(next_mode, next_acc, plan_f1)
        return {"next_step_acc": next_acc, "plan_f1": plan_f1, "score": score}


def head_for(kind: str) -> Head:
    return {"memory": MemoryHead, "tool": ToolHead, "reasoning": ReasoningHead}[kind]()

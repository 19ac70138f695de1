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


def recall_at(scores: Tensor, labels: Tensor, k: int, total: Tensor | None = None) -> Tensor:
    """Share of the positives ranked in the top k (B,), out of ``total`` per row (default: the positives among
    the candidates); NaN where a row has none."""
    k = min(k, scores.shape[1])
    top = scores.topk(k, dim=1).indices
    hit = labels.gather(1, top).sum(1)
    total = labels.sum(1) if total is None else total
    return torch.where(total > 0, hit / total.clamp(min=1), torch.full_like(total, float("nan")))


class MemoryHead:
    """Multi-positive listwise loss over the candidates plus "nothing relevant". A turn whose stored answer
    is not among its candidates has nothing to rank and is left out of the loss; metrics count it as
    missed (recall is over all the turn's reference facts, as the wrapper serves)."""

    kind = "memory"
    primary_metric = "recall@5"

    def loss(self, out, batch):
        labels = batch["labels"]  # (B, K)
        has_pos = labels.sum(1) > 0
        rankable = has_pos | (batch["num_gold"] == 0)
        logits = torch.cat([_finite(out.scores), out.null_score[:, None].to(out.scores.dtype)], dim=1)  # (B, K+1)
        target = torch.cat([labels, (~has_pos).float()[:, None]], dim=1)
        listwise = torch.logsumexp(logits.masked_fill(target == 0, NEG), 1) - torch.logsumexp(logits, 1)
        task = -(listwise * rankable).sum() / rankable.sum().clamp(min=1)
        correct = target.gather(1, logits.argmax(1, keepdim=True)).squeeze(1) > 0
        return task, correct, {"listwise": task.detach()}

    def example_metrics(self, out, batch):
        scores = _finite(out.scores)
        labels, gold = batch["labels"], batch["num_gold"].float()
        nan = torch.full_like(gold, float("nan"))
        r5 = recall_at(scores, labels, 5, total=gold)  # out of all the turn's reference facts, as served
        rank = (scores > (scores.masked_fill(labels == 0, NEG).max(1, keepdim=True).values)).sum(1)
        rr = torch.where(labels.sum(1) > 0, 1.0 / (rank + 1).float(), torch.zeros_like(gold))
        return {"recall@1": recall_at(scores, labels, 1, total=gold), "recall@5": r5, "mrr": torch.where(gold > 0, rr, nan),
                "followup_recall@5": torch.where(batch["is_followup"] > 0, r5, nan)}


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
        # Every successful call counts; one whose tool did not make the shortlist is a miss.
        scores = _finite(out.scores)
        target, failed = batch["target"], batch["failed"].bool()
        nan = torch.full(target.shape, float("nan"), device=scores.device)
        valid = ~failed
        top1 = ((scores.argmax(1) == target) & (target >= 0)).float()
        top3 = ((scores.topk(min(3, scores.shape[1]), 1).indices == target[:, None]).any(1) & (target >= 0)).float()
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
        # A plan keeps its ``plan_length`` best candidates, as the wrapper serves it.
        next_mode = batch["next_mode"].bool()
        mask = batch["cand_mask"]
        scores = _finite(out.scores)
        nan = torch.full(next_mode.shape, float("nan"), device=scores.device)
        target = batch["target"]
        next_acc = torch.where(next_mode, ((scores.argmax(1) == target) & (target >= 0)).float(), nan)
        labels = (batch["labels"] > 0) & mask
        rank = scores.argsort(1, descending=True).argsort(1)  # (B, K) rank of each candidate
        chosen = (rank < batch["plan_length"][:, None].clamp(min=1)) & mask
        tp = (chosen & labels).sum(1).float()
        f1 = 2 * tp / (chosen.sum(1) + labels.sum(1)).clamp(min=1)
        plan_f1 = torch.where(~next_mode, f1, nan)
        score = torch.where(next_mode, next_acc, plan_f1)
        return {"next_step_acc": next_acc, "plan_f1": plan_f1, "score": score}


def head_for(kind: str) -> Head:
    return {"memory": MemoryHead, "tool": ToolHead, "reasoning": ReasoningHead}[kind]()

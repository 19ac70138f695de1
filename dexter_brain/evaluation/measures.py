"""The evaluation's small measures on top of ``dexter_brain.metrics`` (means over rows, rounded for the
report), the exact next-step rule, and the targets the report checks.
"""

from __future__ import annotations

import numpy as np

from dexter_brain.lexical import normalize
from dexter_brain.metrics import recall_at_k, reciprocal_rank

RECALL_CURVE_K = tuple(range(1, 21))
# (metric, reference metric or None for an absolute bar, margin or bar): the targets every brain is held to.
TARGETS = (
    ("memory.recall@5", "memory.bm25_recall@5", 0.10),
    ("memory.recall@5", "memory.floor_recall@5", 0.0),
    ("memory.followup_recall@5", "memory.followup_recall@5_stateless", 0.20),
    ("tool.top1", None, 0.95),
    ("tool.top1", "tool.bm25_top1", 0.15),
    ("tool.top1", "tool.linear_top1", 0.0),
    ("tool.top1", "tool.floor_top1", 0.0),
    ("tool.unseen_top1", "tool.bm25_unseen_top1", 0.0),
    ("tool.correction_top1", None, 0.90),
    ("reasoning.step_f1", "reasoning.nn_step_f1", 0.0),
    ("reasoning.step_f1", "reasoning.floor_step_f1", 0.0),
)


def mean(values) -> float | None:
    """The mean rounded to 4 decimals, or None for no values."""
    values = list(values)
    return round(float(np.mean(values)), 4) if values else None


def ranking_metrics(rankings: list[list[str]], positives: list[list[str]], prefix: str = "") -> dict:
    """``recall@1``, ``recall@5`` and ``mrr`` (means over rows) of rankings against each row's positives."""
    return {f"{prefix}recall@1": mean(recall_at_k(r, p, 1) for r, p in zip(rankings, positives)),
            f"{prefix}recall@5": mean(recall_at_k(r, p, 5) for r, p in zip(rankings, positives)),
            f"{prefix}mrr": mean(reciprocal_rank(r, p) for r, p in zip(rankings, positives))}


def recall_curve(rankings: list[list[str]], positives: list[list[str]]) -> list[float | None]:
    """Mean recall@k for k in ``RECALL_CURVE_K``."""
    return [mean(recall_at_k(r, p, k) for r, p in zip(rankings, positives)) for k in RECALL_CURVE_K]


def top_k_accuracy(rankings: list[list[str]], answers: list[str], k: int = 1) -> float | None:
    """Share of rows whose answer is among the first ``k`` of the ranking."""
    return mean(a in r[:k] for r, a in zip(rankings, answers))


def same_step(predicted: str | None, reference: str | None) -> bool:
    """Exact next-step agreement: equal normalised text, or both "done" (None)."""
    if predicted is None or reference is None:
        return predicted is None and reference is None
    return normalize(predicted) == normalize(reference)


def _lookup(report: dict, path: str):
    section, key = path.split(".", 1)
    return (report.get(section) or {}).get(key)


def targets(report: dict) -> list[dict]:
    """Each target with its ``value``, ``bar`` (reference + margin, or absolute), ``target`` in words and
    ``met``; a target whose value or reference was not measured is not met and says so in ``reason``."""
    out = []
    for metric, reference, margin in TARGETS:
        value = _lookup(report, metric)
        ref_value = _lookup(report, reference) if reference else None
        bar = margin if reference is None else (round(ref_value + margin, 4) if ref_value is not None else None)
        text = f">= {margin:.2f}" if reference is None else (
            f">= {reference} + {margin:.2f}" if margin else f">= {reference}")
        entry = {"metric": metric, "reference": reference, "margin": margin if reference else None, "bar": bar,
                 "value": value, "target": text, "met": value is not None and bar is not None and value >= bar - 1e-9}
        if value is None or bar is None:
            entry["reason"] = "not measured (see the section's reason)"
        out.append(entry)
    return out

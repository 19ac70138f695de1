"""Quality metrics shared by calibration, evaluation and the benchmarks (plain Python and numpy).

Step F1 is order-aware: predicted and reference steps are matched by the longest order-preserving
alignment in which two steps match when their content-word F1 reaches ``STEP_MATCH_THRESHOLD`` (0.5).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dexter_brain.features.common import STEP_MATCH_THRESHOLD, step_similarity


def recall_at_k(ranked: Sequence[str], relevant: Sequence[str] | set[str], k: int) -> float:
    """Share of ``relevant`` found in the first ``k`` of ``ranked``."""
    relevant = set(relevant)
    if not relevant:
        raise ValueError("recall needs at least one relevant item")
    return len(relevant & set(ranked[:k])) / len(relevant)


def reciprocal_rank(ranked: Sequence[str], relevant: Sequence[str] | set[str]) -> float:
    """1 / rank of the first relevant item (0 when none is ranked)."""
    relevant = set(relevant)
    for i, item in enumerate(ranked):
        if item in relevant:
            return 1.0 / (i + 1)
    return 0.0


def expected_calibration_error(confidence: Sequence[float], correct: Sequence[bool], bins: int = 10) -> float:
    """ECE with equal-width bins: sum over bins of |accuracy - mean confidence| weighted by bin share."""
    conf = np.asarray(confidence, dtype=np.float64)
    hit = np.asarray(correct, dtype=np.float64)
    if len(conf) == 0:
        return float("nan")
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            ece += mask.mean() * abs(hit[mask].mean() - conf[mask].mean())
    return float(ece)


def reliability_bins(confidence: Sequence[float], correct: Sequence[bool], bins: int = 10
                     ) -> list[tuple[float, float, int]]:
    """(mean confidence, accuracy, count) per non-empty bin, for reliability diagrams."""
    conf = np.asarray(confidence, dtype=np.float64)
    hit = np.asarray(correct, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    return [(float(conf[which == b].mean()), float(hit[which == b].mean()), int((which == b).sum()))
            for b in range(bins) if (which == b).any()]


def matched_steps(predicted: Sequence[str], reference: Sequence[str],
                  threshold: float = STEP_MATCH_THRESHOLD) -> int:
    """Size of the longest order-preserving matching between the two step lists."""
    n, m = len(predicted), len(reference)
    table = np.zeros((n + 1, m + 1), dtype=np.int32)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            best = max(table[i - 1, j], table[i, j - 1])
            if step_similarity(predicted[i - 1], reference[j - 1]) >= threshold:
                best = max(best, table[i - 1, j - 1] + 1)
            table[i, j] = best
    return int(table[n, m])


def step_f1(predicted: Sequence[str], reference: Sequence[str], threshold: float = STEP_MATCH_THRESHOLD) -> float:
    """Order-aware step F1 of a predicted plan against the reference plan."""
    if not predicted or not reference:
        return float(not predicted and not reference)
    matches = matched_steps(predicted, reference, threshold)
    if matches == 0:
        return 0.0
    precision, recall = matches / len(predicted), matches / len(reference)
    return 2 * precision * recall / (precision + recall)


def steps_match(a: str | None, b: str | None, threshold: float = STEP_MATCH_THRESHOLD) -> bool:
    """Whether two next-step answers agree (``None`` means "done")."""
    if a is None or b is None:
        return a is None and b is None
    return step_similarity(a, b) >= threshold

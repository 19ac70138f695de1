"""The linear floor of every TRM's score: a logistic regression over the hand-made candidate features.

A TRM scores a candidate as ``floor(features) + residual``: the floor is fitted here, first, on the
training split (by the corpus build, once per corpus), and the recursive model learns only a residual on
top of it (initialised at zero). So the model starts exactly at the floor, and the build keeps the
residual only where it beats the floor on validation.

The fit is a conditional logistic regression with the objective the TRM head trains with:
``listwise`` (softmax over the candidates plus "nothing relevant", several right answers allowed: memory),
``softmax`` (one right candidate: tools, next step) or ``binary`` (each candidate in or out: plan steps).
Features are standardised with the training mean and deviation; the L2 strength is chosen on the
validation split by the kind's own metric, and a single "baseline" feature (BM25's score for memory and
tools, the nearest stored plan for plans) competes as a floor of its own: with too few labels to beat it,
the floor *is* that baseline. Each mode (reasoning: plan and next step) gets its own weights.

Everything fitted lives in ``floor.json`` beside the tensors and in every checkpoint: no score constant is
chosen by hand.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

logger = logging.getLogger(__name__)

Objective = Literal["listwise", "softmax", "binary"]
L2_GRID = (1e-4, 1e-3, 1e-2)
"""L2 strengths tried (on the mean loss, standardised features); the validation metric picks one."""


def even_rows(n: int, max_rows: int) -> np.ndarray:
    """Indices of at most ``max_rows`` of ``n`` rows, evenly spread (all of them when there are no more)."""
    if n <= max_rows:
        return np.arange(n, dtype=np.int64)
    return np.linspace(0, n - 1, max_rows).astype(np.int64)


@dataclass
class FloorData:
    """Candidate features and targets of one mode, for fitting or choosing a floor.

    ``labels`` (N, K) 0/1 for ``listwise`` and ``binary``; ``target`` (N,) the right candidate for
    ``softmax`` (-1: none, left out); ``top_n`` (N,) how many candidates a ``binary`` answer keeps.
    """

    feats: np.ndarray  # (N, K, F)
    mask: np.ndarray  # (N, K) bool
    labels: np.ndarray | None = None  # (N, K)
    target: np.ndarray | None = None  # (N,)
    top_n: np.ndarray | None = None  # (N,)
    weight: np.ndarray | None = None  # (N,) per-row weight in the loss

    def __len__(self) -> int:
        return len(self.feats)

    def subset(self, rows: np.ndarray) -> "FloorData":
        pick = (lambda a: None if a is None else a[rows])
        return FloorData(self.feats[rows], self.mask[rows], pick(self.labels), pick(self.target), pick(self.top_n),
                         pick(self.weight))


@dataclass
class LinearFloor:
    """``score = ((features - mean) / std) @ weight[mode] + bias[mode]`` per candidate."""

    feature_names: tuple[str, ...]
    mean: np.ndarray  # (F,)
    std: np.ndarray  # (F,)
    weight: np.ndarray  # (M, F)
    bias: np.ndarray  # (M,)
    info: list[dict] = field(default_factory=list)
    """Per mode: what was chosen (``choice``), the validation metric of each tried floor, row counts."""

    @property
    def num_modes(self) -> int:
        return len(self.weight)

    def scores(self, feats: np.ndarray, mode: int | np.ndarray = 0) -> np.ndarray:
        """Floor scores of candidates: ``feats`` (..., K, F) -> (..., K)."""
        z = (np.asarray(feats, dtype=np.float64) - self.mean) / self.std
        w, b = self.weight[mode], self.bias[mode]
        if np.ndim(mode):
            return np.einsum("nkf,nf->nk", z, w) + b[:, None]
        return z @ w + b

    def to_json(self) -> dict:
        return {"feature_names": list(self.feature_names), "mean": _floats(self.mean), "std": _floats(self.std),
                "weight": [_floats(w) for w in self.weight], "bias": _floats(self.bias), "info": self.info}

    @classmethod
    def from_json(cls, data: dict) -> "LinearFloor":
        try:
            floor = cls(tuple(data["feature_names"]), np.array(data["mean"], dtype=np.float64),
                        np.array(data["std"], dtype=np.float64), np.array(data["weight"], dtype=np.float64),
                        np.array(data["bias"], dtype=np.float64), list(data.get("info", [])))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a linear floor: {exc}") from exc
        F = len(floor.feature_names)
        if floor.mean.shape != (F,) or floor.std.shape != (F,) or floor.weight.ndim != 2 \
                or floor.weight.shape[1] != F or floor.bias.shape != (len(floor.weight),):
            raise ValueError(f"not a linear floor: shapes do not agree with {F} features")
        return floor

    @classmethod
    def neutral(cls, feature_names: Sequence[str], num_modes: int = 1) -> "LinearFloor":
        """A floor that scores every candidate 0 (models built without a fitted floor, e.g. in unit tests)."""
        F = len(feature_names)
        return cls(tuple(feature_names), np.zeros(F), np.ones(F), np.zeros((num_modes, F)), np.zeros(num_modes),
                   [{"choice": "none"} for _ in range(num_modes)])


def _floats(a: np.ndarray) -> list[float]:
    return [float(round(float(v), 8)) for v in np.asarray(a).reshape(-1)]


# --- the fit --------------------------------------------------------------------------------------------
def _log_softmax_parts(logits: np.ndarray, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise logsumexp over the ``allowed`` entries and the softmax over them (0 elsewhere)."""
    x = logits + np.where(allowed, 0.0, -1e30)  # exp of a disallowed entry underflows to exactly 0
    top = np.max(x, axis=1, keepdims=True)
    top = np.where(top > -1e29, top, 0.0)
    e = np.exp(x - top)
    total = np.maximum(e.sum(1, keepdims=True), 1e-300)
    return (np.log(total) + top)[:, 0], e / total


def _loss_and_grad(logits: np.ndarray, data: FloorData, objective: Objective, row_weight: np.ndarray
                   ) -> tuple[float, np.ndarray]:
    """The mean loss of the objective (what the TRM heads train with) and its gradient wrt the logits."""
    mask = data.mask.astype(bool)
    if objective == "binary":
        y = data.labels.astype(np.float64)
        count = np.maximum(mask.sum(1, keepdims=True), 1)
        bce = (np.logaddexp(0.0, logits) - y * logits) * mask
        per_row = bce.sum(1) / count[:, 0]
        grad = (1.0 / (1.0 + np.exp(-logits)) - y) * mask / count
    else:
        if objective == "softmax":
            right = np.zeros_like(mask)
            right[np.arange(len(mask)), np.clip(data.target, 0, None)] = True
        else:
            right = (data.labels > 0) & mask
        if objective == "listwise":  # "nothing relevant" competes at logit 0
            logits = np.concatenate([logits, np.zeros((len(logits), 1))], 1)
            mask = np.concatenate([mask, np.ones((len(mask), 1), dtype=bool)], 1)
            right = np.concatenate([right, ~right.any(1, keepdims=True)], 1)
        all_lse, p_all = _log_softmax_parts(logits, mask)
        right_lse, p_right = _log_softmax_parts(logits, right & mask)
        per_row = all_lse - right_lse
        grad = (p_all - p_right)[:, : data.mask.shape[1]]
    total = row_weight.sum()
    return float((per_row * row_weight).sum() / total), grad * (row_weight / total)[:, None]


def _fit_weights(z: np.ndarray, data: FloorData, objective: Objective, l2: float) -> tuple[np.ndarray, float]:
    """Weights (F,) and bias of one L2 strength: L-BFGS on the mean loss plus ``l2 * |w|^2``."""
    from scipy.optimize import minimize

    z = np.ascontiguousarray(z, dtype=np.float64)
    F = z.shape[-1]
    row_weight = np.ones(len(data)) if data.weight is None else data.weight.astype(np.float64)
    if objective == "softmax":
        row_weight = row_weight * (data.target >= 0)  # rows without an answer teach nothing
    has_bias = objective != "softmax"  # a common shift changes no softmax

    def objective_fn(theta: np.ndarray) -> tuple[float, np.ndarray]:
        # The bias is penalised too: with every training query answerable, "nothing relevant" would
        # otherwise be pushed to minus infinity.
        w, b = theta[:F], (theta[F] if has_bias else 0.0)
        loss, g = _loss_and_grad(z @ w + b, data, objective, row_weight)
        grad = np.einsum("nk,nkf->f", g, z) + 2 * l2 * w
        out = np.append(grad, g.sum() + 2 * l2 * b) if has_bias else grad
        return loss + l2 * float(theta @ theta), out

    result = minimize(objective_fn, np.zeros(F + has_bias), jac=True, method="L-BFGS-B",
                      options={"maxiter": 200, "gtol": 1e-6})
    theta = result.x
    return theta[:F].copy(), float(theta[F]) if has_bias else 0.0


def evaluate_scores(scores: np.ndarray, data: FloorData, objective: Objective) -> tuple[float, float]:
    """The validation metric of a scoring and a finer one that breaks its ties: (recall@5, MRR) for
    ``listwise``, (top-1, MRR) for ``softmax``, (F1 of the ``top_n`` best, average precision) for ``binary``.
    Rows without a right answer are left out; NaN when no row counts."""
    scores = np.where(data.mask, scores, -np.inf)
    values, fine = [], []
    for n in range(len(scores)):
        s, m = scores[n], data.mask[n]
        if objective == "softmax":
            if data.target[n] < 0:
                continue
            labels = np.zeros(len(s), dtype=bool)
            labels[int(data.target[n])] = True
        else:
            labels = (data.labels[n] > 0) & m
            if not labels.any():
                continue
        order = np.argsort(-s, kind="stable")
        hits = labels[order]
        ranks = np.flatnonzero(hits) + 1
        if objective == "softmax":
            values.append(float(hits[0]))
        elif objective == "listwise":
            values.append(float(hits[:5].sum() / labels.sum()))
        else:
            k = int(min(max(data.top_n[n], 1), m.sum()))
            values.append(2 * float(hits[:k].sum()) / (k + labels.sum()))
        if objective == "binary":
            fine.append(float(np.mean(np.arange(1, len(ranks) + 1) / ranks)))
        else:
            fine.append(1.0 / ranks[0])
    if not values:
        return float("nan"), float("nan")
    return float(np.mean(values)), float(np.mean(fine))


Metric = Callable[[np.ndarray], tuple[float, float]]
"""Scores of the validation rows (N, K) -> (metric, tie-breaker), higher better."""


@dataclass
class Mode:
    """One mode to fit: training variants (name, data), validation data, objective and baseline column."""

    trains: list[tuple[str, FloorData]]
    val: FloorData | None
    objective: Objective
    baseline: int | None = None
    metric: Metric | None = None
    """How validation scores are judged; default ``evaluate_scores`` (the served answer may need more:
    a plan is judged in the order it is listed)."""


def fit_mode(mode: Mode, l2_grid: Sequence[float] = L2_GRID
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, dict]:
    """Fit one mode: returns (mean, std, weight, bias, info).

    Every L2 strength of ``l2_grid`` is fitted on each training variant; the one with the best validation
    metric wins, and the ``baseline`` feature alone (weight 1) wins over all of them unless one is better
    on validation. Without validation rows the baseline is kept (the fit could not show that it does
    better); without a baseline, the middle of the grid on the first variant.
    """
    train, val, objective, baseline = mode.trains[0][1], mode.val, mode.objective, mode.baseline
    F = train.feats.shape[-1]
    live = train.feats[train.mask.astype(bool)]
    mean = live.mean(0) if len(live) else np.zeros(F)
    std = live.std(0) if len(live) else np.ones(F)
    std = np.where(std > 1e-6, std, 1.0)
    info: dict = {"objective": objective, "train_rows": int(len(train)), "val_rows": int(len(val) if val else 0)}
    candidates: list[tuple[str, np.ndarray, float]] = []
    if baseline is not None:
        w = np.zeros(F)
        w[baseline] = 1.0
        candidates.append((f"baseline:{baseline}", w, 0.0))
    for variant, data in mode.trains:
        if not len(data) or not _has_answers(data, objective):
            continue
        z = np.where(data.mask[..., None], (data.feats - mean) / std, 0.0)
        for l2 in l2_grid:
            w, b = _fit_weights(z, data, objective, l2)
            candidates.append((f"{variant}:l2={l2:g}" if len(mode.trains) > 1 else f"l2={l2:g}", w, b))
    if not candidates:
        return mean, std, np.zeros(F), 0.0, {**info, "choice": "none"}
    metrics = {}
    if val is not None and len(val) and _has_answers(val, objective):
        zv = (val.feats - mean) / std
        judge = mode.metric or (lambda scores: evaluate_scores(scores, val, objective))
        for name, w, b in candidates:
            metrics[name] = judge(zv @ w + b)
        # The best metric wins, then the best tie-breaker; the first of equals (the baseline comes first, so a
        # fit must be strictly better to replace it).
        order = [n for n, _, _ in candidates]
        best = max(order, key=lambda n: (*np.nan_to_num(metrics[n], nan=-1.0), -order.index(n)))
    else:
        best = candidates[0][0] if baseline is not None else candidates[min(len(candidates) - 1,
                                                                              len(l2_grid) // 2)][0]
    name, w, b = next(c for c in candidates if c[0] == best)
    info.update(choice=name, val_metric={k: [None if np.isnan(v) else round(v, 6) for v in m]
                                         for k, m in metrics.items()})
    return mean, std, w, b, info


def _has_answers(data: FloorData, objective: Objective) -> bool:
    if objective == "softmax":
        return bool((data.target >= 0).any())
    return bool(((data.labels > 0) & data.mask).any())


def fit_floor(feature_names: Sequence[str], modes: Sequence[Mode], l2_grid: Sequence[float] = L2_GRID
              ) -> LinearFloor:
    """A floor with one set of weights per mode."""
    means, stds, weights, biases, infos = [], [], [], [], []
    for mode in modes:
        mean, std, w, b, info = fit_mode(mode, l2_grid)
        means.append(mean), stds.append(std), weights.append(w), biases.append(b), infos.append(info)
        logger.info("floor: %s", info)
    # One standardisation for all modes (the first mode's); other modes' weights are rescaled to it.
    mean, std = means[0], stds[0]
    W = np.stack([w * std / s for w, s in zip(weights, stds)])
    B = np.array([b + float(np.sum(w * (mean - m) / s)) for w, b, m, s in zip(weights, biases, means, stds)])
    return LinearFloor(tuple(feature_names), mean, std, W, B, infos)

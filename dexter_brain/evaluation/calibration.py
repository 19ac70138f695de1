"""Calibration of each TRM's confidence on the validation split: a softmax temperature, and for memory the
confidence below which ``retrieve`` abstains. Written as ``calibration.json`` into each checkpoint.

The validation split is replayed through the public wrappers (conversation by conversation, with carry).
Memory and tool wrappers return the probability of every candidate, computed at the checkpoint's current
temperature T0, so ``T0 * log p`` gives the scores back up to a constant; for memory the probability of
"nothing relevant" is what the candidates leave (1 - their sum). Reasoning calls expose only the chosen
steps, so its scores come from the computation the public calls share (``replay_reasoning_scores``).

The temperature minimises the negative log-likelihood (NLL) of the correct answer over a log-spaced grid
that contains 1.0, so it never raises the validation NLL. Correct answers: memory, the stored positives
(or "nothing relevant" for a query without any); tool, the logged tool of a successful call; reasoning,
the candidate matching the reference next step (or "done"), plus every plan candidate's in/out label.
Confidence is the probability of the answer a call returns, and the expected calibration error (ECE, 10
equal-width bins) is reported before (T = 1) and after.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from dexter_brain.checkpoint import CheckpointError, resolve_checkpoint, write_checkpoint_file
from dexter_brain.evaluation.cost import torch_threads
from dexter_brain.evaluation.replay import recovered_logits, replay_memory, replay_reasoning_scores, replay_tool
from dexter_brain.features.common import STEP_MATCH_THRESHOLD, step_similarity
from dexter_brain.features.reasoning import DONE
from dexter_brain.io import read_json, read_rows
from dexter_brain.metrics import expected_calibration_error, steps_match
from dexter_brain.wrappers.common import CALIBRATION_FILE, Calibration

logger = logging.getLogger(__name__)

KINDS = ("memory", "tool", "reasoning")
TEMPERATURES = np.unique(np.append(np.exp(np.linspace(np.log(0.02), np.log(50.0), 281)), 1.0))


# --- the fit --------------------------------------------------------------------------------------------
def _pad(rows: list[np.ndarray]) -> np.ndarray:
    width = max((len(r) for r in rows), default=1) or 1
    out = np.full((len(rows), width), -np.inf)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def _logsumexp(x: np.ndarray, axis: int = -1) -> np.ndarray:
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.sum(np.exp(x - m), axis=axis)) + np.squeeze(m, axis=axis)


def categorical_nll(logits: list[np.ndarray], correct: list[np.ndarray], temperatures=TEMPERATURES) -> np.ndarray:
    """Mean NLL of the correct set (a boolean mask per row) at each temperature; rows without a correct
    candidate are left out. Returns (len(temperatures),)."""
    keep = [i for i, c in enumerate(correct) if np.any(c)]
    if not keep:
        return np.zeros(len(temperatures))
    L = _pad([logits[i] for i in keep])  # (N, K)
    C = np.zeros_like(L, dtype=bool)
    for row, i in enumerate(keep):
        C[row, : len(correct[i])] = correct[i]
    C &= np.isfinite(L)  # a masked candidate (score -inf) cannot be the answer
    L, C = L[C.any(axis=1)], C[C.any(axis=1)]
    if len(L) == 0:
        return np.zeros(len(temperatures))
    out = np.empty(len(temperatures))
    for t, T in enumerate(temperatures):
        Z = L / T
        out[t] = float(np.mean(_logsumexp(Z) - _logsumexp(np.where(C, Z, -np.inf))))
    return out


def binary_nll(scores: np.ndarray, labels: np.ndarray, temperatures=TEMPERATURES) -> np.ndarray:
    """Mean binary cross-entropy of sigmoid(score / T) against 0/1 labels at each temperature."""
    if len(scores) == 0:
        return np.zeros(len(temperatures))
    z = scores[None, :] / np.asarray(temperatures)[:, None]
    return np.mean(np.logaddexp(0.0, z) - labels[None, :] * z, axis=1)


def softmax_rows(logits: list[np.ndarray], temperature: float) -> list[np.ndarray]:
    out = []
    for row in logits:
        z = np.asarray(row, dtype=np.float64) / temperature
        e = np.exp(z - z.max()) if len(z) else z
        out.append(e / e.sum() if len(z) else z)
    return out


def best_temperature_index(nll: np.ndarray, temperatures=TEMPERATURES) -> int:
    """The grid index of the lowest NLL; among ties (e.g. a flat NLL: no row with a choice to make) the
    temperature closest to 1, so an uninformative split leaves the scores as they are."""
    ties = np.flatnonzero(nll <= nll.min() + 1e-9)
    return int(ties[np.argmin(np.abs(np.log(np.asarray(temperatures)[ties])))])


def best_abstain_threshold(confidence: np.ndarray, null_wins: np.ndarray, should_abstain: np.ndarray) -> float:
    """The confidence threshold maximising balanced accuracy of abstaining (0.0 without both kinds of row).

    A call abstains when "nothing relevant" beats all the memories together (``null_wins``) or its confidence is
    below the threshold; ties go to the lowest threshold.
    """
    if should_abstain.all() or not should_abstain.any():
        return 0.0
    best, best_score = 0.0, -1.0
    for thr in np.concatenate([[0.0], np.unique(confidence) + 1e-9]):
        abstain = null_wins | (confidence < thr)
        score = 0.5 * (abstain[should_abstain].mean() + (~abstain[~should_abstain]).mean())
        if score > best_score + 1e-12:
            best, best_score = float(thr), score
    return round(best, 6)


# --- per kind -------------------------------------------------------------------------------------------
def _fit(kind: str, wrapper, rows: list[dict], show_progress_bar: bool) -> dict:
    """Replay ``rows`` (the val split) and fit the temperature; returns the calibration.json content."""
    t_old = wrapper.core.calibration.temperature
    scored = [i for i, r in enumerate(rows) if r.get("scored", True)]
    abstain_below = wrapper.core.calibration.abstain_below
    if kind == "memory":
        outs = replay_memory(wrapper, rows, k=100, show_progress_bar=show_progress_bar)
        logits, correct, ids, positives = [], [], [], []
        for i in scored:
            o, pos = outs[i], set(rows[i]["positives"])
            logits.append(recovered_logits([*o["probs"], o["null"]], t_old))
            correct.append(np.array([f in pos for f in o["ids"]] + [not pos]))
            ids.append(o["ids"])
            positives.append(pos)
        nll = categorical_nll(logits, correct)

        def confidence(T):  # probability of the first memory, and whether it is relevant
            probs = softmax_rows(logits, T)
            conf = np.array([p[:-1].max() if len(p) > 1 else 0.0 for p in probs])
            hit = np.array([bool(f) and f[int(np.argmax(p[:-1]))] in pos for p, f, pos in zip(probs, ids, positives)])
            return conf, hit, np.array([p[-1] for p in probs])
    elif kind == "tool":
        outs = replay_tool(wrapper, rows, show_progress_bar=show_progress_bar)
        keep = [i for i in scored if rows[i]["status"] == "success"]
        logits = [recovered_logits(outs[i]["probs"], t_old) for i in keep]
        correct = [np.array([t == rows[i]["tool"] for t in outs[i]["ranking"]]) for i in keep]
        nll = categorical_nll(logits, correct)

        def confidence(T):
            probs = softmax_rows(logits, T)
            return (np.array([p.max() for p in probs]),
                    np.array([c[int(np.argmax(p))] for p, c in zip(probs, correct)]), None)
    else:
        outs = replay_reasoning_scores(wrapper, rows, show_progress_bar=show_progress_bar)
        nexts = [i for i in scored if rows[i]["kind"] == "next"]
        logits = [outs[i]["scores"] for i in nexts]
        correct = [_next_target(outs[i]["texts"], outs[i]["scores"], rows[i]["next_step"]) for i in nexts]
        plans = [i for i in scored if rows[i]["kind"] == "plan"]
        plan_scores = np.concatenate([outs[i]["scores"] for i in plans] or [np.zeros(0)])
        plan_labels = np.concatenate([_plan_labels(outs[i]["texts"], rows[i]["steps"]) for i in plans] or [np.zeros(0)])
        # One temperature serves both calls in the wrapper: fit the sum of the two mean NLLs.
        nll = categorical_nll(logits, correct) + binary_nll(plan_scores, plan_labels)

        def confidence(T):
            probs = softmax_rows(logits, T)
            hit = []
            for p, i in zip(probs, nexts):
                chosen = outs[i]["texts"][int(np.argmax(p))] if len(p) else None
                hit.append(steps_match(None if chosen == DONE else chosen, rows[i]["next_step"]))
            return np.array([p.max() if len(p) else 0.0 for p in probs]), np.array(hit, dtype=bool), None
    if not logits:
        raise ValueError("no scored validation rows with an answer")
    best = best_temperature_index(nll)
    temperature = float(TEMPERATURES[best])
    if best in (0, len(TEMPERATURES) - 1):
        logger.warning("%s: the fitted temperature %.3g is at the edge of the search grid", kind, temperature)
    one = int(np.flatnonzero(TEMPERATURES == 1.0)[0])
    conf, hit, null = confidence(temperature)
    conf_before, hit_before, _ = confidence(1.0)
    if kind == "memory":
        should_abstain = np.array([not p for p in positives])
        abstain_below = best_abstain_threshold(conf, null >= 1.0 - null, should_abstain)
    return {"temperature": round(temperature, 6), "abstain_below": abstain_below,
            "ece": round(expected_calibration_error(conf, hit), 6),
            "ece_uncalibrated": round(expected_calibration_error(conf_before, hit_before), 6),
            "nll": round(float(nll[best]), 6), "nll_uncalibrated": round(float(nll[one]), 6),
            "n": len(conf), "split": "val"}


def _next_target(texts: list[str], scores: np.ndarray, next_step: str | None) -> np.ndarray:
    """The candidate that is the reference next step (DONE when the plan is over), as a mask; a candidate
    ``next_step`` rules out (score -inf: already done) is never the target."""
    mask = np.zeros(len(texts), dtype=bool)
    if next_step is None:
        mask[:] = [t == DONE for t in texts]
        return mask
    sims = [step_similarity(t, next_step) if t != DONE and np.isfinite(s) else 0.0 for t, s in zip(texts, scores)]
    if sims and max(sims) >= STEP_MATCH_THRESHOLD:
        mask[int(np.argmax(sims))] = True
    return mask


def _plan_labels(texts: list[str], steps: list[str]) -> np.ndarray:
    return np.array([float(any(step_similarity(t, s) >= STEP_MATCH_THRESHOLD for s in steps)) for t in texts])


def load_wrapper(kind: str, checkpoint: str | Path, *, use_carry: bool = True, floor_only: bool = False,
                 bank: str | Path | None = None, backend: str = "torch"):
    """The public wrapper of ``kind`` on CPU (``floor_only``: scoring with the model's linear floor alone;
    ``bank``: the memory bank file to use instead of the brain's own; ``backend``: torch, onnx or onnx-int8)."""
    if kind == "memory":
        from dexter_brain.wrappers.memory import MemoryTRM as cls
    elif kind == "tool":
        from dexter_brain.wrappers.tool import ToolTRM as cls
    else:
        from dexter_brain.wrappers.reasoning import ReasoningTRM as cls
    extra = {"bank": bank} if kind == "memory" and bank is not None else {}
    wrapper = cls.from_checkpoint(checkpoint, use_carry=use_carry, device="cpu", backend=backend, **extra)
    if floor_only:
        wrapper.core.model.use_residual = False
    return wrapper


def needs_calibration(models_dir: str | Path, kind: str) -> bool:
    """Whether ``models_dir/<kind>`` holds a checkpoint without ``calibration.json``."""
    try:
        return not (resolve_checkpoint(Path(models_dir) / kind) / CALIBRATION_FILE).exists()
    except CheckpointError:
        return False


def calibrate_brain(models_dir: str | Path, data_dir: str | Path, *, kinds: tuple[str, ...] = KINDS,
                    show_progress_bar: bool | None = None, num_threads: int | None = 1,
                    max_rows: int | None = None) -> dict:
    """Fit each TRM's temperature (and memory's abstention threshold) on the validation split and write
    ``calibration.json`` into its checkpoint (``models_dir/<kind>/best/``), atomically.

    Args:
        models_dir: Directory holding ``memory/``, ``tool/``, ``reasoning/`` training outputs.
        data_dir: The corpus directory the models were trained on (its ``<kind>/val.jsonl`` is used).
        kinds: Which TRMs to calibrate.
        show_progress_bar: None means on when logging shows INFO.
        num_threads: Torch intra-op threads meanwhile (restored afterwards; None leaves the setting): the
            replay's calls are small and run 10x slower with spinning threads on a busy machine.
        max_rows: Fit on at most this many validation rows (in episode order); None uses all. For smoke runs.

    Returns:
        Per kind, the written content: ``temperature``, ``abstain_below``, ``ece`` and ``ece_uncalibrated``
        (on val, after and before), ``nll`` and ``nll_uncalibrated``, ``n`` (rows in the ECE), ``split``;
        or ``{"reason": ...}`` when the kind has no checkpoint or no validation rows.

    Example:
        >>> calibrate_brain("models", "datasets/offline")["tool"]["temperature"]  # doctest: +SKIP
        1.42
    """
    if show_progress_bar is None:
        show_progress_bar = logger.getEffectiveLevel() <= logging.INFO
    manifest_path = Path(data_dir) / "manifest.json"
    fingerprint = read_json(manifest_path).get("fingerprint") if manifest_path.exists() else None
    with torch_threads(num_threads):
        return {kind: _calibrate_one(Path(models_dir), Path(data_dir), kind, fingerprint, show_progress_bar,
                                     max_rows) for kind in kinds}


def _calibrate_one(models_dir: Path, data_dir: Path, kind: str, fingerprint: str | None, show_progress_bar: bool,
                   max_rows: int | None = None) -> dict:
    try:
        directory = resolve_checkpoint(models_dir / kind)
    except CheckpointError as exc:
        return {"reason": f"no {kind} checkpoint: {exc}"}
    rows = read_rows(data_dir, kind, "val")[:max_rows]
    if not any(r.get("scored", True) for r in rows):
        return {"reason": f"no scored {kind} validation rows in {data_dir}"}
    wrapper = load_wrapper(kind, directory)
    # Fit from the raw scores: start from the neutral calibration whatever the checkpoint holds.
    wrapper.core.calibration = Calibration()
    try:
        content = _fit(kind, wrapper, rows, show_progress_bar)
    except ValueError as exc:
        return {"reason": f"{kind}: {exc}"}
    content["corpus_fingerprint"] = fingerprint
    write_checkpoint_file(directory, CALIBRATION_FILE, content)
    logger.info("%s: temperature %.3g, val ECE %.3f -> %.3f", kind, content["temperature"],
                content["ece_uncalibrated"], content["ece"])
    return content

"""Backend parity: one corpus split replayed through the public wrappers on several backends (torch, the ONNX
export in fp32 or int8), answer by answer against the first backend, with each backend's quality measures.

Rows run as ``evaluate_brain`` runs them (``dexter_brain.evaluation.replay``): conversation by conversation
with carry, so every call after the first of a conversation also checks that the carry the backend left
behind gives the same answers. Quality measures: memory recall@5 (rows with relevant facts), tool top-1
(successful calls), reasoning step F1 (plans) and next-step accuracy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dexter_brain.checkpoint import CheckpointError, resolve_checkpoint
from dexter_brain.evaluation.calibration import load_wrapper
from dexter_brain.evaluation.measures import mean, same_step, top_k_accuracy
from dexter_brain.evaluation.replay import replay_memory, replay_reasoning, replay_tool
from dexter_brain.io import read_rows
from dexter_brain.metrics import recall_at_k, step_f1
from dexter_brain.wrappers.memory import MAX_K

KINDS = ("memory", "tool", "reasoning")


def _answers(kind: str, wrapper, rows: list[dict]) -> list[dict]:
    """Per row: ``top`` (the answer compared exactly), ``probs`` ({item: probability}), ``steps``."""
    if kind == "memory":
        return [{"top": o["ids"][:1], "probs": dict(zip(o["ids"], o["probs"])) | {None: o["null"]},
                 "steps": o["steps"], "ranking": o["ids"]} for o in replay_memory(wrapper, rows, k=MAX_K)]
    if kind == "tool":
        return [{"top": o["selected"], "probs": dict(zip(o["ranking"], o["probs"])), "steps": o["steps"],
                 "ranking": o["ranking"]} for o in replay_tool(wrapper, rows)]
    out = []
    for o in replay_reasoning(wrapper, rows):
        if "plan_steps" in o:
            out.append({"top": o["plan_steps"], "probs": dict(o["candidates"]), "steps": o["steps"],
                        "plan_steps": o["plan_steps"]})
        else:
            out.append({"top": o["next_step"], "probs": dict(o["ranking"]), "steps": o["steps"],
                        "next_step": o["next_step"]})
    return out


def _metrics(kind: str, answers: list[dict], rows: list[dict]) -> dict:
    scored = [i for i, r in enumerate(rows) if r.get("scored", True)]
    if kind == "memory":
        pos = [i for i in scored if rows[i]["positives"]]
        return {"recall@5": mean(recall_at_k(answers[i]["ranking"], rows[i]["positives"], 5) for i in pos),
                "n": len(pos)}
    if kind == "tool":
        ok = [i for i in scored if rows[i]["status"] == "success"]
        return {"top1": top_k_accuracy([answers[i]["ranking"] for i in ok], [rows[i]["tool"] for i in ok]),
                "n": len(ok)}
    plans = [i for i in scored if rows[i]["kind"] == "plan"]
    nexts = [i for i in scored if rows[i]["kind"] == "next"]
    return {"step_f1": mean(step_f1(answers[i]["plan_steps"], rows[i]["steps"]) for i in plans),
            "next_step_acc": mean(same_step(answers[i]["next_step"], rows[i]["next_step"]) for i in nexts),
            "n": len(plans) + len(nexts)}


def _max_diff(a: dict, b: dict) -> float:
    """Largest difference of the probability of one item (an item only one side has counts in full)."""
    return max((abs(a.get(k, 0.0) - b.get(k, 0.0)) for k in a.keys() | b.keys()), default=0.0)


def compare_backends(models_dir: str | Path, data_dir: str | Path, *, backends: tuple[str, ...] = ("torch", "onnx"),
                     split: str = "test", kinds: tuple[str, ...] = KINDS, max_rows: int | None = None) -> dict:
    """Replay ``split`` of ``data_dir`` through each kind of ``models_dir`` on each backend.

    Args:
        models_dir: Holds ``memory/``, ``tool/``, ``reasoning/`` (each exported for the ONNX backends).
        data_dir: The corpus directory (``<kind>/<split>.jsonl``).
        backends: The first is the reference the others are compared with.
        split: Which split to replay.
        kinds: Which TRMs.
        max_rows: Replay only the first rows (whole conversations are not cut: rows are in episode order).

    Returns:
        Per kind (those with a checkpoint and rows): ``rows`` and, per backend, ``metrics`` (see the module
        docstring, plus ``n``), ``max_abs_diff`` (largest difference of a probability the public call
        returns), ``same_top1`` (share of rows with the same top answer: first memory, selected tool, the
        plan's steps, the next step), ``same_steps`` (share with the same recursion steps), ``mean_steps``.

    Raises:
        ExportError: An ONNX backend without an up-to-date export.
    """
    out: dict[str, dict] = {}
    for kind in kinds:
        try:
            checkpoint = resolve_checkpoint(Path(models_dir) / kind)
        except CheckpointError:
            continue
        rows = read_rows(data_dir, kind, split)[:max_rows]
        if not rows:
            continue
        runs = {b: _answers(kind, load_wrapper(kind, checkpoint, backend=b), rows) for b in backends}
        reference = runs[backends[0]]
        out[kind] = {"rows": len(rows)}
        for backend, answers in runs.items():
            out[kind][backend] = {
                "metrics": _metrics(kind, answers, rows),
                "max_abs_diff": float(max((_max_diff(a["probs"], r["probs"]) for a, r in zip(answers, reference)),
                                          default=0.0)),
                "same_top1": float(np.mean([a["top"] == r["top"] for a, r in zip(answers, reference)])),
                "same_steps": float(np.mean([a["steps"] == r["steps"] for a, r in zip(answers, reference)])),
                "mean_steps": float(np.mean([a["steps"] for a in answers])),
            }
    return out

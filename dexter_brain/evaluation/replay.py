"""Replaying a corpus split through the public wrappers, conversation by conversation with carry.

Rows run in episode order and, inside an episode, in turn order, with ``conversation_id`` = the episode, so
each turn starts from the carry the previous turns left (exactly how an app would call the brain).
Unscored rows run too: they build the carry of the turns after them. Carries are reset before and after.
Memory and tool replays use the batch calls (``retrieve_many``, ``select_tool_many``), which process one
turn of many conversations per model call and give the same results as one call at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tqdm.auto import tqdm

from dexter_brain.features.reasoning import DONE

CHUNK = 256
# Wrappers round probabilities to 6 decimals; a 0.0 stands for anything below half a unit.
PROB_FLOOR = 5e-7


def _chunks(n: int, desc: str, show_progress_bar: bool):
    # Contiguous chunks keep each conversation's turns in order, so the carry is the same as one long call.
    starts = range(0, n, CHUNK)
    return tqdm(starts, desc=desc, total=len(starts), disable=not show_progress_bar, unit="chunk")


def replay_memory(memory, rows: Sequence[dict], *, k: int = 100, stateless: bool = False,
                  show_progress_bar: bool = False) -> list[dict]:
    """``retrieve`` every row; returns per row ``ids``, ``probs`` (of each returned fact), ``null`` (the
    probability left for "nothing relevant"), ``confidence``, ``abstain`` and ``steps``.

    With ``k`` at least the number of candidates (the wrapper scores at most 48) ``probs`` and ``null``
    hold the whole distribution. ``stateless`` gives every row its own conversation id.
    """
    memory.reset_carry()
    out: list[dict] = []
    for start in _chunks(len(rows), "memory", show_progress_bar):
        chunk = rows[start:start + CHUNK]
        ids = [r["id"] if stateless else r["episode"] for r in chunk]
        for r in memory.retrieve_many([x["query"] for x in chunk], k=k, conversation_ids=ids):
            probs = [m["score"] for m in r["memories"]]
            out.append({"ids": [m["id"] for m in r["memories"]], "probs": probs,
                        "null": max(1.0 - float(sum(probs)), 0.0), "confidence": r["confidence"],
                        "abstain": r["abstain"], "steps": r["steps"]})
    memory.reset_carry()
    return out


def replay_tool(tool, rows: Sequence[dict], *, show_progress_bar: bool = False) -> list[dict]:
    """``select_tool`` every row with its available tools, UI context and previous error; returns per row
    ``ranking`` (names best first), ``probs``, ``selected``, ``confidence`` and ``steps``."""
    tool.reset_carry()
    out: list[dict] = []
    for start in _chunks(len(rows), "tool", show_progress_bar):
        chunk = rows[start:start + CHUNK]
        results = tool.select_tool_many(
            [r["task"] for r in chunk], [list(r["available"]) for r in chunk],
            [r.get("context") or None for r in chunk], [r.get("previous_error") for r in chunk],
            conversation_ids=[r["episode"] for r in chunk],
            failed_tools=[r.get("previous_tool") if r.get("previous_error") else None for r in chunk])
        for r in results:
            out.append({"ranking": [t for t, _ in r["ranking"]], "probs": [p for _, p in r["ranking"]],
                        "selected": r["selected_tool"], "confidence": r["confidence"], "steps": r["steps"]})
    tool.reset_carry()
    return out


def replay_reasoning(reasoning, rows: Sequence[dict], *, show_progress_bar: bool = False) -> list[dict]:
    """``plan`` the ``plan`` rows and ``next_step`` the ``next`` rows; returns the wrapper's dicts."""
    reasoning.reset_carry()
    out = []
    for r in tqdm(rows, desc="reasoning", disable=not show_progress_bar, unit="call"):
        if r["kind"] == "plan":
            out.append(reasoning.plan(r["goal"], state=r.get("state"), constraints=list(r.get("constraints") or ()),
                                      conversation_id=r["episode"]))
        else:
            out.append(reasoning.next_step(r["goal"], list(r["completed"]), conversation_id=r["episode"]))
    reasoning.reset_carry()
    return out


def replay_reasoning_scores(reasoning, rows: Sequence[dict], *, show_progress_bar: bool = False) -> list[dict]:
    """Like ``replay_reasoning`` but returns each call's candidate ``texts`` and scores (up to a constant),
    recovered from the probabilities the public calls return: ``plan``'s ``candidates`` (sigmoid of
    score / temperature) and ``next_step``'s ``ranking`` (softmax; steps already done are left out)."""
    reasoning.reset_carry()
    temperature = reasoning.core.calibration.temperature
    out = []
    for r in tqdm(rows, desc="reasoning", disable=not show_progress_bar, unit="call"):
        if r["kind"] == "next":
            result = reasoning.next_step(r["goal"], list(r["completed"]), conversation_id=r["episode"])
            texts = [DONE if t is None else t for t, _ in result["ranking"]]
            scores = recovered_logits([p for _, p in result["ranking"]], temperature)
        else:
            result = reasoning.plan(r["goal"], state=r.get("state"), constraints=list(r.get("constraints") or ()),
                                    conversation_id=r["episode"])
            texts = [t for t, _ in result["candidates"]]
            p = np.clip(np.array([p for _, p in result["candidates"]], dtype=np.float64), PROB_FLOOR, 1 - PROB_FLOOR)
            scores = temperature * np.log(p / (1 - p))
        out.append({"texts": texts, "scores": scores, "steps": result["steps"]})
    reasoning.reset_carry()
    return out


def recovered_logits(probs: Sequence[float], temperature: float) -> np.ndarray:
    """Scores (up to a constant) from probabilities a wrapper computed at ``temperature``."""
    return temperature * np.log(np.maximum(np.asarray(probs, dtype=np.float64), PROB_FLOOR))

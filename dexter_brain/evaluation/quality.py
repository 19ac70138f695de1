"""Each TRM's headline metrics through its public wrapper, per row, so that any subset of a split (the original
validation rows, the new ones, a held-back set) can be averaged from one replay: memory recall@5, tool top-1,
reasoning next-step accuracy and plan step F1. ``dexter-brain learn`` gates promotion on them, and
``benchmarks/learning.py`` reports them.

Rows replay conversation by conversation with carry (``evaluation.replay``); a metric counts only the rows it
applies to: scored rows, and memory rows with a reference fact, successful tool calls, ``plan`` or ``next`` rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from dexter_brain.evaluation.measures import same_step
from dexter_brain.evaluation.replay import replay_memory, replay_reasoning, replay_tool
from dexter_brain.metrics import recall_at_k, step_f1

METRICS = {"memory": ("recall@5",), "tool": ("top1",), "reasoning": ("next_step_acc", "step_f1")}
"""The metrics of each kind, the first one its primary."""


def row_scores(kind: str, wrapper, rows: Sequence[dict], *, show_progress_bar: bool = False
               ) -> dict[str, list[float | None]]:
    """Per metric of ``kind``, each row's value (None where the metric does not count the row)."""
    scored = [r.get("scored", True) for r in rows]
    if kind == "memory":
        outs = replay_memory(wrapper, rows, k=5, show_progress_bar=show_progress_bar)
        return {"recall@5": [recall_at_k(o["ids"], r["positives"], 5) if s and r["positives"] else None
                             for o, r, s in zip(outs, rows, scored)]}
    if kind == "tool":
        outs = replay_tool(wrapper, rows, show_progress_bar=show_progress_bar)
        return {"top1": [float(o["ranking"][:1] == [r["tool"]]) if s and r["status"] == "success" else None
                         for o, r, s in zip(outs, rows, scored)]}
    outs = replay_reasoning(wrapper, rows, show_progress_bar=show_progress_bar)
    return {"next_step_acc": [float(same_step(o["next_step"], r["next_step"])) if s and r["kind"] == "next" else None
                              for o, r, s in zip(outs, rows, scored)],
            "step_f1": [step_f1(o["plan_steps"], r["steps"]) if s and r["kind"] == "plan" else None
                        for o, r, s in zip(outs, rows, scored)]}


def mean_of(values: Sequence[float | None], keep: Callable[[int], bool] = lambda i: True) -> tuple[float | None, int]:
    """(mean, count) of the values that count (not None) among the rows ``keep`` selects."""
    chosen = [v for i, v in enumerate(values) if v is not None and keep(i)]
    return (round(sum(chosen) / len(chosen), 4) if chosen else None), len(chosen)


def load_for_evaluation(kind: str, checkpoint: str | Path, bank_facts: list[dict] | None, scratch: Path):
    """The wrapper of ``kind`` on CPU; memory scores a bank of its own in ``scratch``, made from ``bank_facts``
    (so that two checkpoints compared are scored on the same facts, and the user's bank is never touched)."""
    from dexter_brain.bank import FACT_FIELDS, MemoryBank
    from dexter_brain.evaluation.calibration import load_wrapper

    if kind != "memory":
        return load_wrapper(kind, checkpoint)
    scratch.mkdir(parents=True, exist_ok=True)
    path = scratch / f"bank-{len(list(scratch.glob('bank-*.sqlite')))}.sqlite"
    if bank_facts is not None:
        MemoryBank.create(path, [{k: f.get(k) for k in FACT_FIELDS} for f in bank_facts]).close()
    return load_wrapper(kind, checkpoint, bank=path)

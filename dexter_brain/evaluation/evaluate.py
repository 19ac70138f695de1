"""``evaluate_brain``: replay the test split through the three public wrappers, score them and their
baselines on the same bank, tools and goals, and write ``report.json`` and ``report.md``.

Every metric counts only ``scored`` test rows; unscored rows still run in their conversation so the carry
of the turns after them is what an app would build. Memory metrics use rows with positives; tool accuracy
uses successful calls (a logged failure has no right answer); reasoning scores plans by order-aware step
F1 (``metrics.step_f1``, steps match at content-word F1 >= 0.5) and next steps by exact normalised text.

With ``raw_dir`` the test split is mined from that raw directory with the settings of the models' corpus
(``data_dir/manifest.json``): the models and the baselines stay as trained on ``data_dir``, the memory
wrappers' banks are refreshed from ``raw_dir`` (``MemoryTRM.refresh_from``), a test row whose text is
already in ``data_dir``'s train split is not scored, and "unseen" tools are those with no successful call
in ``data_dir``'s train split.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path


from dexter_brain.checkpoint import CheckpointError, resolve_checkpoint
from dexter_brain.evaluation import cost
from dexter_brain.evaluation.baselines import (
    BM25Memory, BM25Tools, KnnTools, LinearTools, NearestPlan, PriorTools, plans_of,
)
from dexter_brain.evaluation.calibration import KINDS, calibrate_brain, load_wrapper, needs_calibration
from dexter_brain.evaluation.measures import (
    RECALL_CURVE_K, mean, ranking_metrics, recall_curve, same_step, targets, top_k_accuracy,
)
from dexter_brain.evaluation.replay import replay_memory, replay_reasoning, replay_tool
from dexter_brain.io import read_rows
from dexter_brain.evaluation.report import write_report
from dexter_brain.features.common import STEP_MATCH_THRESHOLD
from dexter_brain.io import read_json, read_jsonl
from dexter_brain.metrics import expected_calibration_error, recall_at_k, reliability_bins, step_f1, steps_match
from dexter_brain.wrappers.memory import MAX_K

logger = logging.getLogger(__name__)

REPORT_VERSION = 1
MEMORY_KEYS = ("recall@1", "recall@5", "mrr", "followup_recall@5", "followup_recall@5_stateless", "bm25_recall@5",
               "bm25_followup_recall@5", "floor_recall@5", "candidate_recall")
TOOL_KEYS = ("top1", "top3", "correction_top1", "unseen_top1", "bm25_top1", "knn_top1", "linear_top1", "floor_top1",
             "bm25_unseen_top1")
REASONING_KEYS = ("step_f1", "next_step_acc", "nn_step_f1", "floor_step_f1")
SECTION_KEYS = {"memory": MEMORY_KEYS, "tool": TOOL_KEYS, "reasoning": REASONING_KEYS}
LATENCY_CALLS = {"memory": ("retrieve",), "tool": ("select_tool",), "reasoning": ("plan", "next_step")}
def _calibration(confidence, correct) -> dict:
    return {"ece": round(expected_calibration_error(confidence, correct), 4) if len(confidence) else None,
            "n": len(confidence), "bins": [[round(c, 4), round(a, 4), n] for c, a, n in
                                           reliability_bins(confidence, correct)] if len(confidence) else []}


def _steps(outs, rows) -> tuple[float | None, dict]:
    used = [o["steps"] for o, r in zip(outs, rows) if r.get("scored", True)]
    return mean(used), {str(k): v for k, v in sorted(Counter(used).items())}


# --- memory ---------------------------------------------------------------------------------------------
def evaluate_memory(stateful, stateless, floor, rows, *, raw_dir=None, show_progress_bar=False) -> dict:
    """Metrics of ``retrieve`` with and without carry, of the model's linear floor alone (``floor``: a
    wrapper scoring with the floor only, or None when the shipped model is its floor) and of BM25."""
    wrappers = [w for w in (stateful, stateless, floor) if w is not None]
    if raw_dir is not None:
        for wrapper in wrappers:
            wrapper.refresh_from(raw_dir)
    ours = replay_memory(stateful, rows, k=MAX_K, show_progress_bar=show_progress_bar)
    alone = replay_memory(stateless, rows, k=MAX_K, stateless=True, show_progress_bar=show_progress_bar)
    floored = replay_memory(floor, rows, k=MAX_K, show_progress_bar=show_progress_bar) if floor is not None else ours
    bm25 = BM25Memory(stateless.featurizer.facts)
    scored = [i for i, r in enumerate(rows) if r.get("scored", True)]
    pos = [i for i in scored if rows[i]["positives"]]
    follow = [i for i in pos if rows[i]["is_followup"]]
    # BM25 ranks only the rows a metric reads; the TRM ran every row (its carry needs them).
    is_pos = set(pos)
    systems = {"ours": [o["ids"] for o in ours], "ours (stateless)": [o["ids"] for o in alone],
               "linear floor": [o["ids"] for o in floored],
               "BM25": [bm25.rank(r["query"]) if i in is_pos else [] for i, r in enumerate(rows)]}

    def on(name, subset, prefix=""):
        return ranking_metrics([systems[name][i] for i in subset], [rows[i]["positives"] for i in subset], prefix)

    section = {**on("ours", pos), "followup_recall@1": on("ours", follow)["recall@1"],
               "followup_recall@5": on("ours", follow)["recall@5"],
               "followup_recall@5_stateless": on("ours (stateless)", follow)["recall@5"],
               **{f"{k}_stateless": v for k, v in on("ours (stateless)", pos).items()},
               **on("linear floor", pos, "floor_"), "floor_followup_recall@5": on("linear floor", follow)["recall@5"],
               **on("BM25", pos, "bm25_"), "bm25_followup_recall@5": on("BM25", follow)["recall@5"],
               "residual": bool(stateful.core.model.use_residual)}
    no_pos = [i for i in scored if not rows[i]["positives"]]
    section.update({
        # Every candidate comes back at k = MAX_K: the share of reference facts the candidates hold.
        "candidate_recall": mean(recall_at_k(ours[i]["ids"], rows[i]["positives"], MAX_K) for i in pos),
        "abstain_when_nothing_relevant": mean(ours[i]["abstain"] for i in no_pos),
        "abstain_when_relevant": mean(ours[i]["abstain"] for i in pos),
        "n": len(pos), "n_followup": len(follow), "n_nothing_relevant": len(no_pos), "facts": len(stateful)})
    confidence = [ours[i]["confidence"] for i in scored]
    correct = [bool(ours[i]["ids"]) and ours[i]["ids"][0] in set(rows[i]["positives"]) for i in scored]
    mean_steps, histogram = _steps(ours, rows)
    return {"section": section, "calibration": _calibration(confidence, correct), "steps": mean_steps,
            "steps_histogram": histogram,
            "curves": {name: recall_curve([ranks[i] for i in pos], [rows[i]["positives"] for i in pos])
                       for name, ranks in systems.items()}}


# --- tool -----------------------------------------------------------------------------------------------
def evaluate_tool(wrapper, floor, rows, train_rows, val_rows, *, reserved=(), catalogue=None,
                  show_progress_bar=False) -> dict:
    """Top-1/top-3 of ``select_tool`` overall, on corrections and on unseen tools, of the linear floor alone
    (``floor``, or None when the shipped model is its floor) and of the baselines.

    Unseen tools: the calls of the ``reserved`` tools, replayed with those tools shown to the model as never
    logged (no history: only their name and description speak for them), as a tool the logs never saw is.
    """
    outs = replay_tool(wrapper, rows, show_progress_bar=show_progress_bar)
    floored = replay_tool(floor, rows, show_progress_bar=show_progress_bar) if floor is not None else outs
    keep = [i for i, r in enumerate(rows) if r.get("scored", True) and r["status"] == "success"]
    sub = [rows[i] for i in keep]
    answers = [r["tool"] for r in sub]
    catalogue = {**{n: t.get("description") for n, t in wrapper.featurizer.catalogue.items()}, **(catalogue or {})}
    bm25 = BM25Tools(catalogue)
    systems = {"ours": [outs[i]["ranking"] for i in keep], "floor": [floored[i]["ranking"] for i in keep],
               "BM25": [bm25.rank(r["task"], r["available"]) for r in sub]}
    linear = None
    if train_rows:
        knn, prior = KnnTools(train_rows), PriorTools(train_rows)
        linear = LinearTools.fit(train_rows, val_rows)
        systems.update({"kNN": [knn.rank(r["task"], r["available"]) for r in sub],
                        "linear": linear.rank_many(sub), "prior": [prior.rank(r["available"]) for r in sub]})
    reserved = set(reserved)
    every = list(range(len(sub)))
    corrections = [j for j, r in enumerate(sub) if r["is_correction"]]
    unseen = [j for j, r in enumerate(sub) if r["tool"] in reserved]
    if unseen:
        wrapper.unseen = frozenset(reserved)
        try:
            hidden = replay_tool(wrapper, rows, show_progress_bar=False)
        finally:
            wrapper.unseen = frozenset()
        systems["ours (unseen)"] = [hidden[i]["ranking"] for i in keep]
    common = Counter(answers).most_common(1)[0][0] if answers else None

    def acc(name, subset, k=1):
        return top_k_accuracy([systems[name][j] for j in subset], [answers[j] for j in subset], k) \
            if name in systems and subset else None

    section = {"top1": acc("ours", every), "top3": acc("ours", every, 3), "correction_top1": acc("ours", corrections),
               "unseen_top1": acc("ours (unseen)", unseen),
               # Without the most frequent answer: a model that learnt only the majority tool shows here.
               f"top1_without_{common}": acc("ours", [j for j, a in enumerate(answers) if a != common]),
               "residual": bool(wrapper.core.model.use_residual)}
    for name, key in (("floor", "floor"), ("BM25", "bm25"), ("kNN", "knn"), ("linear", "linear"), ("prior", "prior")):
        section[f"{key}_top1"] = acc(name, every)
        section[f"{key}_top3"] = acc(name, every, 3)
        section[f"{key}_correction_top1"] = acc(name, corrections)
        section[f"{key}_unseen_top1"] = acc(name, unseen)
    section.update({"linear_C": linear.c if linear is not None else None, "most_common_tool": common,
                    "n": len(sub), "n_correction": len(corrections), "n_unseen": len(unseen),
                    "reserved_tools": sorted(reserved), "n_errors_not_scored": sum(
                        r["status"] == "error" for r in rows if r.get("scored", True))})
    mean_steps, histogram = _steps(outs, rows)
    return {"section": section, "steps": mean_steps, "steps_histogram": histogram,
            "calibration": _calibration([outs[i]["confidence"] for i in keep],
                                        [outs[i]["selected"] == rows[i]["tool"] for i in keep])}


# --- reasoning ------------------------------------------------------------------------------------------
def evaluate_reasoning(wrapper, floor, rows, train_rows, *, show_progress_bar=False) -> dict:
    """Step F1 of ``plan``, exact next-step accuracy of ``next_step``, the linear floor's alone (``floor``, or
    None when the shipped model is its floor) and the nearest-plan baselines'."""
    outs = replay_reasoning(wrapper, rows, show_progress_bar=show_progress_bar)
    floored = replay_reasoning(floor, rows, show_progress_bar=show_progress_bar) if floor is not None else outs
    scored = [i for i, r in enumerate(rows) if r.get("scored", True)]
    plans = [i for i in scored if rows[i]["kind"] == "plan"]
    nexts = [i for i in scored if rows[i]["kind"] == "next"]
    nn, adapted = NearestPlan(plans_of(train_rows)), NearestPlan(plans_of(train_rows), adapt=True)
    section = {
        "step_f1": mean(step_f1(outs[i]["plan_steps"], rows[i]["steps"]) for i in plans),
        "next_step_acc": mean(same_step(outs[i]["next_step"], rows[i]["next_step"]) for i in nexts),
        "floor_step_f1": mean(step_f1(floored[i]["plan_steps"], rows[i]["steps"]) for i in plans),
        "floor_next_step_acc": mean(same_step(floored[i]["next_step"], rows[i]["next_step"]) for i in nexts),
        "nn_step_f1": mean(step_f1(nn.plan(rows[i]["goal"]), rows[i]["steps"]) for i in plans),
        "next_step_match": mean(steps_match(outs[i]["next_step"], rows[i]["next_step"]) for i in nexts),
        "nn_next_step_acc": mean(same_step(nn.next_step(rows[i]["goal"], rows[i]["completed"]),
                                            rows[i]["next_step"]) for i in nexts),
        "nn_adapted_step_f1": mean(step_f1(adapted.plan(rows[i]["goal"]), rows[i]["steps"]) for i in plans),
        "nn_adapted_next_step_acc": mean(same_step(adapted.next_step(rows[i]["goal"], rows[i]["completed"]),
                                                    rows[i]["next_step"]) for i in nexts),
        "complexity_acc": mean(outs[i]["complexity"] == rows[i]["complexity"] for i in plans),
        "mean_plan_length": mean(len(outs[i]["plan_steps"]) for i in plans),
        "mean_reference_length": mean(len(rows[i]["steps"]) for i in plans),
        "residual": bool(wrapper.core.model.use_residual),
        "step_match_threshold": STEP_MATCH_THRESHOLD, "n_plans": len(plans), "n_next": len(nexts),
    }
    mean_steps, histogram = _steps(outs, rows)
    return {"section": section, "steps": mean_steps, "steps_histogram": histogram,
            "calibration": _calibration([outs[i]["confidence"] for i in nexts],
                                        [steps_match(outs[i]["next_step"], rows[i]["next_step"]) for i in nexts])}


# --- latency --------------------------------------------------------------------------------------------
def measure_latency(kind: str, wrapper, rows: list[dict], samples: int) -> dict[str, list[float]]:
    """Milliseconds per public call of ``kind`` over ``samples`` calls on test inputs (one conversation)."""
    cid = "latency"
    if kind == "memory":
        calls = {"retrieve": (lambda r: wrapper.retrieve(r["query"], k=5, conversation_id=cid), rows)}
    elif kind == "tool":
        calls = {"select_tool": (lambda r: wrapper.select_tool(
            r["task"], list(r["available"]), r.get("context") or None, r.get("previous_error"), conversation_id=cid),
            rows)}
    else:
        plans = [r for r in rows if r["kind"] == "plan"]
        nexts = [r for r in rows if r["kind"] == "next"]
        calls = {"plan": (lambda r: wrapper.plan(r["goal"], conversation_id=cid), plans),
                 "next_step": (lambda r: wrapper.next_step(r["goal"], list(r["completed"]), conversation_id=cid),
                               nexts)}
    out = {name: cost.time_calls(fn, inputs, samples) for name, (fn, inputs) in calls.items()}
    wrapper.reset_carry()
    return out


# --- the whole evaluation -------------------------------------------------------------------------------
def _null_section(kind: str, reason: str) -> dict:
    return {**{k: None for k in SECTION_KEYS[kind]}, "reason": reason}


def _unscore_seen(kind: str, rows: list[dict], train_rows: list[dict]) -> list[dict]:
    """Rows whose text is already in the models' train split, marked unscored (raw-directory evaluation)."""
    from dexter_brain.corpora.split import keys_of
    from dexter_brain.schema import EXAMPLES

    schema = EXAMPLES[kind]
    seen = {k for r in train_rows for k in keys_of(schema.model_validate(r)) if k}
    return [{**r, "scored": False} if any(k in seen for k in keys_of(schema.model_validate(r)) if k) else r
            for r in rows]


def evaluate_brain(models_dir: str | Path, data_dir: str | Path, *, raw_dir: str | Path | None = None,
                   build_seconds: dict | None = None, out_dir: str | Path | None = None,
                   show_progress_bar: bool | None = None, latency_samples: int = 50,
                   calibrate: bool | None = None, plots: bool = True, num_threads: int | None = 1,
                   command: str | None = None, max_rows: int | None = None) -> dict:
    """Evaluate the three TRMs on the test split against their baselines and write the report.

    Args:
        models_dir: Directory holding the ``memory/``, ``tool/`` and ``reasoning/`` training outputs.
        data_dir: The corpus the models were trained on (test split, baselines' training data, settings).
        raw_dir: Evaluate on the test split mined from this raw directory instead (see the module doc).
        build_seconds: Seconds of the earlier build stages (``generate``, ``train``, ...), copied into the
            report; ``evaluate`` and ``total`` are added.
        out_dir: Where ``report.json``, ``report.md`` and the plots go; defaults to ``models_dir``.
        show_progress_bar: None means on when logging shows INFO.
        latency_samples: Timed calls per public method.
        calibrate: Fit ``calibration.json`` on the validation split first: None for the checkpoints that
            lack one, True for all, False for none.
        plots: Draw the PNG plots (needs matplotlib; without it the report has tables only).
        num_threads: Torch intra-op threads while evaluating (restored afterwards; None leaves torch's
            setting). One by default: the calls are too small to gain from more, and latency is
            reported for this setting (``machine.torch_threads``).
        command: How the evaluation was started, for the report (defaults to this call).
        max_rows: Use at most this many rows of each split (in episode order: the test rows, and the train
            and validation rows the baselines learn from), and calibrate on as many; None uses all. For smoke
            runs (``build --quick``): the figures of a capped evaluation are not comparable to a full one, and
            ``report["data"]["max_rows"]`` says so.

    Returns:
        The report (also ``report.json``): ``memory``, ``tool``, ``reasoning`` metric sections (the keys
        in ``MEMORY_KEYS``, ``TOOL_KEYS``, ``REASONING_KEYS`` plus counts ``n*`` and extra honest keys;
        null with a ``reason`` when a kind has no model or no test rows), ``calibration`` (test ECE per
        kind), ``calibration_detail``, ``steps`` (mean recursion steps), ``steps_histogram``,
        ``parameters``, ``size_mb`` (per kind and ``total``), ``latency_ms`` (p50 per call),
        ``latency_ms_p95``, ``build_seconds``, ``targets`` (metric, value, bar, met), ``fingerprint``
        (manifest fingerprint of the evaluated corpus), ``data``, ``machine``, ``curves``,
        ``distributions``, ``plots``, ``created_at``, ``command``, ``version``.

    Example:
        >>> report = evaluate_brain("models", "datasets/offline", latency_samples=20)  # doctest: +SKIP
        >>> report["tool"]["top1"], report["targets"][0]["met"]  # doctest: +SKIP
    """
    start = time.perf_counter()
    models_dir, data_dir = Path(models_dir), Path(data_dir)
    report_dir = Path(out_dir) if out_dir is not None else models_dir
    report_dir.mkdir(parents=True, exist_ok=True)  # an unwritable place fails now, not after the evaluation
    if show_progress_bar is None:
        show_progress_bar = logger.getEffectiveLevel() <= logging.INFO
    to_calibrate = tuple(k for k in KINDS if (calibrate is None and needs_calibration(models_dir, k)) or calibrate)
    manifest_path = data_dir / "manifest.json"
    manifest = read_json(manifest_path) if manifest_path.exists() else {}
    with cost.torch_threads(num_threads), tempfile.TemporaryDirectory(prefix="dexter-eval-") as tmp:
        calibrated = calibrate_brain(models_dir, data_dir, kinds=to_calibrate, show_progress_bar=show_progress_bar,
                                     num_threads=None, max_rows=max_rows) if to_calibrate else {}
        calibrate_seconds = time.perf_counter() - start
        test_dir = data_dir
        if raw_dir is not None:
            from dexter_brain.corpora import CorpusSettings, generate_corpora

            test_dir = Path(tmp) / "corpus"
            generate_corpora(raw_dir, test_dir, CorpusSettings(**manifest.get("settings", {})),
                             show_progress_bar=False)
        test_manifest = read_json(test_dir / "manifest.json") if (test_dir / "manifest.json").exists() else {}
        report = _evaluate(models_dir, data_dir, test_dir, test_manifest, raw_dir, calibrated,
                           latency_samples, show_progress_bar, tmp, max_rows)
    report["data"].update({"data_dir": str(data_dir), "raw_dir": str(raw_dir) if raw_dir is not None else None,
                           "data_fingerprint": manifest.get("fingerprint"), "max_rows": max_rows})
    fingerprints = {k: v for k, v in report["data"]["models_corpus_fingerprint"].items() if v}
    report["data"]["models_trained_on_data_dir"] = (all(v == manifest.get("fingerprint") for v in fingerprints.values())
                                                    if fingerprints else None)
    report["build_seconds"] = _build_seconds(build_seconds, calibrate_seconds if to_calibrate else None,
                                             time.perf_counter() - start)
    report["targets"] = targets(report)
    report["command"] = command or f"evaluate_brain({str(models_dir)!r}, {str(data_dir)!r}" + (
        f", raw_dir={str(raw_dir)!r})" if raw_dir is not None else ")")
    report["plots"] = write_report(report, report_dir, plots=plots)
    return report


def _build_seconds(given: dict | None, calibrated_here: float | None, evaluate: float) -> dict:
    """Stage seconds: those given, ``calibrate`` (inside ``evaluate`` when fitted here) and ``total``."""
    seconds = {k: (round(float(v), 2) if isinstance(v, (int, float)) else v) for k, v in (given or {}).items()}
    for stage in ("generate", "train", "calibrate"):
        seconds.setdefault(stage, None)
    separate_calibration = seconds["calibrate"] if calibrated_here is None else 0.0
    if calibrated_here is not None:
        seconds["calibrate"] = round(calibrated_here, 2)
    seconds["evaluate"] = round(evaluate, 2)
    seconds["total"] = round(sum(seconds[k] or 0.0 for k in ("generate", "train", "evaluate"))
                             + (separate_calibration or 0.0), 2)
    return seconds


def _evaluate(models_dir, data_dir, test_dir, test_manifest, raw_dir, calibrated, latency_samples, show,
              scratch, max_rows=None) -> dict:
    report: dict = {"version": REPORT_VERSION, "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "machine": cost.machine(), "fingerprint": test_manifest.get("fingerprint"),
                    "calibration": {}, "calibration_detail": {}, "steps": {}, "steps_histogram": {},
                    "parameters": {}, "size_mb": {}, "latency_ms": {}, "latency_ms_p95": {},
                    "curves": {}, "distributions": {"latency_ms": {}},
                    "data": {"test_rows": {}, "models_corpus_fingerprint": {}}}
    reserved = test_manifest.get("corpora", {}).get("tool", {}).get("reserved_tools", [])
    for kind in KINDS:
        try:
            checkpoint = resolve_checkpoint(models_dir / kind)
        except CheckpointError as exc:
            _null_kind(report, kind, f"no {kind} model: {exc}")
            continue
        rows = read_rows(test_dir, kind, "test")[:max_rows]
        train_rows = read_rows(data_dir, kind, "train")[:max_rows]
        if raw_dir is not None and rows and train_rows:
            rows = _unscore_seen(kind, rows, train_rows)
        report["data"]["test_rows"][kind] = {"rows": len(rows), "scored": sum(r.get("scored", True) for r in rows)}
        if not any(r.get("scored", True) for r in rows):
            _null_kind(report, kind, f"no scored {kind} test rows in {test_dir}")
            continue
        # Memory wrappers get banks of their own (from the checkpoint's facts): an evaluation never changes the
        # brain's bank, not even when it refreshes the banks from another raw directory.
        banks = {name: Path(scratch) / f"{name}.sqlite" if kind == "memory" else None
                 for name in ("ours", "stateless", "floor")}
        wrapper = load_wrapper(kind, checkpoint, bank=banks["ours"])
        report["data"]["models_corpus_fingerprint"][kind] = wrapper.core.meta.get("corpus_fingerprint")
        logger.info("evaluating %s on %d test rows", kind, len(rows))
        floor = load_wrapper(kind, checkpoint, floor_only=True, bank=banks["floor"]) \
            if wrapper.core.model.use_residual else None
        if kind == "memory":
            result = evaluate_memory(wrapper, load_wrapper(kind, checkpoint, use_carry=False, bank=banks["stateless"]),
                                     floor, rows,
                                     raw_dir=raw_dir, show_progress_bar=show)
            report["curves"]["memory_recall_at_k"] = {"k": list(RECALL_CURVE_K), **result["curves"]}
        elif kind == "tool":
            catalogue_path = test_dir / "tool" / "catalogue.jsonl"
            catalogue = {t["name"]: t.get("description") for t in read_jsonl(catalogue_path)} \
                if catalogue_path.exists() else {}
            if raw_dir is not None:
                # The new corpus reserves its own tools; what the models never saw is what counts here.
                trained = {r["tool"] for r in train_rows if r["status"] == "success"}
                reserved = sorted({r["tool"] for r in rows} - trained)
            result = evaluate_tool(wrapper, floor, rows, train_rows, read_rows(data_dir, kind, "val")[:max_rows],
                                   reserved=reserved, catalogue=catalogue, show_progress_bar=show)
        else:
            result = evaluate_reasoning(wrapper, floor, rows, train_rows, show_progress_bar=show)
        report[kind] = result["section"]
        cal = wrapper.core.calibration
        report["calibration"][kind] = result["calibration"]["ece"]
        report["calibration_detail"][kind] = {
            **result["calibration"], "temperature": cal.temperature, "abstain_below": cal.abstain_below,
            "val_ece": cal.ece, "val_ece_uncalibrated": cal.ece_uncalibrated,
            "fitted_now": kind in calibrated and "reason" not in calibrated[kind]}
        report["steps"][kind], report["steps_histogram"][kind] = result["steps"], result["steps_histogram"]
        size = cost.checkpoint_size(wrapper)
        report["parameters"][kind], report["size_mb"][kind] = size["parameters"], round(size["bytes"] / 1e6, 3)
        for call, samples in measure_latency(kind, wrapper, rows, latency_samples).items():
            report["latency_ms"][call] = cost.percentile(samples, 50)
            report["latency_ms_p95"][call] = cost.percentile(samples, 95)
            report["distributions"]["latency_ms"][call] = [round(s, 3) for s in samples]
    sizes = [v for v in report["size_mb"].values() if v is not None]
    report["size_mb"]["total"] = round(sum(sizes), 3) if sizes else None
    return report


def _null_kind(report: dict, kind: str, reason: str) -> None:
    report[kind] = _null_section(kind, reason)
    report["calibration"][kind] = report["steps"][kind] = None
    report["parameters"][kind] = report["size_mb"][kind] = None
    for call in LATENCY_CALLS[kind]:
        report["latency_ms"][call] = report["latency_ms_p95"][call] = None

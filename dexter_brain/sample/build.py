"""``generate_sample``: write a complete raw directory for the fictional user, streaming, deterministically.

The directory gets all four raw sources of DESIGN.md ("Raw operational data"): ``d2_memory.json``,
``brain.db``, ``training_data_fast.jsonl`` and ``art_*.json``, plus a hidden ``.dexter_sample.json`` marker
that lets a later run recognise (and replace) its own output.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import IO

from tqdm import tqdm

from dexter_brain.sample import chats, plans, tools, world
from dexter_brain.sample import writer as W
from dexter_brain.sample.dialogue import Conversation

MARKER = ".dexter_sample.json"
"""Written last into every sample directory; its ``files`` list is what a re-run may replace or remove."""
PLAIN_SUMMARY_RATE = 0.03
"""Share of d2 question conversations that also get a short summary (no goal or steps)."""


def generate_sample(out_dir: str | os.PathLike, *, seed: int = 0, scale: float = 1.0,
                    show_progress_bar: bool | None = None) -> dict:
    """Write the sample raw directory for a fictional assistant user.

    Args:
        out_dir: Directory to write. Created if missing; must be empty or an earlier sample output.
        seed: Seed of every random choice. The same seed and scale give byte-identical files.
        scale: Size multiplier: 1.0 is about 60 entities, 3,000 facts, 6,000 tool calls and 350 plans.
        show_progress_bar: Show a tqdm bar on stderr; ``None`` shows one for scales above 5.

    Returns:
        Counts of what was written: ``entities``, ``facts``, ``facts_d2``, ``facts_db``, ``triples``, ``topics``,
        ``conversations``, ``conversations_d2``, ``conversations_history``, ``history_rows``, ``user_turns``,
        ``labelled_queries`` (user turns with memory_refs), ``follow_ups``, ``follow_ups_with_refs``,
        ``told_facts`` (facts with a source message), ``tools`` (catalogue size), ``tool_calls``,
        ``failed_calls``, ``artifacts``, ``artifact_files``, ``patterns``, ``summaries``.

    Raises:
        FileExistsError: ``out_dir`` holds files that the sample generator did not write.
        ValueError: ``scale`` is not a positive number.

    Example:
        >>> counts = generate_sample("datasets/raw/sample", seed=0, scale=0.2)  # doctest: +SKIP
        >>> counts["facts"]  # doctest: +SKIP
        604
    """
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    out = Path(out_dir)
    previous = _previous_files(out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".sample-", dir=out))
    try:
        show = scale > 5 if show_progress_bar is None else show_progress_bar
        counts, files = _write_all(tmp, seed, float(scale), show)
        marker = {"generator": "dexter_brain.sample", "seed": seed, "scale": scale, "files": sorted(files),
                  "counts": counts}
        (tmp / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        # Each file is swapped in with an atomic rename; files of the previous sample that this one does not
        # write (art_* batches of a larger scale) are removed afterwards, and the marker goes last.
        for name in sorted(files):
            os.replace(tmp / name, out / name)
        for name in sorted(set(previous) - set(files)):
            (out / name).unlink(missing_ok=True)
        os.replace(tmp / MARKER, out / MARKER)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return counts


def _previous_files(out: Path) -> list[str]:
    """Files of an earlier sample in ``out`` (empty if none); refuse anything else."""
    if not out.exists():
        return []
    if not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a directory; choose a new or empty directory")
    for leftover in out.glob(".sample-*"):  # temp directory of an interrupted run
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
    entries = sorted(p.name for p in out.iterdir())
    if not entries:
        return []
    marker = out / MARKER
    if not marker.is_file():
        raise FileExistsError(f"{out} is not empty and was not written by the sample generator; refusing to "
                              f"overwrite it. Choose a new or empty directory.")
    return [f for f in json.loads(marker.read_text(encoding="utf-8")).get("files", []) if "/" not in f]


def _write_all(tmp: Path, seed: int, scale: float, show: bool) -> tuple[dict, list[str]]:
    """Write every file into ``tmp``; return the counts and the names of the files to publish."""
    entities = world.build_entities(seed, scale)
    blocks = world.blocks(entities)
    n_tool_steps = math.ceil(tools.CALLS_PER_SCALE * scale / 1000)
    bar = tqdm(total=len(blocks) + n_tool_steps + 1, desc="sample", unit="step", disable=not show)
    # d2_memory.json is one object with five lists; each list is streamed into its own part file first.
    parts = {k: tmp / f".part-{k}.json" for k in ("conversations", "facts", "entities", "topics", "summaries")}
    d2 = {k: W.JsonArray(p) for k, p in parts.items()}
    brain = W.Brain(tmp / "brain.db")
    c = {k: 0 for k in ("user_turns", "labelled_queries", "follow_ups", "follow_ups_with_refs", "told_facts",
                        "conversations_history", "failed_calls")}

    _write_world(seed, scale, entities, blocks, d2, brain, c, tmp / ".topics", bar)
    for conv, summary in plans.planning_chats(seed, scale):
        d2["conversations"].add(conv)
        d2["summaries"].add(summary)
        c["user_turns"] += sum(m["role"] == "user" for m in conv["messages"])
    for row in plans.patterns(seed, scale):
        brain.add("patterns", (row["id"], row["goal"], W.dumps(row["steps"]), row["success_count"], row["created_at"]))
    bar.update(1)
    log, arts = _write_tools(seed, scale, tmp, c, bar, n_tool_steps)
    bar.close()

    sizes = {k: a.count for k, a in d2.items()}
    for a in d2.values():
        a.close()
    W.write_d2_memory(tmp / "d2_memory.json", parts)
    for p in parts.values():
        p.unlink()
    brain.add("meta", ("generator", "dexter_brain.sample"))
    brain.add("meta", ("schema_version", "4"))
    brain.close()
    counts = {
        "entities": sizes["entities"], "facts": sizes["facts"] + brain.counts["facts"], "facts_d2": sizes["facts"],
        "facts_db": brain.counts["facts"], "triples": brain.counts["triples"], "topics": sizes["topics"],
        "conversations": sizes["conversations"] + c["conversations_history"],
        "conversations_d2": sizes["conversations"], "conversations_history": c["conversations_history"],
        "history_rows": brain.counts["history"], "user_turns": c["user_turns"],
        "labelled_queries": c["labelled_queries"], "follow_ups": c["follow_ups"],
        "follow_ups_with_refs": c["follow_ups_with_refs"], "told_facts": c["told_facts"],
        "tools": len(tools.catalogue()), "tool_calls": log.count, "failed_calls": c["failed_calls"],
        "artifacts": arts.count, "artifact_files": len(arts.files), "patterns": brain.counts["patterns"],
        "summaries": sizes["summaries"],
    }
    return counts, ["d2_memory.json", "brain.db", "training_data_fast.jsonl", *arts.files]


def _write_world(seed: int, scale: float, entities: list, blocks: list, d2: dict, brain: W.Brain, c: dict,
                 topic_dir: Path, bar: tqdm) -> None:
    """Entities, facts, triples, conversations and history, one block at a time; topics at the end."""
    budgets = world.fact_budgets(seed, entities, scale)
    groups = chats.core_groups(entities)
    topic_dir.mkdir()
    topic_files: dict[str, IO[str]] = {}  # fact ids per topic, appended block by block
    next_id = 0
    for block_no, block in enumerate(blocks):
        facts = world.block_facts(seed, block, budgets, next_id)
        next_id += len(facts)
        r = random.Random(f"{seed}:records:{block_no}")
        # Conversations first: telling a fact sets its source_message and its created_at.
        for conv in chats.block_conversations(seed, block_no, facts, groups):
            _write_conversation(r, conv, d2, brain, c)
        for e in block:
            d2["entities"].add(e.record())
        for f in facts:
            _write_fact(r, f, d2["facts"], brain)
            if f.topic not in topic_files:
                topic_files[f.topic] = open(topic_dir / f.topic, "w", encoding="utf-8")
            topic_files[f.topic].write(f.id + "\n")
        bar.update(1)
    for f in topic_files.values():
        f.close()
    for name in sorted(topic_files):
        d2["topics"].add({"name": name, "fact_ids": (topic_dir / name).read_text(encoding="utf-8").split()})
    shutil.rmtree(topic_dir)


def _write_tools(seed: int, scale: float, tmp: Path, c: dict, bar: tqdm, n_steps: int) -> tuple[W.Jsonl, W.Artifacts]:
    log = W.Jsonl(tmp / "training_data_fast.jsonl")
    arts = W.Artifacts(tmp, random.Random(f"{seed}:artifacts"))
    done = 0
    for lines, artifacts in tools.tool_sessions(seed, scale):
        for line in lines:
            log.add(line)
            c["failed_calls"] += line["status"] == "error"
        for a in artifacts:
            arts.add(a)
        step = min(log.count // 1000, n_steps)
        bar.update(step - done)
        done = step
    arts.flush()
    log.close()
    bar.update(n_steps - done)
    return log, arts


def _sql_time(t) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S")


def _iso(t) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_conversation(r: random.Random, conv: Conversation, d2: dict, brain: W.Brain, c: dict) -> None:
    for turn in conv.turns:
        if turn.role == "user":
            c["user_turns"] += 1
            c["labelled_queries"] += bool(turn.refs)
            c["follow_ups"] += turn.is_follow_up
            c["follow_ups_with_refs"] += bool(turn.is_follow_up and turn.refs)
    if conv.store == "db":
        c["conversations_history"] += 1
        for turn, t in zip(conv.turns, conv.times):
            refs = W.dumps([f.id for f in turn.refs]) if turn.role == "user" else None
            tool, status = turn.tool if turn.tool else (None, None)
            brain.add("history", (conv.id, _sql_time(t), turn.role, turn.content, refs, tool, status))
        return
    messages = []
    if conv.system:
        messages.append({"role": "system", "content": conv.system, "ts": _iso(conv.start)})
    for turn, t in zip(conv.turns, conv.times):
        m = {"role": turn.role, "content": turn.content, "ts": _iso(t)}
        if turn.role == "user":
            m["memory_refs"] = [f.id for f in turn.refs]
        if turn.told:
            turn.told.source = (conv.id, len(messages))
            c["told_facts"] += 1
        messages.append(m)
    record = {"id": conv.id}
    if conv.title:
        record["title"] = conv.title
    record.update({"started_at": _iso(conv.start), "messages": messages})
    d2["conversations"].add(record)
    refs = [f for t in conv.turns for f in (t.refs or [])]
    if refs and r.random() < PLAIN_SUMMARY_RATE:
        e = refs[0].entity
        d2["summaries"].add({"conversation_id": conv.id,
                             "text": f"Alex asked about {e.name} ({', '.join(sorted({f.kind.key for f in refs}))})."})


def _write_fact(r: random.Random, f: world.Fact, facts: W.JsonArray, brain: W.Brain) -> None:
    if f.store == "d2" or f.source:
        record = {"id": f.id, "text": f.text}
        if r.random() < 0.95:
            record["entity"] = f.entity.name
        record["topic"] = f.topic
        if r.random() < 0.97:
            record["created_at"] = _iso(f.created)
        if f.source:
            record["source_conversation"], record["source_message"] = f.source
        facts.add(record)
    else:
        confidence = None if r.random() < 0.1 else round(r.uniform(0.55, 1.0), 2)
        brain.add("facts", (f.id, f.text, f.entity.name, f.topic, _sql_time(f.created), confidence))
    if f.has_triple:
        brain.add("triples", (*world.triple(f), f.id, _sql_time(f.created)))

"""Tests for the embedded sample generator (dexter_brain.sample): determinism, consistency, scale, CLI.

Every check loads the written files with json/sqlite3 directly, as a third-party reader would.
Run: python -m pytest tests/test_sample.py -q   (a few seconds; the samples are generated at scale 0.1-0.2)
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections import defaultdict
from pathlib import Path

import pytest

from dexter_brain.sample import MARKER, catalogue, generate_sample
from dexter_brain.sample.__main__ import main
from dexter_brain.sample.catalogue import CATALOGUE
from dexter_brain.sample.kinds import BY_TYPE
from dexter_brain.sample.tools import Slots


def _digests(d: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir()) if p.is_file()}


def _load(d: Path) -> dict:
    memory = json.loads((d / "d2_memory.json").read_text(encoding="utf-8"))
    log = [json.loads(line) for line in (d / "training_data_fast.jsonl").read_text(encoding="utf-8").splitlines()]
    artifacts = []
    for p in sorted(d.glob("art_*.json")):
        data = json.loads(p.read_text(encoding="utf-8"))
        artifacts += data if isinstance(data, list) else [data]
    with sqlite3.connect(d / "brain.db") as db:
        tables = {name: [dict(zip([c[0] for c in cur.description], row)) for row in cur.fetchall()]
                  for name in ("facts", "triples", "patterns", "history")
                  for cur in [db.execute(f"SELECT * FROM {name} ORDER BY rowid")]}
    return {"memory": memory, "log": log, "artifacts": artifacts, **tables}


@pytest.fixture(scope="session")
def sample(tmp_path_factory) -> tuple[Path, dict, dict]:
    out = tmp_path_factory.mktemp("sample") / "raw"
    counts = generate_sample(out, seed=7, scale=0.2, show_progress_bar=False)
    return out, counts, _load(out)


def test_same_seed_gives_identical_files(sample, tmp_path):
    out, _, _ = sample
    again = tmp_path / "again"
    generate_sample(again, seed=7, scale=0.2, show_progress_bar=False)
    assert _digests(again) == _digests(out)
    assert {"d2_memory.json", "brain.db", "training_data_fast.jsonl", MARKER} <= set(_digests(out))


def test_other_seed_gives_other_content(sample, tmp_path):
    out, _, _ = sample
    other = tmp_path / "other"
    generate_sample(other, seed=8, scale=0.2, show_progress_bar=False)
    a, b = _digests(out), _digests(other)
    for name in ("d2_memory.json", "brain.db", "training_data_fast.jsonl"):
        assert a[name] != b[name], name


def test_memory_refs_and_provenance_resolve(sample):
    _, _, data = sample
    memory = data["memory"]
    d2_ids = [f["id"] for f in memory["facts"]]
    db_ids = [f["id"] for f in data["facts"]]
    ids = set(d2_ids) | set(db_ids)
    assert len(ids) == len(d2_ids) + len(db_ids), "fact ids must be unique across both stores"
    conversations = {c["id"]: c for c in memory["conversations"]}
    for c in memory["conversations"]:
        for m in c["messages"]:
            assert m["role"] in ("user", "assistant", "system", "tool")
            assert set(m.get("memory_refs", [])) <= ids, (c["id"], m)
    for row in data["history"]:
        if row["memory_refs"] is not None:
            assert set(json.loads(row["memory_refs"])) <= ids, row
    told = [f for f in memory["facts"] if "source_conversation" in f]
    assert told
    for f in told:
        message = conversations[f["source_conversation"]]["messages"][f["source_message"]]
        assert message["role"] == "user"
    for topic in memory["topics"]:
        assert topic["fact_ids"] and set(topic["fact_ids"]) <= ids
    for t in data["triples"]:
        assert t["fact_id"] in ids and t["subject"] and t["predicate"] and t["object"]
    entity_names = [e["name"] for e in memory["entities"]]
    assert len(set(entity_names)) == len(entity_names)
    assert {f["entity"] for f in memory["facts"] if "entity" in f} <= set(entity_names)
    for s in memory["summaries"]:
        assert s["conversation_id"] in conversations and s["text"]


def test_queries_are_labelled_and_follow_ups_carry_refs(sample):
    _, counts, data = sample
    user = [m for c in data["memory"]["conversations"] for m in c["messages"] if m["role"] == "user"]
    assert sum(bool(m["memory_refs"]) for m in user) > 0.5 * len(user)
    assert any(not m["memory_refs"] for m in user), "small talk and unknown questions have no refs"
    follow = re.compile(r"\b(other one|tell me more|anything else|which one|the (first|second|third|last)|"
                        r"what about|and (her|his|its|the))\b", re.I)
    assert sum(bool(follow.search(m["content"]) and m["memory_refs"]) for m in user) >= 20
    assert 0.25 < counts["follow_ups"] / counts["user_turns"] < 0.45
    assert counts["follow_ups_with_refs"] > 0
    history_user = [r for r in data["history"] if r["role"] == "user"]
    assert history_user and any(json.loads(r["memory_refs"]) for r in history_user)


def test_tool_log_is_consistent_and_failures_are_retried(sample):
    _, counts, data = sample
    log = data["log"]
    assert len(log) == counts["tool_calls"]
    names = {t["name"] for t in catalogue()}
    for line in log:
        offered = [t if isinstance(t, str) else t["name"] for t in line["available_tools"]]
        assert 5 <= len(offered) <= 20 and line["tool"] in offered and set(offered) <= names
        assert line["status"] in ("success", "error") and ("error" in line) == (line["status"] == "error")
        assert line["task"] and isinstance(line["args"], dict)
    assert {type(line["ts"]) for line in log} >= {str, float}
    assert 0.07 < counts["failed_calls"] / len(log) < 0.14
    by_conversation = defaultdict(list)
    for line in log:
        by_conversation[line["conversation_id"]].append(line)
    retried = 0
    for lines in by_conversation.values():
        for i, line in enumerate(lines):
            if line["status"] == "error":
                later = [x for x in lines[i + 1:] if x["task"] == line["task"]]
                assert later, "every failed call is retried in its conversation"
                retried += later[-1]["status"] == "success" and later[-1]["tool"] != line["tool"]
    assert retried > 0


def test_artifacts_and_plans(sample):
    out, counts, data = sample
    assert counts["artifact_files"] == len(list(out.glob("art_*.json"))) >= 2
    for a in data["artifacts"]:
        assert {"id", "ts", "conversation_id", "tool", "args", "status", "duration_ms"} <= set(a)
        assert (a["output"] is not None) == (a["status"] == "success")
    assert len(data["patterns"]) == counts["patterns"]
    for p in data["patterns"]:
        steps = json.loads(p["steps"])
        assert len(steps) >= 2 and all(isinstance(s, str) and s for s in steps) and p["goal"]
    plans = [s for s in data["memory"]["summaries"] if "steps" in s]
    assert plans and all(s["goal"] and len(s["steps"]) >= 2 for s in plans)


def test_counts_grow_with_scale(tmp_path):
    small = generate_sample(tmp_path / "a", seed=1, scale=0.1, show_progress_bar=False)
    large = generate_sample(tmp_path / "b", seed=1, scale=0.2, show_progress_bar=False)
    for key in ("facts", "labelled_queries", "tool_calls", "patterns", "summaries", "entities"):
        assert 1.6 <= large[key] / small[key] <= 2.5, (key, small[key], large[key])


def test_catalogue_has_enough_overlapping_tools():
    tools = catalogue()
    assert len(tools) >= 40
    assert all("." in t["name"] and t["description"] for t in tools)
    assert len({t["name"] for t in tools}) == len(tools)


def test_every_template_fills():
    import random

    for tool in CATALOGUE:
        for template in tool.tasks:
            slots = Slots(random.Random(0))
            assert template.format_map(slots)
            slots["_task"] = "x"
            assert isinstance(tool.args(slots), dict)
            for fallback in tool.fallbacks:
                assert fallback in {t.name for t in CATALOGUE}
    for etype, kinds in BY_TYPE.items():
        if etype != "self":  # a question must name its entity, or it is ambiguous in a larger world
            assert all(re.search(r"\{(e|eo|ep|em)\}", q) for k in kinds for q in k.asks + k.latest)
        nouns = [(n, k.subs) for k in kinds if not k.is_event for n in k.nouns]
        for kind in kinds:
            assert kind.facts and (not kind.is_event or kind.asks or kind.latest)
        # "and her number?" must point at one kind of fact (kinds limited to different subtypes may share a noun)
        for noun, subs in nouns:
            clash = [s for n, s in nouns if n == noun]
            assert len(clash) == 1 or all(a and b and not set(a) & set(b) for a in clash for b in clash if a is not b)


def test_refuses_to_overwrite_other_data(tmp_path):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not written by the sample generator"):
        generate_sample(target, scale=0.1, show_progress_bar=False)
    assert (target / "notes.txt").read_text() == "keep me" and len(list(target.iterdir())) == 1


def test_replaces_a_previous_sample(tmp_path):
    target = tmp_path / "s"
    generate_sample(target, seed=2, scale=0.2, show_progress_bar=False)
    counts = generate_sample(target, seed=2, scale=0.1, show_progress_bar=False)
    marker = json.loads((target / MARKER).read_text())
    assert sorted(p.name for p in target.iterdir()) == sorted(marker["files"] + [MARKER])
    assert marker["counts"] == counts


def test_cli(tmp_path, capsys):
    assert main([str(tmp_path / "cli"), "--seed", "3", "--scale", "0.1", "--quiet"]) == 0
    assert (tmp_path / "cli" / "d2_memory.json").is_file()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x.txt").write_text("x")
    assert main([str(tmp_path / "busy"), "--quiet"]) == 1
    assert "refusing to overwrite" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.rstrip().endswith("--seed 0 --scale 1")

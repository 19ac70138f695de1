"""Tests for dexter_brain.raw: each reader alone and together, aliases, timestamps, history grouping, every kind
of bad input (located in the report, the rest still read), reports, read-only loading, and the three real developer
directories (skipped when ../shared/devdata is absent). All files are real, built in tmp_path.

Run: python -m pytest tests/test_raw*.py -q
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlite_utils

from dexter_brain.raw import MAX_FIELD_CHARS, Provenance, RawStore, RawStoreError, ToolSpec

DEVDATA = Path(__file__).parents[2] / "shared" / "devdata"
UTC = timezone.utc

# The real brain.db schema (DESIGN.md, "Raw operational data").
SCHEMA = {
    "facts": "CREATE TABLE facts (id TEXT PRIMARY KEY, text TEXT, entity TEXT, topic TEXT, created_at TEXT, "
             "confidence REAL)",
    "triples": "CREATE TABLE triples (subject TEXT, predicate TEXT, object TEXT, fact_id TEXT, created_at TEXT)",
    "patterns": "CREATE TABLE patterns (id TEXT PRIMARY KEY, goal TEXT, steps TEXT, success_count INTEGER, "
                "created_at TEXT)",
    "history": "CREATE TABLE history (id INTEGER PRIMARY KEY, conversation_id TEXT, ts, role TEXT, content TEXT, "
               "memory_refs TEXT, tool TEXT, status TEXT)",
}

MEMORY = {
    "facts": [
        {"id": "f1", "text": "The shop site runs on Shopify", "entity": "shop site", "topic": "websites",
         "created_at": "2024-05-01T10:00:00Z", "source_conversation": "c1", "source_message": 0},
        {"id": "f2", "text": "Dana's birthday is on 3 March", "entity": "Dana"},
    ],
    "entities": [{"name": "shop site", "type": "project", "aliases": ["the shop"], "attributes": {"cms": "Shopify"}}],
    "topics": [{"name": "websites", "fact_ids": ["f1"]}],
    "conversations": [{"id": "c1", "title": "Sites", "started_at": "2024-05-01T09:59:00Z", "messages": [
        {"role": "user", "content": "My shop site runs on Shopify"},
        {"role": "assistant", "content": "Noted."},
        {"role": "user", "content": "What runs my shop?", "memory_refs": ["f1"]},
    ]}],
    "summaries": [{"conversation_id": "c1", "text": "User described the shop site.", "goal": "Build website",
                   "steps": ["pick platform", "launch"]}],
    "settings": {"theme": "dark"},  # unknown keys are ignored
}
DB_ROWS = {
    "facts": [{"id": "db-1", "text": "Backups run nightly at 02:00", "entity": "backup", "topic": "ops",
               "created_at": "2024-05-02", "confidence": 0.9}],
    "triples": [{"subject": "shop site", "predicate": "runs_on", "object": "Shopify", "fact_id": "db-1"}],
    "patterns": [{"id": "p1", "goal": "Build website", "steps": json.dumps(["analyze market", "pick platform",
                                                                             "launch"]), "success_count": 3}],
    "history": [
        {"conversation_id": "h1", "ts": "2024-05-03T10:00:01Z", "role": "user", "content": "When do backups run?",
         "memory_refs": json.dumps(["db-1"])},
        {"conversation_id": "h1", "ts": "2024-05-03T10:00:02Z", "role": "assistant", "content": "At 02:00."},
    ],
    "settings": [{"key": "theme", "value": "dark"}],  # unknown tables are ignored
}
LOG = [
    {"ts": "2024-05-04T08:00:00Z", "conversation_id": "c1", "task": "Check system status",
     "available_tools": ["system_ops.get_info", "file_system.list"], "tool": "system_ops.get_info", "args": {},
     "status": "success", "ui_context": {"screen": "home"}, "latency": 3},
    {"task": "List my files", "available_tools": [{"name": "file_system.list", "description": "List files"}],
     "tool": "file_system.list", "status": "error", "error": "permission denied"},
]
ARTIFACT = {"id": "a1", "tool": "file_system.list", "status": "ok", "output": {"files": ["a.txt"]},
            "duration_ms": 12}


def write_db(path: Path, tables: dict[str, list[dict]], *, schema: dict[str, str] = SCHEMA) -> None:
    db = sqlite_utils.Database(path)
    db.execute("PRAGMA synchronous = OFF")  # test files need no durability; fsync dominated the test time
    for name, rows in tables.items():
        if name in schema:
            db.execute(schema[name])
        db[name].insert_all(rows)
    db.close()


def write_jsonl(path: Path, lines: list) -> None:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")


def write_raw_dir(root: Path, *, memory: dict | None = MEMORY, db: dict | None = DB_ROWS, log: list | None = LOG,
                  artifacts: dict[str, object] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    if memory is not None:
        (root / "d2_memory.json").write_text(json.dumps(memory), encoding="utf-8")
    if db is not None:
        write_db(root / "brain.db", db)
    if log is not None:
        write_jsonl(root / "training_data_fast.jsonl", log)
    for name, content in ({"art_001.json": ARTIFACT} if artifacts is None else artifacts).items():
        (root / name).write_text(json.dumps(content), encoding="utf-8")
    return root


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- each reader alone --------------------------------------------------------------------------------------------

def test_memory_json_alone(tmp_path):
    store = RawStore.load(write_raw_dir(tmp_path, db=None, log=None, artifacts={}))
    assert [f.id for f in store.facts] == ["f1", "f2"]
    fact = store.fact_by_id("f1")
    assert (fact.text, fact.entity, fact.topic, fact.created_at) == (
        "The shop site runs on Shopify", "shop site", "websites", utc(2024, 5, 1, 10))
    assert (fact.source_conversation, fact.source_message) == ("c1", 0)
    assert fact.provenance == Provenance(file="d2_memory.json", path="facts[0]")
    assert store.entities[0].aliases == ("the shop",) and store.entities[0].attributes == {"cms": "Shopify"}
    assert store.topics[0].fact_ids == ("f1",)
    conversation = store.conversations[0]
    assert (conversation.id, conversation.title, len(conversation.messages)) == ("c1", "Sites", 3)
    assert conversation.messages[2].memory_refs == ("f1",)
    assert conversation.messages[2].provenance.path == "conversations[0].messages[2]"
    assert store.summaries[0].steps == ("pick platform", "launch")
    assert store.report.problems == []
    assert dict(store.report.sources["d2_memory.json"].read) == {
        "facts": 2, "entities": 1, "topics": 1, "conversations": 1, "messages": 3, "summaries": 1}


def test_brain_db_alone(tmp_path):
    store = RawStore.load(write_raw_dir(tmp_path, memory=None, log=None, artifacts={}))
    fact = store.facts[0]
    assert (fact.id, fact.created_at, fact.confidence) == ("db-1", utc(2024, 5, 2), 0.9)
    assert fact.provenance == Provenance(file="brain.db", table="facts", rowid=1)
    assert store.patterns[0].steps == ("analyze market", "pick platform", "launch")
    assert store.patterns[0].success_count == 3
    assert store.triples[0].fact_id == "db-1"
    assert store.report.problems == []
    history = store.conversations[0]
    assert history.id == "h1" and history.provenance == Provenance(file="brain.db", table="history")
    assert [m.provenance.rowid for m in history.messages] == [1, 2]
    assert history.messages[0].memory_refs == ("db-1",)
    assert history.started_at == utc(2024, 5, 3, 10, 0, 1)


def test_tool_log_alone(tmp_path):
    store = RawStore.load(write_raw_dir(tmp_path, memory=None, db=None, artifacts={}))
    first, second = store.tool_calls
    assert (first.task, first.tool, first.status, first.conversation_id) == (
        "Check system status", "system_ops.get_info", "success", "c1")
    assert first.available_tools == (ToolSpec(name="system_ops.get_info"), ToolSpec(name="file_system.list"))
    assert first.ui_context == {"screen": "home"} and first.provenance == Provenance(
        file="training_data_fast.jsonl", line=1)
    assert second.available_tools == (ToolSpec(name="file_system.list", description="List files"),)
    assert (second.status, second.error) == ("error", "permission denied")


def test_artifacts_alone_one_object_or_a_list_in_sorted_order(tmp_path):
    artifacts = {"art_b.json": [{"tool": "t2", "status": "failed", "task": "x"}, {"tool": "t3", "status": True}],
                 "art_a.json": ARTIFACT}
    store = RawStore.load(write_raw_dir(tmp_path, memory=None, db=None, log=None, artifacts=artifacts))
    assert [(c.tool, c.status) for c in store.tool_calls] == [
        ("file_system.list", "success"), ("t2", "error"), ("t3", "success")]
    assert store.tool_calls[0].task is None and store.tool_calls[0].output == {"files": ["a.txt"]}
    assert store.tool_calls[0].provenance == Provenance(file="art_a.json")
    assert store.tool_calls[2].provenance == Provenance(file="art_b.json", path="[1]")
    assert [name for name in store.report.sources] == [
        "d2_memory.json", "brain.db", "training_data_fast.jsonl", "art_a.json", "art_b.json"]
    assert store.report.sources["art_b.json"].read["tool_calls"] == 2


def test_all_sources_together(tmp_path):
    store = RawStore.load(write_raw_dir(tmp_path))
    assert [f.id for f in store.facts] == ["f1", "f2", "db-1"]  # d2_memory.json first, then brain.db
    assert [c.id for c in store.conversations] == ["c1", "h1"]
    assert [c.provenance.file for c in store.tool_calls] == [
        "training_data_fast.jsonl", "training_data_fast.jsonl", "art_001.json"]
    assert store.triples[0].fact_id == "db-1"
    assert store.fact_by_id("db-1").text == "Backups run nightly at 02:00" and store.fact_by_id("nope") is None
    assert store.report.problems == []
    assert dict(store.report.read) == {"facts": 3, "entities": 1, "topics": 1, "conversations": 2, "messages": 5,
                                       "summaries": 1, "triples": 1, "patterns": 1, "tool_calls": 3}


# --- aliases, coercions, timestamps -------------------------------------------------------------------------------

def test_aliases_a_reasonable_app_would_use(tmp_path):
    memory = {"facts": [{"fact_id": 7, "content": "seven"}, {"id": "f8", "fact": "eight"}],
              "conversations": [{"conversationId": 42, "messages": [
                  {"role": "Human", "text": "hi", "memoryRefs": [7]},
                  {"role": "ai", "content": "hello", "refs": "[\"f8\"]"}]}]}
    log = [{"tool_name": "a", "query": "q1", "conversationId": "c", "timestamp": 0, "tools": "[\"a\", \"b\"]",
            "args": "{\"x\": 1}", "status": "ok"},
           {"name": "b", "prompt": "q2", "session_id": "s", "time": "2024-01-01", "tools": [{"name": "b"}],
            "status": "succeeded"}]
    store = RawStore.load(write_raw_dir(tmp_path, memory=memory, db=None, log=log, artifacts={}))
    assert [(f.id, f.text) for f in store.facts] == [("7", "seven"), ("f8", "eight")]
    assert store.fact_by_id(7).text == "seven"
    conversation = store.conversations[0]
    assert conversation.id == "42"
    assert [(m.role, m.content, m.memory_refs) for m in conversation.messages] == [
        ("user", "hi", ("7",)), ("assistant", "hello", ("f8",))]
    first, second = store.tool_calls
    assert (first.tool, first.task, first.conversation_id, first.ts) == ("a", "q1", "c", utc(1970, 1, 1))
    assert [t.name for t in first.available_tools] == ["a", "b"] and first.args == {"x": 1}
    assert (second.tool, second.task, second.conversation_id, second.ts) == ("b", "q2", "s", utc(2024, 1, 1))
    assert store.report.problems == []


def test_empty_content_is_kept_and_empty_optional_values_are_absent(tmp_path):
    memory = {"conversations": [{"id": "c", "title": "", "messages": [
        {"role": "assistant", "content": "", "ts": "", "memory_refs": ""}, {"role": "user", "content": "hi"}]}]}
    log = [{"task": "t", "tool": "x", "status": "", "conversation_id": "", "args": "", "error": ""}]
    store = RawStore.load(write_raw_dir(tmp_path, memory=memory, db=None, log=log, artifacts={}))
    first = store.conversations[0].messages[0]
    assert (first.content, first.ts, first.memory_refs) == ("", None, ())
    call = store.tool_calls[0]
    assert (call.status, call.conversation_id, call.args) == ("success", None, {})
    assert store.report.problems == []


TIMESTAMPS = [
    ("2024-05-01T10:00:00Z", utc(2024, 5, 1, 10)),
    ("2024-05-01T12:00:00+02:00", utc(2024, 5, 1, 10)),
    ("2024-05-01T10:00:00", utc(2024, 5, 1, 10)),  # naive is taken as UTC
    ("2024-05-01 10:00:00.250", utc(2024, 5, 1, 10) + timedelta(milliseconds=250)),
    ("2024-05-01", utc(2024, 5, 1)),
    (1714557600, utc(2024, 5, 1, 10)),  # epoch seconds
    (1714557600.5, utc(2024, 5, 1, 10) + timedelta(milliseconds=500)),
    (1714557600000, utc(2024, 5, 1, 10)),  # epoch milliseconds
    ("1714557600", utc(2024, 5, 1, 10)),  # epoch as text, as SQLite often stores it
]


@pytest.mark.parametrize("value, expected", TIMESTAMPS)
def test_timestamps_in_json_and_sqlite(tmp_path, value, expected):
    log = [{"task": "t", "tool": "x", "status": "success", "ts": value}]
    db = {"history": [{"conversation_id": "h", "ts": value, "role": "user", "content": "hi"}]}
    store = RawStore.load(write_raw_dir(tmp_path, memory=None, db=db, log=log, artifacts={}))
    assert store.tool_calls[0].ts == expected
    assert store.conversations[0].messages[0].ts == expected
    assert store.tool_calls[0].ts.tzinfo is not None and store.report.problems == []


def test_unparseable_timestamp_keeps_the_record(tmp_path):
    log = [{"task": "t", "tool": "x", "status": "success", "ts": "yesterday"}]
    store = RawStore.load(write_raw_dir(tmp_path, memory=None, db=None, log=log, artifacts={}))
    assert store.tool_calls[0].ts is None
    (problem,) = store.report.problems
    assert (problem.reason, problem.location, problem.field) == ("invalid_field", "line 1", "ts")
    assert problem.message.startswith("training_data_fast.jsonl, line 1, field 'ts': expected an ISO 8601")


@pytest.mark.parametrize("role, expected", [
    ("user", "user"), ("Human", "user"), ("AI", "assistant"), ("bot", "assistant"), ("FUNCTION", "tool"),
    ("System", "system"), ("tool", "tool")])
def test_roles(tmp_path, role, expected):
    memory = {"conversations": [{"id": "c", "messages": [{"role": role, "content": "x"}]}]}
    db = {"history": [{"conversation_id": "h", "role": role, "content": "x"}]}
    store = RawStore.load(write_raw_dir(tmp_path, memory=memory, db=db, log=None, artifacts={}))
    assert [c.messages[0].role for c in store.conversations] == [expected, expected]


@pytest.mark.parametrize("fields, expected", [
    ({"status": "success"}, "success"), ({"status": "OK"}, "success"), ({"status": "succeeded"}, "success"),
    ({"status": True}, "success"), ({"status": "error"}, "error"), ({"status": "failed"}, "error"),
    ({"status": "Failure"}, "error"), ({"status": False}, "error"), ({"error": "boom"}, "error"),
    ({"error": ""}, "success"), ({}, "success")])
def test_statuses(tmp_path, fields, expected):
    log = [{"task": "t", "tool": "x", **fields}]
    store = RawStore.load(write_raw_dir(tmp_path, memory=None, db=None, log=log, artifacts={"art_1.json": {
        "tool": "x", **fields}}))
    assert [c.status for c in store.tool_calls] == [expected, expected]


def test_json_text_and_arrays_alike(tmp_path):
    as_text = {"facts": [{"id": "f1", "text": "x"}],
               "entities": [{"name": "e", "aliases": "[\"E\"]", "attributes": "{\"k\": 1}"}],
               "topics": [{"name": "t", "fact_ids": "[\"f1\"]"}],
               "summaries": [{"text": "s", "steps": "[\"a\", \"b\"]"}],
               "conversations": [{"id": "c", "messages": [
                   {"role": "user", "content": "q", "memory_refs": "[\"f1\"]"}]}]}
    as_arrays = {"facts": [{"id": "f1", "text": "x"}],
                 "entities": [{"name": "e", "aliases": ["E"], "attributes": {"k": 1}}],
                 "topics": [{"name": "t", "fact_ids": ["f1"]}],
                 "summaries": [{"text": "s", "steps": ["a", "b"]}],
                 "conversations": [{"id": "c", "messages": [{"role": "user", "content": "q", "memory_refs": ["f1"]}]}]}
    log_text = [{"task": "t", "tool": "x", "status": "ok", "available_tools": "[{\"name\": \"x\"}]",
                 "args": "{\"a\": 1}", "ui_context": "{\"s\": 2}"}]
    log_arrays = [{"task": "t", "tool": "x", "status": "ok", "available_tools": [{"name": "x"}], "args": {"a": 1},
                   "ui_context": {"s": 2}}]
    stores = [RawStore.load(write_raw_dir(tmp_path / name, memory=memory, db=None, log=log, artifacts={}))
              for name, memory, log in [("text", as_text, log_text), ("arrays", as_arrays, log_arrays)]]
    for kind in ("entities", "topics", "summaries", "tool_calls"):
        assert [r.model_dump(exclude={"provenance"}) for r in getattr(stores[0], kind)] == [
            r.model_dump(exclude={"provenance"}) for r in getattr(stores[1], kind)]
    assert stores[0].conversations[0].messages[0].memory_refs == ("f1",)
    assert stores[0].report.problems == stores[1].report.problems == []


def test_sqlite_json_text_columns_and_numeric_ids(tmp_path):
    schema = {"facts": "CREATE TABLE facts (id INTEGER PRIMARY KEY, text TEXT)"}
    db = {"facts": [{"id": 5, "text": "five"}],
          "patterns": [{"id": 9, "goal": "g", "steps": "[\"a\", \"b\"]"}],
          "history": [{"conversation_id": 3, "role": "tool", "content": "ran", "memory_refs": "[5]",
                       "tool": "x", "status": "failure"}]}
    write_db(tmp_path / "brain.db", db, schema={**SCHEMA, **schema})
    store = RawStore.load(tmp_path)
    assert store.facts[0].id == "5" and store.patterns[0].id == "9" and store.patterns[0].steps == ("a", "b")
    message = store.conversations[0].messages[0]
    assert (store.conversations[0].id, message.memory_refs, message.tool, message.status) == (
        "3", ("5",), "x", "error")
    assert store.report.problems == []


def test_history_grouped_by_conversation_and_ordered_by_ts_then_rowid(tmp_path):
    rows = [("h2", "2024-01-01T00:00:03Z", "a"), ("h1", "2024-01-01T00:00:02Z", "b"), ("h1", None, "c"),
            ("h1", "2024-01-01T00:00:01Z", "d"), ("h2", "2024-01-01T00:00:01Z", "e"),
            ("h1", "2024-01-01T00:00:01Z", "f")]
    write_db(tmp_path / "brain.db", {"history": [
        {"conversation_id": cid, "ts": ts, "role": "user", "content": text} for cid, ts, text in rows]})
    store = RawStore.load(tmp_path)
    assert [c.id for c in store.conversations] == ["h2", "h1"]  # order of first appearance
    assert [m.content for m in store.conversations[0].messages] == ["e", "a"]
    # Same ts: rowid order; no ts: last.
    assert [(m.content, m.provenance.rowid) for m in store.conversations[1].messages] == [
        ("d", 4), ("f", 6), ("b", 2), ("c", 3)]
    assert store.conversations[1].messages[0].provenance == Provenance(file="brain.db", table="history", rowid=4)
    assert store.conversations[1].started_at == utc(2024, 1, 1, 0, 0, 1)


def test_without_rowid_table(tmp_path):
    schema = {"facts": "CREATE TABLE facts (id TEXT PRIMARY KEY, text TEXT) WITHOUT ROWID"}
    write_db(tmp_path / "brain.db", {"facts": [{"id": "b", "text": "x"}, {"id": "a", "text": ""}]}, schema=schema)
    store = RawStore.load(tmp_path)
    assert [f.id for f in store.facts] == ["b"]
    assert store.report.problems[0].message == (
        "brain.db, table facts, row 1, field 'text': required field 'text' is empty (also looked for 'content', "
        "'fact'); record skipped")


# --- bad input: each located in the report, the rest still read --------------------------------------------------

GOOD_LINE = json.dumps(LOG[0]).encode()


def _log_line(line: bytes):
    """The log becomes a good line 1 and ``line`` as line 2."""
    return lambda root: (root / "training_data_fast.jsonl").write_bytes(GOOD_LINE + b"\n" + line + b"\n")


def _log_record(**changes):
    record = {key: value for key, value in {**LOG[0], **changes}.items() if value is not None}
    return _log_line(json.dumps(record).encode())


def _memory(edit):
    def write(root: Path) -> None:
        memory = json.loads(json.dumps(MEMORY))
        edit(memory)
        (root / "d2_memory.json").write_text(json.dumps(memory), encoding="utf-8")
    return write


def _file(name: str, data: bytes):
    return lambda root: (root / name).write_bytes(data)


def _db(*statements: str):
    def write(root: Path) -> None:
        with sqlite3.connect(root / "brain.db") as conn:
            for statement in statements:
                conn.execute(statement)
        conn.close()
    return write


def _replace_with_directory(name: str):
    def write(root: Path) -> None:
        (root / name).unlink()
        (root / name).mkdir()
    return write


def _replace_with_link(name: str, target: str):
    """``name`` becomes a symbolic link to ``target`` (relative to the raw directory)."""
    def write(root: Path) -> None:
        (root / name).unlink()
        (root / name).symlink_to(target)
    return write


def _truncate_db(root: Path) -> None:
    data = (root / "brain.db").read_bytes()
    (root / "brain.db").write_bytes(data[: len(data) // 2])


BAD_INPUT = [
    # (id, change to the baseline directory, reason, file, location, field)
    ("jsonl-malformed", _log_line(b'{"task": "x", "tool": '), "malformed_json", "training_data_fast.jsonl",
     "line 2", None),
    ("jsonl-line-is-a-list", _log_line(b'["task", "tool"]'), "wrong_shape", "training_data_fast.jsonl", "line 2",
     None),
    ("jsonl-not-utf8", _log_line(b'{"task": "caf\xe9", "tool": "x", "status": "ok"}'), "not_utf8",
     "training_data_fast.jsonl", "line 2", None),
    ("jsonl-missing-tool", _log_record(tool=None), "missing_field", "training_data_fast.jsonl", "line 2", "tool"),
    ("jsonl-missing-task", _log_record(task=None), "missing_field", "training_data_fast.jsonl", "line 2", "task"),
    ("jsonl-unknown-status", _log_record(status="pending"), "invalid_field", "training_data_fast.jsonl", "line 2",
     "status"),
    ("jsonl-bad-ts", _log_record(ts="next week"), "invalid_field", "training_data_fast.jsonl", "line 2", "ts"),
    ("jsonl-args-not-object", _log_record(args="[1, 2]"), "invalid_field", "training_data_fast.jsonl", "line 2",
     "args"),
    ("jsonl-bad-available-tools", _log_record(available_tools=5), "invalid_field", "training_data_fast.jsonl",
     "line 2", "available_tools"),
    ("memory-malformed", _file("d2_memory.json", b'{"facts":\n [}'), "malformed_json", "d2_memory.json",
     "line 2, column 3", None),
    ("memory-not-an-object", _file("d2_memory.json", b"[]"), "wrong_shape", "d2_memory.json", "top level", None),
    ("memory-facts-not-a-list", _memory(lambda m: m.update(facts={"f1": "x"})), "wrong_shape", "d2_memory.json",
     "facts", "facts"),
    ("memory-fact-not-an-object", _memory(lambda m: m["facts"].append("x")), "wrong_shape", "d2_memory.json",
     "facts[2]", "facts"),
    ("memory-message-is-a-string", _memory(lambda m: m["conversations"][0]["messages"].append("hi")),
     "wrong_shape", "d2_memory.json", "conversations[0].messages[3]", "messages"),
    ("memory-fact-missing-text", _memory(lambda m: m["facts"].append({"id": "f3"})), "missing_field",
     "d2_memory.json", "facts[2]", "text"),
    ("memory-fact-missing-id", _memory(lambda m: m["facts"].append({"text": "t"})), "missing_field",
     "d2_memory.json", "facts[2]", "id"),
    ("memory-conversation-missing-id", _memory(lambda m: m["conversations"].append({"messages": []})),
     "missing_field", "d2_memory.json", "conversations[1]", "id"),
    ("memory-unknown-role", _memory(lambda m: m["conversations"][0]["messages"].append(
        {"role": "narrator", "content": "x"})), "invalid_field", "d2_memory.json", "conversations[0].messages[3]",
     "role"),
    ("memory-bad-aliases", _memory(lambda m: m["entities"][0].update(aliases="not json")), "invalid_field",
     "d2_memory.json", "entities[0]", "aliases"),
    ("memory-not-utf8", _file("d2_memory.json", b'{\n"facts": [\n{"id": "f1", "text": "caf\xe9"}\n]\n}'),
     "not_utf8", "d2_memory.json", "byte 38 (line 3, column 26)", None),
    ("memory-is-a-directory", _replace_with_directory("d2_memory.json"), "unreadable", "d2_memory.json", "file",
     None),
    ("db-is-a-directory", _replace_with_directory("brain.db"), "unreadable", "brain.db", "file", None),
    ("db-not-sqlite", _file("brain.db", b"id,text\nf1,hello\n"), "not_sqlite", "brain.db", "file", None),
    ("db-empty-file", _file("brain.db", b""), "not_sqlite", "brain.db", "file", None),
    ("db-truncated", _truncate_db, "not_sqlite", "brain.db", "file", None),
    ("db-facts-missing-column", _db("DROP TABLE facts", "CREATE TABLE facts (id TEXT, body TEXT)",
                                    "INSERT INTO facts VALUES ('x', 'y')"),
     "missing_field", "brain.db", "table facts", "text"),
    ("db-history-missing-column", _db("ALTER TABLE history DROP COLUMN role"), "missing_field", "brain.db",
     "table history", "role"),
    ("db-fact-null-text", _db("INSERT INTO facts (id) VALUES ('db-2')"), "missing_field", "brain.db",
     "table facts, rowid 2", "text"),
    ("db-steps-not-json", _db("INSERT INTO patterns (id, goal, steps) VALUES ('p2', 'g', 'step one')"),
     "invalid_field", "brain.db", "table patterns, rowid 2", "steps"),
    ("db-bad-confidence", _db("UPDATE facts SET confidence = 'high'"), "invalid_field", "brain.db",
     "table facts, rowid 1", "confidence"),
    ("art-not-an-object", _file("art_002.json", b'"done"'), "wrong_shape", "art_002.json", "top level", None),
    ("art-list-item-not-an-object", _file("art_002.json", b'[{"tool": "x", "status": "ok"}, 5]'), "wrong_shape",
     "art_002.json", "[1]", None),
    ("art-missing-tool", _file("art_002.json", b'{"status": "ok"}'), "missing_field", "art_002.json", "top level",
     "tool"),
    ("memory-is-a-link-to-itself", _replace_with_link("d2_memory.json", "d2_memory.json"), "broken_link",
     "d2_memory.json", "file", None),
    ("db-is-a-dangling-link", _replace_with_link("brain.db", "elsewhere/brain.db"), "broken_link", "brain.db", "file",
     None),
    ("memory-fact-text-too-long", _memory(lambda m: m["facts"][0].update(text="x" * (MAX_FIELD_CHARS + 1))),
     "truncated", "d2_memory.json", "facts[0]", "text"),
    ("memory-summary-step-too-long", _memory(lambda m: m["summaries"][0].update(steps=["a", "b" * 10 ** 6])),
     "truncated", "d2_memory.json", "summaries[0]", "steps"),
    ("jsonl-task-too-long", _log_record(task="y" * 10 ** 7), "truncated", "training_data_fast.jsonl", "line 2", "task"),
    ("db-fact-text-too-long", _db("UPDATE facts SET text = hex(zeroblob(60000))"), "truncated", "brain.db",
     "table facts, rowid 1", "text"),
    ("duplicate-fact-id", _db("INSERT INTO facts (id, text) VALUES ('f1', 'again')"), "duplicate_id", "brain.db",
     "table facts, rowid 2", "id"),
    ("unresolved-memory-ref", _memory(lambda m: m["conversations"][0]["messages"][2].update(
        memory_refs=["f1", "ghost"])), "unresolved_ref", "d2_memory.json", "conversations[0].messages[2]",
     "memory_refs"),
    ("unresolved-history-ref", _db("UPDATE history SET memory_refs = '[\"ghost\"]' WHERE rowid = 2"),
     "unresolved_ref", "brain.db", "table history, rowid 2", "memory_refs"),
    ("unresolved-topic-ref", _memory(lambda m: m["topics"][0].update(fact_ids=["ghost"])), "unresolved_ref",
     "d2_memory.json", "topics[0]", "fact_ids"),
]


@pytest.fixture(scope="module")
def raw_baseline_report(tmp_path_factory):
    return RawStore.load(write_raw_dir(tmp_path_factory.mktemp("baseline"))).report


@pytest.mark.parametrize("change, reason, file, location, field", [case[1:] for case in BAD_INPUT],
                         ids=[case[0] for case in BAD_INPUT])
def test_bad_input_is_located_and_the_rest_is_read(tmp_path, raw_baseline_report, change, reason, file, location,
                                                   field):
    baseline = raw_baseline_report
    root = write_raw_dir(tmp_path / "raw")
    change(root)
    store = RawStore.load(root)
    problem, *knock_on = store.report.problems
    assert (problem.reason, problem.file, problem.location, problem.field) == (reason, file, location, field)
    # Dropping facts leaves references to them dangling; those are reported too, and nothing else.
    assert {p.reason for p in knock_on} <= {"unresolved_ref"}
    where = file if location == "file" else f"{file}, {location}"
    assert problem.message.startswith(where + (f", field '{field}': " if field else ": "))
    for name, source in store.report.sources.items():
        if name != file:
            assert source.read == baseline.source(name).read, name
    assert sum(store.report.read.values()) > 0


def test_a_text_longer_than_the_cap_is_cut_with_a_located_warning(tmp_path, caplog):
    root = write_raw_dir(tmp_path, db=None, log=None, artifacts={})
    _memory(lambda m: m["facts"][1].update(text="z" * 10 ** 7))(root)  # a 10 MB field
    with caplog.at_level(logging.WARNING, logger="dexter_brain.raw"):
        store = RawStore.load(root)
    assert [len(f.text) for f in store.facts] == [len(MEMORY["facts"][0]["text"]), MAX_FIELD_CHARS]
    (problem,) = store.report.problems
    assert problem.message == ("d2_memory.json, facts[1], field 'text': text of 10,000,000 characters cut to its "
                               "first 100,000 characters (the longest a field keeps); record kept")
    assert store.report.skipped == {} and problem.message in caplog.text


def test_links_in_a_loop_are_located_problems_not_missing_files(tmp_path):
    root = write_raw_dir(tmp_path / "raw", artifacts={})
    (root / "art_1.json").symlink_to("art_2.json")
    (root / "art_2.json").symlink_to("art_1.json")
    store = RawStore.load(root)
    loops = [p.message for p in store.report.problems]
    assert loops == [f"art_{i}.json: a symbolic link that loops (following it comes back to a link already "
                     f"followed); file skipped" for i in (1, 2)]
    assert store.report.sources["art_1.json"].is_present and store.report.skipped == {"broken_link": 2}
    assert len(store.facts) == 3  # the other sources are read


def test_a_directory_of_looping_links_names_them_instead_of_finding_none(tmp_path):
    (tmp_path / "d2_memory.json").symlink_to("d2_memory.json")
    with pytest.raises(RawStoreError) as error:
        RawStore.load(tmp_path)
    assert str(error.value) == (
        f"No usable raw data in {tmp_path}: looked for d2_memory.json, brain.db, training_data_fast.jsonl, "
        f"art_*.json; found d2_memory.json (d2_memory.json: a symbolic link that loops (following it comes back to "
        f"a link already followed); file skipped)")


def test_a_raw_directory_that_is_a_looping_link(tmp_path):
    (tmp_path / "raw").symlink_to("raw")
    with pytest.raises(RawStoreError) as error:
        RawStore.load(tmp_path / "raw")
    assert str(error.value) == (f"Raw directory {tmp_path / 'raw'} is a symbolic link that loops (following it comes "
                                f"back to a link already followed): looked for d2_memory.json, brain.db, "
                                f"training_data_fast.jsonl, art_*.json in it")


def test_undecodable_bytes_are_replaced_and_the_record_kept(tmp_path):
    root = write_raw_dir(tmp_path, db=None, artifacts={})
    _file("d2_memory.json", b'{"facts": [{"id": "f1", "text": "caf\xe9"}, {"id": "f2", "text": "ok"}]}')(root)
    _log_line(b'{"task": "caf\xe9", "tool": "x", "status": "ok"}')(root)
    store = RawStore.load(root)
    assert [f.text for f in store.facts] == ["caf\ufffd", "ok"]
    assert store.tool_calls[1].task == "caf\ufffd"
    assert [p.reason for p in store.report.problems] == ["not_utf8", "not_utf8"]


def test_duplicate_fact_ids_keep_the_first(tmp_path):
    memory = {"facts": [{"id": "f1", "text": "first"}, {"id": "f1", "text": "second"}]}
    root = write_raw_dir(tmp_path, memory=memory, db={"facts": [{"id": "f1", "text": "third"}]}, log=None,
                         artifacts={})
    store = RawStore.load(root)
    assert [f.text for f in store.facts] == ["first"] and store.fact_by_id("f1").text == "first"
    assert [(p.file, p.location) for p in store.report.problems] == [
        ("d2_memory.json", "facts[1]"), ("brain.db", "table facts, rowid 1")]
    assert store.report.problems[1].message == (
        "brain.db, table facts, rowid 1, field 'id': fact id 'f1' was already read at d2_memory.json:facts[0]; "
        "the first was kept")
    assert store.report.sources["d2_memory.json"].read["facts"] == 1
    assert store.report.sources["brain.db"].read["facts"] == 0
    assert store.report.skipped == {"duplicate_id": 2}


def test_unresolved_refs_are_dropped_and_the_message_kept(tmp_path):
    memory = {"facts": [{"id": "f1", "text": "x"}], "conversations": [{"id": "c", "messages": [
        {"role": "user", "content": "q", "memory_refs": ["f1", "ghost", "db-1"]}]}]}
    root = write_raw_dir(tmp_path, memory=memory, db={"facts": [{"id": "db-1", "text": "y"}]}, log=None,
                         artifacts={})
    store = RawStore.load(root)
    assert store.conversations[0].messages[0].memory_refs == ("f1", "db-1")  # refs may point into brain.db
    (problem,) = store.report.problems
    assert problem.message == ("d2_memory.json, conversations[0].messages[0], field 'memory_refs': unknown fact "
                               "id(s) 'ghost' dropped; message kept")


# --- report -------------------------------------------------------------------------------------------------------

def test_report_str_to_dict_and_one_warning_per_problematic_file(tmp_path, caplog):
    log = [{"task": "t", "tool": "x", "status": "ok"}] + [["not", "an", "object"]] * 7
    root = write_raw_dir(tmp_path, memory={"facts": "nope"}, db=None, log=log, artifacts={})
    with caplog.at_level(logging.WARNING, logger="dexter_brain.raw"):
        store = RawStore.load(root)
    text = str(store.report)
    assert "brain.db: not present" in text and "art_*.json: not present" in text
    assert "training_data_fast.jsonl: 1 tool_calls; skipped 7 wrong_shape; 7 problem(s)" in text
    assert "training_data_fast.jsonl, line 2: expected a JSON object, got a JSON array; line skipped" in text
    assert "... and 2 more" in text
    assert "d2_memory.json: nothing read; skipped 1 wrong_shape" in text
    data = json.loads(json.dumps(store.report.to_dict()))
    assert data["sources"]["brain.db"]["present"] is False
    assert data["sources"]["training_data_fast.jsonl"]["skipped"] == {"wrong_shape": 7}
    assert len(store.report.problems) == 8
    assert len(caplog.records) == 2 and all(r.levelno == logging.WARNING for r in caplog.records)


def test_progress_bar_on(tmp_path):
    store = RawStore.load(write_raw_dir(tmp_path), show_progress_bar=True)
    assert len(store.facts) == 3


# --- errors and the read-only guarantee ---------------------------------------------------------------------------

def test_missing_directory(tmp_path):
    with pytest.raises(RawStoreError, match="does not exist: looked for d2_memory.json, brain.db, "
                                            "training_data_fast.jsonl, art_\\*.json"):
        RawStore.load(tmp_path / "nope")


def test_not_a_directory(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(RawStoreError, match="is not a directory"):
        RawStore.load(tmp_path / "file")


def test_empty_directory(tmp_path):
    with pytest.raises(RawStoreError) as error:
        RawStore.load(tmp_path)
    assert str(error.value) == (f"No usable raw data in {tmp_path}: looked for d2_memory.json, brain.db, "
                                f"training_data_fast.jsonl, art_*.json; found none (the directory is empty)")
    assert isinstance(error.value, ValueError)


def test_directory_with_other_files_only(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(RawStoreError, match=r"found none \(the directory holds 1 other entries: notes.txt\)"):
        RawStore.load(tmp_path)


def test_directory_with_nothing_usable_names_the_problems(tmp_path):
    (tmp_path / "d2_memory.json").write_text("{\"facts\": [")
    (tmp_path / "brain.db").write_bytes(b"")
    with pytest.raises(RawStoreError) as error:
        RawStore.load(tmp_path)
    message = str(error.value)
    assert "found d2_memory.json (d2_memory.json, line 1, column 12: malformed JSON" in message
    assert "brain.db (brain.db: not a SQLite database (the file is empty)" in message
    assert error.value.report.sources["brain.db"].skipped == {"not_sqlite": 1}


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """sha256 and mtime of every file in ``root``."""
    return {p.name: (hashlib.sha256(p.read_bytes()).digest(), p.stat().st_mtime_ns) for p in root.iterdir()}


@pytest.mark.parametrize("journal_mode", ["delete", "wal"])
def test_loading_never_writes_to_the_raw_directory(tmp_path, journal_mode):
    root = write_raw_dir(tmp_path, artifacts={"art_1.json": ARTIFACT, "art_2.json": [ARTIFACT]})
    if journal_mode == "wal":
        db = sqlite_utils.Database(root / "brain.db")
        db.enable_wal()
        db.close()
    before = snapshot(root)
    store = RawStore.load(root)
    assert snapshot(root) == before
    assert len(store.facts) == 3 and store.report.problems == []


def test_live_wal_database_is_read_from_a_copy(tmp_path):
    root = write_raw_dir(tmp_path, memory=None, log=None, artifacts={})
    writer = sqlite3.connect(root / "brain.db", isolation_level=None)
    try:
        writer.execute("PRAGMA journal_mode=wal")
        writer.execute("PRAGMA wal_autocheckpoint=0")  # keep the new row in brain.db-wal only
        writer.execute("INSERT INTO facts (id, text) VALUES ('db-2', 'only in the WAL')")
        before = snapshot(root)
        assert "brain.db-wal" in before
        store = RawStore.load(root)
        assert snapshot(root) == before
    finally:
        writer.close()
    assert [f.id for f in store.facts] == ["db-1", "db-2"]


def test_locked_database_is_reported_not_waited_for(tmp_path, monkeypatch):
    from dexter_brain.raw import sqlite_source
    monkeypatch.setattr(sqlite_source, "SQLITE_TIMEOUT_S", 0.05)
    root = write_raw_dir(tmp_path)
    writer = sqlite3.connect(root / "brain.db", isolation_level=None)
    try:
        writer.execute("BEGIN EXCLUSIVE")
        store = RawStore.load(root)
    finally:
        writer.close()
    (problem,) = store.report.problems
    assert (problem.file, problem.reason, problem.location) == ("brain.db", "locked", "file")
    assert problem.message.startswith("brain.db: the database is locked by another connection (waited 0.05 s")
    assert "close the app that is writing to it" in problem.message
    assert len(store.facts) == 2 and len(store.tool_calls) == 3  # the other sources are still read


# --- the real developer directories ------------------------------------------------------------------------------

DEVDATA_COUNTS = {
    "bfcl_memory": {"facts": 323, "topics": 5, "conversations": 42, "messages": 633},
    "seal_tools": {"tool_calls": 494, "patterns": 1560},
    "api_bank": {"conversations": 261, "messages": 2230, "tool_calls": 508, "patterns": 50},
}


@pytest.mark.parametrize("name", DEVDATA_COUNTS)
def test_devdata_directories_load_cleanly(name):
    root = DEVDATA / name
    if not root.is_dir():
        pytest.skip(f"{root} is not available")
    before = snapshot(root)
    store = RawStore.load(root)
    assert dict(store.report.read) == DEVDATA_COUNTS[name]
    assert store.report.problems == []
    assert snapshot(root) == before


def test_devdata_bfcl_questions_reference_one_fact_each():
    root = DEVDATA / "bfcl_memory"
    if not root.is_dir():
        pytest.skip(f"{root} is not available")
    store = RawStore.load(root)
    questions = [m for c in store.conversations if c.id.startswith("questions-") for m in c.messages
                 if m.role == "user"]
    assert len(questions) == 155 and all(len(m.memory_refs) == 1 for m in questions)
    assert all(store.fact_by_id(m.memory_refs[0]) is not None for m in questions)


def test_devdata_api_bank_roles():
    root = DEVDATA / "api_bank"
    if not root.is_dir():
        pytest.skip(f"{root} is not available")
    store = RawStore.load(root)
    roles = [m.role for c in store.conversations for m in c.messages]
    assert {r: roles.count(r) for r in set(roles)} == {"user": 819, "assistant": 903, "tool": 508}


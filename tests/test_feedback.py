"""Tests for dexter_brain.feedback: each kind of feedback lands in its raw file and ``RawStore`` reads it back,
failed plans stay out of the mined patterns, a torn last line is skipped with a located problem, threads and a
killed writer lose no acknowledged record, and the app's raw directory is refused. All files are real, in tmp_path.

Run: python -m pytest tests/test_feedback.py -q
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from dexter_brain.corpora.reasoning import mine_reasoning
from dexter_brain.feedback import MARKER, FeedbackError, FeedbackLog
from dexter_brain.raw import RawStore

REPO = Path(__file__).resolve().parents[1]
UTC = timezone.utc
FACTS = {
    "f1": {"id": "f1", "text": "Dana's birthday is on 3 March", "entity": "Dana", "topic": None,
           "created_at": "2023-01-02T00:00:00+00:00", "source": "brain.db:facts#rowid=1", "neighbours": []},
    "f2": {"id": "f2", "text": "The shop site runs on Shopify", "entity": "shop site", "topic": "websites",
           "created_at": None, "source": "d2_memory.json:facts[0]", "neighbours": []},
}


def load(directory: Path) -> RawStore:
    return RawStore.load(directory, show_progress_bar=False)


def test_memory_feedback_is_a_history_turn_the_raw_reader_reads(tmp_path):
    directory = tmp_path / "feedback"
    with FeedbackLog(directory, facts=FACTS) as log:
        first = log.memory("c1", "when is Dana's birthday?", used=["f1"], rejected=["f2"],
                           ts=datetime(2026, 12, 1, 9, 30))
        log.memory("c1", "and what runs the shop site?", used=["f2"], ts="2026-12-01T09:31:00Z")
        log.memory("c2", "anything about my passport?", used=[], rejected=["f1"], ts=1_796_000_000)
        assert log.rejected_refs() == {first: ("f2",), 3: ("f1",)}
    assert sorted(p.name for p in directory.iterdir()) == [MARKER, "brain.db"]
    store = load(directory)
    assert store.report.problems == [] and store.report.read["messages"] == 3
    assert [(f.id, f.text, f.entity) for f in store.facts] == [("f1", "Dana's birthday is on 3 March", "Dana"),
                                                               ("f2", "The shop site runs on Shopify", "shop site")]
    c1, c2 = store.conversations
    assert (c1.id, c2.id) == ("c1", "c2")
    assert [(m.role, m.content, m.memory_refs) for m in c1.messages] == [
        ("user", "when is Dana's birthday?", ("f1",)), ("user", "and what runs the shop site?", ("f2",))]
    assert c1.messages[0].ts == datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    assert c1.messages[0].provenance.table == "history" and c1.messages[0].provenance.rowid == first
    assert c2.messages[0].memory_refs == () and c2.messages[0].ts == datetime.fromtimestamp(1_796_000_000, UTC)


def test_refs_to_facts_not_copied_are_dropped_by_the_reader_with_a_located_problem(tmp_path):
    with FeedbackLog(tmp_path / "feedback") as log:  # no fact lookup: only the ids are written
        log.memory("c1", "when is Dana's birthday?", used=["f1"])
    store = load(tmp_path / "feedback")
    assert store.conversations[0].messages[0].content == "when is Dana's birthday?"
    assert store.conversations[0].messages[0].memory_refs == ()
    [problem] = store.report.problems
    assert (problem.location, problem.reason, problem.field) == ("table history, rowid 1", "unresolved_ref",
                                                                  "memory_refs")


def test_tool_feedback_is_one_raw_log_line(tmp_path):
    directory = tmp_path / "feedback"
    with FeedbackLog(directory) as log:
        written = log.tool("Check system status", "file_system.list", "error", error="TimeoutError: 30 s",
                           conversation_id="c1", available_tools=["system_ops.get_info", "file_system.list"],
                           ts="2026-12-01T10:00:00+00:00")
        log.tool("Check system status", "system_ops.get_info", "success", conversation_id="c1",
                 available_tools=[{"name": "system_ops.get_info", "description": "CPU, memory, disk"}],
                 ts="2026-12-01T10:00:05+00:00")
    lines = (directory / "training_data_fast.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0]) == written == {
        "ts": "2026-12-01T10:00:00+00:00", "conversation_id": "c1", "task": "Check system status",
        "available_tools": ["system_ops.get_info", "file_system.list"], "tool": "file_system.list",
        "status": "error", "error": "TimeoutError: 30 s"}
    store = load(directory)
    assert store.report.problems == []
    failed, retried = store.tool_calls
    assert (failed.tool, failed.status, failed.error, failed.conversation_id) == (
        "file_system.list", "error", "TimeoutError: 30 s", "c1")
    assert [t.name for t in failed.available_tools] == ["system_ops.get_info", "file_system.list"]
    assert (retried.status, retried.available_tools[0].description, retried.provenance.line) == (
        "success", "CPU, memory, disk", 2)


def test_a_failed_plan_is_recorded_but_never_mined(tmp_path):
    directory = tmp_path / "feedback"
    with FeedbackLog(directory) as log:
        worked = log.plan("Book a weekend getaway", ["pick a destination", "search hotels", "book hotel"], True)
        again = log.plan("book a weekend getaway!", ["Pick a destination", "search hotels", "book hotel"], True)
        failed = log.plan("Fix the slow laptop", ["restart it", "buy a new one"], False)
        outcomes = log.plan_outcomes()
    assert worked == again != failed
    assert [(o["pattern_id"], o["success"]) for o in outcomes] == [(worked, True), (worked, True), (failed, False)]
    store = load(directory)
    [pattern] = store.patterns
    assert (pattern.id, pattern.goal, pattern.steps, pattern.success_count) == (
        worked, "Book a weekend getaway", ("pick a destination", "search hotels", "book hotel"), 2)
    assert {e.goal for e in mine_reasoning(store)} == {"Book a weekend getaway"}


def test_a_torn_last_line_is_skipped_and_the_next_record_kept(tmp_path):
    directory = tmp_path / "feedback"
    log = FeedbackLog(directory)
    log.tool("play some music", "media.play", "success")
    with open(directory / "training_data_fast.jsonl", "ab") as file:
        file.write(b'{"ts": "2026-12-01T1')  # what a crash in the middle of a write leaves
    log.tool("set a timer for 10 minutes", "clock.timer", "success")
    log.close()
    store = load(directory)
    assert [c.task for c in store.tool_calls] == ["play some music", "set a timer for 10 minutes"]
    [problem] = store.report.problems
    assert (problem.file, problem.location, problem.reason) == ("training_data_fast.jsonl", "line 2",
                                                                 "malformed_json")
    assert problem.message == ("training_data_fast.jsonl, line 2: malformed JSON (Unterminated string starting "
                               "at at column 8); line skipped")


def test_threads_appending_at_once_lose_nothing(tmp_path):
    log = FeedbackLog(tmp_path / "feedback", facts=FACTS)
    errors: list[BaseException] = []

    def append(worker: int) -> None:
        try:
            for i in range(15):
                log.memory(f"c{worker}", f"question {i} about Dana", used=["f1"])
                log.tool(f"task {worker}-{i}", "media.play", "success", conversation_id=f"c{worker}")
                log.plan(f"goal {worker}", [f"step {i}"], success=i % 2 == 0)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=append, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.close()
    assert errors == []
    store = load(tmp_path / "feedback")
    assert store.report.problems == []
    assert store.report.read["messages"] == 60 and len(store.conversations) == 4
    assert sorted(c.task for c in store.tool_calls) == sorted(f"task {w}-{i}" for w in range(4) for i in range(15))
    assert len(store.patterns) == 4 * 8  # the even steps worked


KILLED_WRITER = """
import sys
from dexter_brain.feedback import FeedbackLog

log = FeedbackLog(sys.argv[1])
i = 0
while True:
    log.tool(f"task {i}", "media.play", "success", conversation_id="c1")
    log.memory("c1", f"question {i}", used=[])
    print(i, flush=True)
    i += 1
"""


def test_a_killed_writer_loses_no_acknowledged_record(tmp_path):
    directory = tmp_path / "feedback"
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    child = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(directory)], stdout=subprocess.PIPE,
                             env=env, cwd=REPO)
    acknowledged = 0
    deadline = time.monotonic() + 60
    try:
        while acknowledged < 30 and time.monotonic() < deadline and child.stdout.readline():
            acknowledged += 1
        child.send_signal(signal.SIGKILL)
        acknowledged += child.stdout.read().count(b"\n")
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL and acknowledged >= 30
    store = load(directory)
    tasks = [c.task for c in store.tool_calls]
    questions = [m.content for m in store.conversations[0].messages]
    assert tasks[:acknowledged] == [f"task {i}" for i in range(acknowledged)] and len(tasks) <= acknowledged + 1
    assert questions[:acknowledged] == [f"question {i}" for i in range(acknowledged)]
    assert store.report.problems == []


@pytest.mark.parametrize("setup, message", [
    ("raw files", "holds raw files no feedback log wrote (brain.db, d2_memory.json): feedback is never written "
                  "into the app's raw directory; choose another (e.g. models/feedback)"),
    ("artifact", "holds raw files no feedback log wrote (art_1.json)"),
    ("same as raw_dir", "is the raw directory"),
    ("a file", "is a file"),
    ("other version", "format version 7, this dexter-brain writes version 1"),
])
def test_the_apps_raw_directory_is_refused(tmp_path, setup, message):
    directory = tmp_path / "dir"
    directory.mkdir()
    raw_dir = None
    if setup == "raw files":
        (directory / "d2_memory.json").write_text('{"facts": []}')
        (directory / "brain.db").write_bytes(b"")
    elif setup == "artifact":
        (directory / "art_1.json").write_text("{}")
    elif setup == "same as raw_dir":
        raw_dir = tmp_path / "." / "dir"  # empty so far, but named as the app's raw directory
    elif setup == "a file":
        directory.rmdir()
        directory.write_text("not a directory")
    else:
        (directory / MARKER).write_text('{"version": 7}')
    before = sorted(p.name for p in directory.iterdir()) if directory.is_dir() else None
    with pytest.raises(FeedbackError) as error:
        FeedbackLog(directory, raw_dir=raw_dir)
    assert str(error.value).startswith(f"feedback directory {directory} ") and message in str(error.value)
    assert (sorted(p.name for p in directory.iterdir()) if directory.is_dir() else None) == before  # untouched


def test_a_feedback_directory_is_reopened_and_appended_to(tmp_path):
    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    with FeedbackLog(tmp_path / "feedback", raw_dir=raw_dir) as log:
        log.memory("c1", "first question", used=[])
        log.tool("first task", "media.play", "success")
    with FeedbackLog(tmp_path / "feedback", raw_dir=raw_dir) as log:  # its own files are not "raw files"
        assert log.memory("c1", "second question", used=[]) == 2
        log.tool("second task", "media.play", "success")
    store = load(tmp_path / "feedback")
    assert [m.content for m in store.conversations[0].messages] == ["first question", "second question"]
    assert [c.task for c in store.tool_calls] == ["first task", "second task"]


@pytest.mark.parametrize("call, error, message", [
    (lambda log: log.memory("c1", "q", used="f1"), TypeError, "used must be a list of fact ids, not a string"),
    (lambda log: log.memory("c1", "  ", used=[]), ValueError, "query must be a non-empty string, got '  '"),
    (lambda log: log.memory("c1", "q", used=["f1"], rejected=["f1"]), ValueError,
     "fact id(s) 'f1' are both used and rejected"),
    (lambda log: log.memory("c1", "q", used=[], ts="yesterday"), ValueError,
     "ts: expected an ISO 8601 timestamp or epoch number, got 'yesterday'"),
    (lambda log: log.tool("t", "media.play", "ok"), ValueError, "status must be 'success' or 'error', got 'ok'"),
    (lambda log: log.plan("g", [], True), ValueError, "steps must be a non-empty list of step texts"),
    (lambda log: log.plan("g", ["s"], 1), TypeError, "success must be True or False, got 1"),
])
def test_bad_feedback_is_refused_and_nothing_written(tmp_path, call, error, message):
    with FeedbackLog(tmp_path / "feedback") as log:
        with pytest.raises(error) as raised:
            call(log)
    assert str(raised.value) == message
    assert not (tmp_path / "feedback" / "training_data_fast.jsonl").exists()
    with pytest.raises(Exception, match="No usable raw data"):  # brain.db holds empty tables only
        load(tmp_path / "feedback")

"""``FeedbackLog``: what users did with the brain's answers, written as a raw directory that ``RawStore`` and the
miners already read (DESIGN.md, "Raw operational data").

A feedback directory (the app chooses it, e.g. ``models/feedback/``; never the app's raw directory) holds:

- ``brain.db`` (SQLite in WAL mode, every insert committed with ``synchronous=FULL``):
  - ``history(id, conversation_id, ts, role, content, memory_refs, tool, status, rejected_refs)``: one user turn
    per ``memory()`` call, ``memory_refs`` = the facts the user relied on. ``rejected_refs`` (a JSON list the
    readers ignore) keeps the facts the user turned down, for a learner's negatives: see ``rejected_refs()``.
  - ``facts(id, text, entity, topic, created_at, confidence, source)``: a copy of each referenced fact, when the
    log is given a fact lookup (a ``MemoryBank``, or any ``id -> fact`` mapping). ``RawStore`` drops references
    to facts it cannot find, so without the copies the directory read alone keeps the turns but not their refs.
  - ``patterns(id, goal, steps, success_count, created_at)``: plans that worked; the same goal and steps working
    again counts ``success_count`` up.
  - ``plan_outcomes(id, pattern_id, goal, steps, success, ts)``: every reported outcome, failures included. The
    readers ignore this table, so a failed plan never becomes a training pattern (the reasoning miner mines every
    ``patterns`` row, ``success_count`` 0 included); a learner reads failures with ``plan_outcomes()``.
- ``training_data_fast.jsonl``: one tool call a line, ``{ts, conversation_id, task, available_tools, tool,
  status, error}``, each line written whole with one ``write`` and fsynced.
- ``.dexter-feedback.json``: the marker that says a feedback log owns this directory.

A crash loses at most the record being written: SQLite rolls back an unfinished insert, and a torn last JSONL
line is skipped by the reader with a located ``malformed_json`` problem and ended with a newline before the next
append, so that it never swallows the next record. Threads may share one log (a lock serialises the appends);
processes too (SQLite's locking, and ``flock`` on the JSONL file where ``fcntl`` exists).

Example:
    >>> log = FeedbackLog("models/feedback", facts=bank)  # doctest: +SKIP
    >>> log.memory("c1", "when is Dana's birthday?", used=["f3"], rejected=["f9"])  # doctest: +SKIP
    >>> log.tool("Check system status", "system_ops.get_info", "error", error="TimeoutError")  # doctest: +SKIP
    >>> log.plan("Book a weekend getaway", ["pick a destination", "book hotel"], success=True)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from dexter_brain.io import append_line, atomic_write_text, fsync_directory
from dexter_brain.lexical import normalize
from dexter_brain.raw.fields import FieldError, to_timestamp
from dexter_brain.raw.report import is_raw_file


MARKER = ".dexter-feedback.json"
FORMAT_VERSION = 1
TOOL_LOG = "training_data_fast.jsonl"
BRAIN_DB = "brain.db"
BUSY_TIMEOUT_S = 10.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS history (id INTEGER PRIMARY KEY, conversation_id TEXT NOT NULL, ts TEXT,
    role TEXT NOT NULL, content TEXT, memory_refs TEXT, tool TEXT, status TEXT, rejected_refs TEXT);
CREATE TABLE IF NOT EXISTS facts (id TEXT PRIMARY KEY, text TEXT NOT NULL, entity TEXT, topic TEXT,
    created_at TEXT, confidence REAL, source TEXT);
CREATE TABLE IF NOT EXISTS patterns (id TEXT PRIMARY KEY, goal TEXT NOT NULL, steps TEXT NOT NULL,
    success_count INTEGER NOT NULL DEFAULT 0, created_at TEXT);
CREATE TABLE IF NOT EXISTS plan_outcomes (id INTEGER PRIMARY KEY, pattern_id TEXT NOT NULL, goal TEXT NOT NULL,
    steps TEXT NOT NULL, success INTEGER NOT NULL, ts TEXT);
"""


class FeedbackError(ValueError):
    """A directory a feedback log may not write into (the app's raw directory, a file, another format)."""


class FactLookup(Protocol):
    """Where the log finds the facts it copies: a ``MemoryBank``, a dict of id -> fact, ..."""

    def get(self, fact_id: str, /) -> Mapping[str, Any] | None: ...


class FeedbackLog:
    """Append users' feedback to a feedback directory in the raw-data format.

    Args:
        directory: The feedback directory; created if missing. A directory holding raw files that no feedback
            log wrote (no marker) is refused: feedback never goes into the app's raw directory.
        facts: Where to find the facts ``memory()`` references, to copy them into ``brain.db`` (see the module
            docstring); ``None`` writes the references only.
        raw_dir: The app's raw directory, if known: refused as ``directory`` even when it holds nothing yet.

    Raises:
        FeedbackError: ``directory`` is the raw directory, holds raw files it did not write, is a file, or holds
            a marker of another format version.

    Example:
        >>> with FeedbackLog("models/feedback", raw_dir="datasets/raw/app") as log:  # doctest: +SKIP
        ...     log.tool("convert 100 usd to eur", "currency.convert", "success", conversation_id="c1")
    """

    def __init__(self, directory: str | os.PathLike[str], *, facts: FactLookup | None = None,
                 raw_dir: str | os.PathLike[str] | None = None):
        self.directory = Path(directory)
        self.facts = facts
        _claim(self.directory, raw_dir)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.directory / BRAIN_DB, isolation_level=None, check_same_thread=False,
                                   timeout=BUSY_TIMEOUT_S)
        self._db.execute("PRAGMA journal_mode = WAL")  # readers (RawStore copies the file) never block an append
        self._db.execute("PRAGMA synchronous = FULL")  # an append is on disk when the call returns
        self._db.executescript(_SCHEMA)

    # --- the three kinds of feedback -----------------------------------------------------------------------
    def memory(self, conversation_id: str, query: str, used: Sequence[str], rejected: Sequence[str] = (),
               ts: datetime | str | None = None) -> int:
        """Record which stored facts answered a query: a user turn with ``memory_refs = used``.

        Args:
            conversation_id: The conversation (turns of one conversation are read back in order).
            query: What the user asked.
            used: Ids of the facts the user relied on; empty when none helped (the miner then reads the turn as
                "nothing stored is relevant", or, for a short "and the other one?", as a follow-up).
            rejected: Ids of facts shown but turned down (kept in ``rejected_refs``, ignored by the readers).
            ts: When it happened (datetime or ISO text; naive is UTC); now when omitted.

        Returns:
            The ``history`` rowid of the turn (``Message.provenance.rowid`` once read back).

        Raises:
            ValueError / TypeError: An empty id or query, ids that are not strings, or an id both used and
                rejected.
        """
        conversation_id, query = _text(conversation_id, "conversation_id"), _text(query, "query")
        used, rejected = _ids(used, "used"), _ids(rejected, "rejected")
        both = sorted(set(used) & set(rejected))
        if both:
            raise ValueError(f"fact id(s) {', '.join(map(repr, both))} are both used and rejected")
        copies = []
        if self.facts is not None:
            for fact_id in dict.fromkeys(used + rejected):
                fact = self.facts.get(fact_id)
                if fact is not None:
                    copies.append((fact_id, fact.get("text") or "", fact.get("entity"), fact.get("topic"),
                                   fact.get("created_at"), fact.get("confidence"), fact.get("source")))
        with self._writing() as db:
            # INSERT OR IGNORE: the first copy of a fact stays (what the user saw when it was first used).
            db.executemany("INSERT OR IGNORE INTO facts (id, text, entity, topic, created_at, confidence, source) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?)", copies)
            cursor = db.execute(
                "INSERT INTO history (conversation_id, ts, role, content, memory_refs, rejected_refs) "
                "VALUES (?, ?, 'user', ?, ?, ?)",
                (conversation_id, _timestamp(ts), query, json.dumps(used), json.dumps(rejected)))
        return cursor.lastrowid

    def tool(self, task: str, tool: str, status: str, error: str | None = None, conversation_id: str | None = None,
             available_tools: Sequence[str | Mapping[str, Any]] | None = None,
             ts: datetime | str | None = None) -> dict[str, Any]:
        """Record a tool call and how it went: one ``training_data_fast.jsonl`` line.

        Args:
            task: What the user asked for.
            tool: The tool that was called.
            status: ``success`` or ``error``.
            error: The error text of a failed call.
            conversation_id: The conversation, so that a failure and its retry are read as a correction.
            available_tools: The tools offered (names, or ``{name, description}``).
            ts: When it happened; now when omitted.

        Returns:
            The record as written.
        """
        if status not in ("success", "error"):
            raise ValueError(f"status must be 'success' or 'error', got {status!r}")
        if conversation_id is not None:
            conversation_id = _text(conversation_id, "conversation_id")
        record = {"ts": _timestamp(ts), "conversation_id": conversation_id, "task": _text(task, "task"),
                  "available_tools": None if available_tools is None else list(available_tools),
                  "tool": _text(tool, "tool"), "status": status, "error": error}
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        with self._lock:
            append_line(self.directory / TOOL_LOG, line)
        return record

    def plan(self, goal: str, steps: Sequence[str], success: bool, ts: datetime | str | None = None) -> str:
        """Record how a plan went: a success adds (or counts up) a ``patterns`` row; every outcome, failures
        included, goes to ``plan_outcomes``, which no reader mines.

        Args:
            goal: What the plan was for.
            steps: Its steps in order.
            success: Whether it worked.
            ts: When it finished; now when omitted.

        Returns:
            The pattern id (the same for the same goal and steps, up to case and punctuation).
        """
        if not isinstance(success, bool):
            raise TypeError(f"success must be True or False, got {success!r}")
        goal = _text(goal, "goal")
        if isinstance(steps, str) or not steps:
            raise ValueError("steps must be a non-empty list of step texts")
        steps = [_text(step, "steps[]") for step in steps]
        key = json.dumps([normalize(goal), [normalize(step) for step in steps]])
        pattern_id = "feedback-" + hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]
        when, steps_json = _timestamp(ts), json.dumps(steps, ensure_ascii=False)
        with self._writing() as db:
            if success:
                db.execute("INSERT INTO patterns (id, goal, steps, success_count, created_at) VALUES (?, ?, ?, 1, ?) "
                           "ON CONFLICT (id) DO UPDATE SET success_count = success_count + 1",
                           (pattern_id, goal, steps_json, when))
            db.execute("INSERT INTO plan_outcomes (pattern_id, goal, steps, success, ts) VALUES (?, ?, ?, ?, ?)",
                       (pattern_id, goal, steps_json, int(success), when))
        return pattern_id

    # --- reading what the raw readers skip -----------------------------------------------------------------
    def rejected_refs(self) -> dict[int, tuple[str, ...]]:
        """``history`` rowid -> ids the user rejected, for the turns that rejected any."""
        with self._lock:
            rows = self._db.execute("SELECT id, rejected_refs FROM history WHERE rejected_refs NOT IN ('[]', '') "
                                    "ORDER BY id").fetchall()
        return {rowid: tuple(json.loads(refs)) for rowid, refs in rows}

    def plan_outcomes(self) -> list[dict[str, Any]]:
        """Every recorded plan outcome in order: ``{pattern_id, goal, steps, success, ts}``."""
        with self._lock:
            rows = self._db.execute("SELECT pattern_id, goal, steps, success, ts FROM plan_outcomes ORDER BY id")
            return [{"pattern_id": p, "goal": g, "steps": json.loads(s), "success": bool(ok), "ts": t}
                    for p, g, s, ok, t in rows]

    # --- plumbing ------------------------------------------------------------------------------------------
    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One transaction under the log's lock: committed (on disk) on exit, rolled back if the body raises."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> FeedbackLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FeedbackLog({str(self.directory)!r})"


def _claim(directory: Path, raw_dir: str | os.PathLike[str] | None) -> None:
    """Refuse a directory a feedback log must not write into; create it and its marker otherwise."""
    if raw_dir is not None and Path(raw_dir).exists() and directory.exists() and directory.samefile(raw_dir):
        raise FeedbackError(f"feedback directory {directory} is the raw directory {raw_dir}: feedback is never "
                            f"written into the app's raw directory; choose another (e.g. models/feedback)")
    if directory.exists() and not directory.is_dir():
        raise FeedbackError(f"feedback directory {directory} is a file")
    marker = directory / MARKER
    if marker.exists():
        try:
            version = json.loads(marker.read_text(encoding="utf-8")).get("version")
        except (ValueError, AttributeError):
            version = None
        if version != FORMAT_VERSION:
            raise FeedbackError(f"feedback directory {directory} has a {MARKER} of format version {version!r}, "
                                f"this dexter-brain writes version {FORMAT_VERSION}")
        return
    found = sorted(p.name for p in directory.iterdir() if is_raw_file(p.name)) if directory.exists() else []
    if found:
        raise FeedbackError(f"feedback directory {directory} holds raw files no feedback log wrote "
                            f"({', '.join(found)}): feedback is never written into the app's raw directory; "
                            f"choose another (e.g. models/feedback)")
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_text(marker, json.dumps({"format": "dexter-brain feedback", "version": FORMAT_VERSION}) + "\n")
    fsync_directory(directory)


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def _ids(values: Sequence[str], name: str) -> list[str]:
    if isinstance(values, str):
        raise TypeError(f"{name} must be a list of fact ids, not a string")
    return [_text(value, f"{name}[]") for value in values]


def _timestamp(ts: datetime | str | None) -> str:
    """ISO 8601 UTC text, as the readers parse it back."""
    if ts is None:
        return datetime.now(timezone.utc).isoformat()
    if isinstance(ts, datetime):
        return (ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts.astimezone(timezone.utc)).isoformat()
    try:
        parsed = to_timestamp(ts)
    except FieldError as error:
        raise ValueError(f"ts: {error}") from None
    if parsed is None:
        raise ValueError("ts must be a timestamp, got an empty string")
    return parsed.isoformat()

"""Typed records read from a raw directory, each with its provenance.

Every record says where it came from (``Provenance``), so that a retrieved memory, a tool example or a plan
step can later be traced back to a file and line, a JSON path, or a table and rowid. The readers in
``dexter_brain.raw`` build these; everything downstream (corpus mining, the memory bank) consumes them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class Provenance(BaseModel):
    """Where a record was read from: a file plus a line, a JSON path, or a table row."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    file: str
    """File name relative to the raw directory, e.g. ``d2_memory.json`` or ``brain.db``."""
    line: int | None = None
    """1-based line number for JSONL files."""
    path: str | None = None
    """JSON path inside a JSON document, e.g. ``facts[12]`` or ``conversations[3].messages[0]``."""
    table: str | None = None
    """SQLite table name for ``brain.db`` rows."""
    rowid: int | None = None
    """SQLite rowid of the row."""

    def __str__(self) -> str:
        if self.table is not None:
            return f"{self.file}:{self.table}#rowid={self.rowid}"
        if self.line is not None:
            return f"{self.file}:{self.line}" + (f":{self.path}" if self.path else "")
        if self.path is not None:
            return f"{self.file}:{self.path}"
        return self.file


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    provenance: Provenance
    """Where this record was read from."""


class Fact(_Record):
    """One stored memory item."""

    id: str
    text: str
    entity: str | None = None
    topic: str | None = None
    created_at: datetime | None = None
    confidence: float | None = None
    source_conversation: str | None = None
    """Conversation the fact was learned in, when known."""
    source_message: int | None = None
    """0-based index of the message in ``source_conversation`` the fact came from."""


class Entity(_Record):
    """A named thing facts talk about (project, person, place, device, account, ...)."""

    name: str
    type: str | None = None
    aliases: tuple[str, ...] = ()
    attributes: dict[str, Any] = {}


class Topic(_Record):
    """A named group of facts."""

    name: str
    fact_ids: tuple[str, ...] = ()


class Message(_Record):
    """One turn of a conversation (from ``d2_memory.json`` or a ``brain.db`` history row)."""

    role: Literal["user", "assistant", "system", "tool"]
    content: str
    ts: datetime | None = None
    memory_refs: tuple[str, ...] = ()
    """Ids of the facts this turn relied on (query -> relevant facts)."""
    tool: str | None = None
    """Tool named on a history row, if any."""
    status: str | None = None
    """Tool call status on a history row (``success`` / ``error``), if any."""


class Conversation(_Record):
    """An ordered list of messages sharing one id."""

    id: str
    title: str | None = None
    started_at: datetime | None = None
    messages: tuple[Message, ...] = ()


class Summary(_Record):
    """A conversation summary; with ``goal`` and ``steps`` it is also a plan."""

    conversation_id: str | None = None
    text: str
    goal: str | None = None
    steps: tuple[str, ...] = ()


class Triple(_Record):
    """A (subject, predicate, object) statement, optionally tied to a fact."""

    subject: str
    predicate: str
    object: str
    fact_id: str | None = None
    created_at: datetime | None = None


class Pattern(_Record):
    """A stored plan: a goal and its ordered steps."""

    id: str
    goal: str
    steps: tuple[str, ...]
    success_count: int = 0
    created_at: datetime | None = None


class ToolSpec(BaseModel):
    """A tool as offered to the assistant: a name and, when known, a description."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str | None = None


class ToolCall(_Record):
    """One logged tool call (a ``training_data_fast.jsonl`` line or an ``art_*.json`` artifact)."""

    task: str | None = None
    """What the user asked for; artifacts may lack it."""
    tool: str
    status: Literal["success", "error"]
    ts: datetime | None = None
    conversation_id: str | None = None
    ui_context: dict[str, Any] = {}
    available_tools: tuple[ToolSpec, ...] = ()
    args: dict[str, Any] = {}
    error: str | None = None
    output: Any = None
    duration_ms: float | None = None

"""Raw dicts -> typed records, one function per record kind, shared by the JSON and SQLite readers.

Each ``parse_*`` takes the record as a dict (a JSON object or a SQLite row), the ``SourceReport`` to record
problems in, a location for those problems and the record's ``Provenance``. It returns the record, or ``None``
when a required field is missing or invalid (the problem is already recorded and counted as skipped). The field
aliases below are the contract's names plus the ones a reasonable app would use instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dexter_brain.raw.fields import (RecordFields, SkipRecord, to_content, to_float, to_id, to_id_list, to_int,
                                     to_mapping, to_role, to_status, to_text, to_text_list, to_timestamp,
                                     to_tool_specs)
from dexter_brain.raw.records import (Conversation, Entity, Fact, Message, Pattern, Provenance, Summary, Topic,
                                      ToolCall, Triple)
from dexter_brain.raw.report import SourceReport

ID = ("id", "fact_id")
TEXT = ("text", "content", "fact")
CONVERSATION_ID = ("conversation_id", "conversationId", "session_id")
TS = ("ts", "timestamp", "time")
CREATED_AT = ("created_at", "createdAt", *TS)
MEMORY_REFS = ("memory_refs", "memoryRefs", "refs")
TOOL = ("tool", "tool_name", "name")
TASK = ("task", "query", "prompt")
AVAILABLE_TOOLS = ("available_tools", "tools")


@dataclass
class RecordLists:
    """The records one reader produced, per kind, in reading order."""

    facts: list[Fact] = field(default_factory=list)
    entities: list[Entity] = field(default_factory=list)
    topics: list[Topic] = field(default_factory=list)
    conversations: list[Conversation] = field(default_factory=list)
    summaries: list[Summary] = field(default_factory=list)
    triples: list[Triple] = field(default_factory=list)
    patterns: list[Pattern] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)

    def extend(self, other: RecordLists) -> None:
        for kind, records in vars(other).items():
            getattr(self, kind).extend(records)


def parse_fact(record: dict[str, Any], source: SourceReport, location: str, provenance: Provenance) -> Fact | None:
    f = RecordFields(record, source, location)
    try:
        return Fact(
            provenance=provenance,
            id=f.required(ID, to_id),
            text=f.required(TEXT, to_text),
            entity=f.optional(("entity",), to_text, None),
            topic=f.optional(("topic",), to_text, None),
            created_at=f.optional(CREATED_AT, to_timestamp, None),
            confidence=f.optional(("confidence",), to_float, None),
            source_conversation=f.optional(("source_conversation", "sourceConversation"), to_id, None),
            source_message=f.optional(("source_message", "sourceMessage"), to_int, None),
        )
    except SkipRecord:
        return None


def parse_entity(record: dict[str, Any], source: SourceReport, location: str,
                 provenance: Provenance) -> Entity | None:
    f = RecordFields(record, source, location)
    try:
        return Entity(
            provenance=provenance,
            name=f.required(("name", "entity"), to_text),
            type=f.optional(("type", "kind"), to_text, None),
            aliases=f.optional(("aliases",), to_text_list, ()),
            attributes=f.optional(("attributes",), to_mapping, {}),
        )
    except SkipRecord:
        return None


def parse_topic(record: dict[str, Any], source: SourceReport, location: str, provenance: Provenance) -> Topic | None:
    f = RecordFields(record, source, location)
    try:
        return Topic(provenance=provenance, name=f.required(("name", "topic"), to_text),
                     fact_ids=f.optional(("fact_ids", "factIds"), to_id_list, ()))
    except SkipRecord:
        return None


def parse_summary(record: dict[str, Any], source: SourceReport, location: str,
                  provenance: Provenance) -> Summary | None:
    f = RecordFields(record, source, location)
    try:
        return Summary(
            provenance=provenance,
            conversation_id=f.optional(CONVERSATION_ID, to_id, None),
            text=f.required(("text", "content", "summary"), to_text),
            goal=f.optional(("goal",), to_text, None),
            steps=f.optional(("steps",), to_text_list, ()),
        )
    except SkipRecord:
        return None


def parse_message(record: dict[str, Any], source: SourceReport, location: str,
                  provenance: Provenance) -> Message | None:
    """A ``d2_memory.json`` message or a ``brain.db`` history row (which may also name a tool and its status)."""
    f = RecordFields(record, source, location)
    try:
        role = f.required(("role",), to_role)
        # Empty content is kept (a turn that only called a tool): skipping it would shift the message indices
        # that facts' ``source_message`` point at.
        content = f.required(("content", "text"), to_content, is_empty_ok=True)
    except SkipRecord:
        return None
    tool = f.optional(TOOL[:2], to_id, None)
    status = f.optional(("status",), to_status, None)
    if status is None and tool is not None:
        status = "error" if f.optional(("error",), to_text, "").strip() else "success"
    return Message(provenance=provenance, role=role, content=content, ts=f.optional(TS, to_timestamp, None),
                   memory_refs=f.optional(MEMORY_REFS, to_id_list, ()), tool=tool, status=status)


def parse_conversation(record: dict[str, Any], source: SourceReport, location: str,
                       provenance: Provenance) -> Conversation | None:
    """A ``d2_memory.json`` conversation without its messages (the reader adds them once the header is valid)."""
    f = RecordFields(record, source, location)
    try:
        return Conversation(provenance=provenance, id=f.required(("id", *CONVERSATION_ID), to_id),
                            title=f.optional(("title",), to_text, None),
                            started_at=f.optional(("started_at", "startedAt", *CREATED_AT), to_timestamp, None))
    except SkipRecord:
        return None


def parse_triple(record: dict[str, Any], source: SourceReport, location: str,
                 provenance: Provenance) -> Triple | None:
    f = RecordFields(record, source, location)
    try:
        return Triple(
            provenance=provenance,
            subject=f.required(("subject",), to_text),
            predicate=f.required(("predicate",), to_text),
            object=f.required(("object",), to_text),
            fact_id=f.optional(("fact_id",), to_id, None),
            created_at=f.optional(CREATED_AT, to_timestamp, None),
        )
    except SkipRecord:
        return None


def parse_pattern(record: dict[str, Any], source: SourceReport, location: str,
                  provenance: Provenance) -> Pattern | None:
    f = RecordFields(record, source, location)
    try:
        return Pattern(
            provenance=provenance,
            id=f.required(("id", "pattern_id"), to_id),
            goal=f.required(("goal",), to_text),
            steps=f.required(("steps",), to_text_list),
            success_count=f.optional(("success_count", "successCount"), to_int, 0),
            created_at=f.optional(CREATED_AT, to_timestamp, None),
        )
    except SkipRecord:
        return None


def parse_tool_call(record: dict[str, Any], source: SourceReport, location: str, provenance: Provenance, *,
                    is_task_required: bool) -> ToolCall | None:
    """A ``training_data_fast.jsonl`` line (task required) or an ``art_*.json`` artifact (task optional).

    A missing status is ``error`` when ``error`` is non-empty, else ``success``.
    """
    f = RecordFields(record, source, location)
    try:
        task = f.required(TASK, to_text) if is_task_required else f.optional(TASK, to_text, None)
        tool = f.required(TOOL, to_id)
        status = f.required(("status",), to_status) if f.has("status") else None  # absent: decided by ``error``
    except SkipRecord:
        return None
    error = f.optional(("error",), to_content, None)
    if status is None:
        status = "error" if error and error.strip() else "success"
    return ToolCall(
        provenance=provenance,
        task=task,
        tool=tool,
        status=status,
        ts=f.optional(TS, to_timestamp, None),
        conversation_id=f.optional(CONVERSATION_ID, to_id, None),
        ui_context=f.optional(("ui_context", "uiContext"), to_mapping, {}),
        available_tools=f.optional(AVAILABLE_TOOLS, to_tool_specs, ()),
        args=f.optional(("args", "arguments"), to_mapping, {}),
        error=error,
        output=record.get("output"),
        duration_ms=f.optional(("duration_ms", "durationMs"), to_float, None),
    )

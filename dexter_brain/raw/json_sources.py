"""Readers for the JSON sources: ``d2_memory.json``, ``training_data_fast.jsonl`` and ``art_*.json``.

Files are read as bytes with plain ``open(..., "rb")`` and decoded here, so that a non-UTF-8 byte is reported
with its place (a byte offset and line, or the JSONL line) and the rest of the file is still read with the bad
bytes replaced by U+FFFD. A JSONL file is decoded and parsed line by line, so one broken line costs one record.
Shape checks (an object where an object is expected, a list where a list is) come before field checks, and every
problem names the file, the line or JSON path, and the field.
"""

from __future__ import annotations

import codecs
import json
import logging
from pathlib import Path
from typing import Any

from dexter_brain.raw.parse import (RecordLists, parse_conversation, parse_entity, parse_fact, parse_message,
                                    parse_summary, parse_tool_call, parse_topic)
from dexter_brain.raw.records import Provenance
from dexter_brain.raw.report import TOP_LEVEL, WHOLE_FILE, SourceReport

logger = logging.getLogger(__name__)

MEMORY_LISTS = ("facts", "entities", "topics", "conversations", "summaries")
"""The lists ``d2_memory.json`` may hold; other keys are ignored."""

_PARSERS = {"facts": parse_fact, "entities": parse_entity, "topics": parse_topic, "summaries": parse_summary}


def _json_type(value: Any) -> str:
    names = {dict: "a JSON object", list: "a JSON array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def _read_bytes(path: Path, source: SourceReport) -> bytes | None:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as error:
        source.add(WHOLE_FILE, "unreadable", f"cannot read the file ({error.strerror or error}); file skipped",
                   is_skipped=True)
        return None


def _decode_document(data: bytes, source: SourceReport) -> str:
    """Decode a whole JSON document; undecodable bytes are reported once (first place) and replaced."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        source.add(f"byte {error.start} (line {line}, column {column})", "not_utf8",
                   f"invalid UTF-8 byte 0x{data[error.start]:02x}; undecodable bytes were replaced with U+FFFD "
                   f"and the rest of the file was read")
        return data.decode("utf-8", errors="replace")


def _load_document(path: Path, source: SourceReport) -> Any:
    """Read and parse one JSON document, or record why not and return ``None``."""
    data = _read_bytes(path, source)
    if data is None:
        return None
    text = _decode_document(data, source)
    if not text.strip():
        source.add(WHOLE_FILE, "malformed_json", "the file is empty; file skipped", is_skipped=True)
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        source.add(f"line {error.lineno}, column {error.colno}", "malformed_json",
                   f"malformed JSON ({error.msg}); file skipped", is_skipped=True)
        return None


def read_memory_json(path: Path, source: SourceReport) -> RecordLists:
    """Read ``d2_memory.json``: one object with optional lists of conversations, facts, entities, topics, summaries."""
    records = RecordLists()
    document = _load_document(path, source)
    if document is None:
        return records
    if not isinstance(document, dict):
        source.add(TOP_LEVEL, "wrong_shape", f"expected a JSON object with lists {', '.join(MEMORY_LISTS)}, "
                   f"got {_json_type(document)}; file skipped", is_skipped=True)
        return records
    for key in MEMORY_LISTS:
        items = document.get(key)
        if items is None:
            continue
        if not isinstance(items, list):
            source.add(key, "wrong_shape", f"expected a list, got {_json_type(items)}; list skipped", field=key,
                       is_skipped=True)
            continue
        for index, item in enumerate(items):
            location = f"{key}[{index}]"
            if not isinstance(item, dict):
                source.add(location, "wrong_shape", f"expected a JSON object, got {_json_type(item)}; item skipped",
                           field=key, is_skipped=True)
                continue
            provenance = Provenance(file=source.file, path=location)
            if key == "conversations":
                _read_conversation(item, source, location, provenance, records)
                continue
            record = _PARSERS[key](item, source, location, provenance)
            if record is not None:
                getattr(records, key).append(record)
                source.read[key] += 1
    return records


def _read_conversation(item: dict[str, Any], source: SourceReport, location: str, provenance: Provenance,
                       records: RecordLists) -> None:
    conversation = parse_conversation(item, source, location, provenance)
    if conversation is None:
        return
    raw_messages = item.get("messages")
    if raw_messages is not None and not isinstance(raw_messages, list):
        source.add(location, "wrong_shape", f"expected a list of messages, got {_json_type(raw_messages)}; "
                   f"conversation kept without messages", field="messages")
        raw_messages = None
    messages = []
    for index, raw in enumerate(raw_messages or []):
        message_location = f"{location}.messages[{index}]"
        if not isinstance(raw, dict):
            source.add(message_location, "wrong_shape", f"expected a message object, got {_json_type(raw)}; "
                       f"message skipped", field="messages", is_skipped=True)
            continue
        message = parse_message(raw, source, message_location, Provenance(file=source.file, path=message_location))
        if message is not None:
            messages.append(message)
    records.conversations.append(conversation.model_copy(update={"messages": tuple(messages)}))
    source.read["conversations"] += 1
    source.read["messages"] += len(messages)


def read_tool_log(path: Path, source: SourceReport) -> RecordLists:
    """Read ``training_data_fast.jsonl``: one tool-call object a line; blank lines are ignored."""
    records = RecordLists()
    data = _read_bytes(path, source)
    if data is None:
        return records
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    for number, raw_line in enumerate(data.split(b"\n"), start=1):
        raw_line = raw_line.rstrip(b"\r")
        if not raw_line.strip():
            continue
        location = f"line {number}"
        try:
            line = raw_line.decode("utf-8")
        except UnicodeDecodeError as error:
            source.add(location, "not_utf8", f"invalid UTF-8 byte 0x{raw_line[error.start]:02x} at column "
                       f"{error.start + 1}; replaced with U+FFFD and the line read")
            line = raw_line.decode("utf-8", errors="replace")
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            source.add(location, "malformed_json", f"malformed JSON ({error.msg} at column {error.colno}); "
                       f"line skipped", is_skipped=True)
            continue
        if not isinstance(item, dict):
            source.add(location, "wrong_shape", f"expected a JSON object, got {_json_type(item)}; line skipped",
                       is_skipped=True)
            continue
        call = parse_tool_call(item, source, location, Provenance(file=source.file, line=number),
                               is_task_required=True)
        if call is not None:
            records.tool_calls.append(call)
            source.read["tool_calls"] += 1
    return records


def read_artifact(path: Path, source: SourceReport) -> RecordLists:
    """Read one ``art_*.json`` file: a tool-call artifact object, or a list of them."""
    records = RecordLists()
    document = _load_document(path, source)
    if document is None:
        return records
    if isinstance(document, dict):
        items = [(TOP_LEVEL, None, document)]
    elif isinstance(document, list):
        items = [(f"[{index}]", f"[{index}]", item) for index, item in enumerate(document)]
    else:
        source.add(TOP_LEVEL, "wrong_shape", f"expected an artifact object or a list of them, got "
                   f"{_json_type(document)}; file skipped", is_skipped=True)
        return records
    for location, json_path, item in items:
        if not isinstance(item, dict):
            source.add(location, "wrong_shape", f"expected an artifact object, got {_json_type(item)}; "
                       f"item skipped", is_skipped=True)
            continue
        call = parse_tool_call(item, source, location, Provenance(file=source.file, path=json_path),
                               is_task_required=False)
        if call is not None:
            records.tool_calls.append(call)
            source.read["tool_calls"] += 1
    return records

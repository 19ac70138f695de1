"""Mine the tool corpus: the tool catalogue and (task, available tools, context, previous error) -> tool.

Calls come from ``training_data_fast.jsonl`` and ``art_*.json`` artifacts (an artifact that repeats a
logged call is counted once). Within a conversation, calls are ordered by time; a successful call that
follows a failed one on a similar task with another tool is a *correction* example, and every call after
a failure carries that failure as ``previous_tool`` / ``previous_error``.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from datetime import datetime, timezone

from dexter_brain.schema import ToolEntry, ToolExample
from dexter_brain.lexical import content_words, jaccard, normalize, words
from dexter_brain.raw import RawStore
from dexter_brain.raw.records import ToolCall

logger = logging.getLogger(__name__)

_MAX_CONTEXT_CHARS = 300
_SAME_TASK_JACCARD = 0.5
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def flatten_context(ui_context: dict | None) -> str:
    """``{"screen": "inbox", "selected": {...}}`` -> ``screen: inbox; selected: {...}`` (sorted, capped)."""
    if not ui_context:
        return ""
    parts = []
    for key in sorted(ui_context):
        value = ui_context[key]
        if value is None or value == "" or value == [] or value == {}:
            continue
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)
        parts.append(f"{key}: {text}")
    return "; ".join(parts)[:_MAX_CONTEXT_CHARS]


def build_catalogue(calls: list[ToolCall]) -> list[ToolEntry]:
    """Every tool named anywhere, with its most common description and call statistics."""
    descriptions: dict[str, Counter[str]] = defaultdict(Counter)
    names: set[str] = set()
    stats: dict[str, Counter[str]] = defaultdict(Counter)
    for call in calls:
        names.add(call.tool)
        stats[call.tool]["calls"] += 1
        stats[call.tool]["successes" if call.status == "success" else "errors"] += 1
        for spec in call.available_tools:
            names.add(spec.name)
            if spec.description:
                descriptions[spec.name][spec.description.strip()] += 1
    entries = []
    for name in sorted(names):
        counts = descriptions.get(name)
        description = None
        if counts:
            description = sorted(counts.items(), key=lambda kv: (-kv[1], -len(kv[0]), kv[0]))[0][0]
        s = stats.get(name, Counter())
        entries.append(ToolEntry(name=name, description=description, calls=s["calls"],
                                 successes=s["successes"], errors=s["errors"]))
    return entries


def _dedupe(calls: list[ToolCall]) -> list[ToolCall]:
    seen: set[tuple] = set()
    out = []
    for call in calls:
        key = (call.conversation_id, normalize(call.task or ""), call.tool, call.status,
               call.ts.isoformat() if call.ts else None)
        if call.provenance.file.startswith("art_") and key in seen:
            continue
        seen.add(key)
        out.append(call)
    return out


def mine_tools(store: RawStore, known_tools: tuple[str, ...] = ()) -> tuple[list[ToolEntry], list[ToolExample]]:
    """The catalogue and the tool examples (unsplit). A call that does not say which tools were available had
    the whole catalogue to choose from: the tools named in ``store`` and ``known_tools`` (the catalogue of the
    corpus a feedback directory is added to)."""
    calls = _dedupe(store.tool_calls)
    catalogue = build_catalogue(calls)
    all_names = tuple(sorted({t.name for t in catalogue} | set(known_tools)))
    conversations: dict[str, list[tuple[int, ToolCall]]] = defaultdict(list)
    for i, call in enumerate(calls):
        group = call.conversation_id or f"call:{call.provenance}"
        conversations[group].append((i, call))
    examples: list[ToolExample] = []
    for group in sorted(conversations, key=lambda g: conversations[g][0][0]):
        ordered = sorted(conversations[group], key=lambda ic: (ic[1].ts or _EPOCH, ic[0]))
        previous: ToolCall | None = None
        turn = 0
        for _, call in ordered:
            failed_before = previous if previous is not None and previous.status == "error" else None
            if call.task and call.task.strip():
                available = tuple(dict.fromkeys(s.name for s in call.available_tools)) or all_names
                if call.tool not in available:
                    available = (*available, call.tool)
                is_correction = bool(
                    failed_before and call.status == "success" and call.tool != failed_before.tool
                    and (not failed_before.task or jaccard(set(content_words(call.task)),
                                                           set(content_words(failed_before.task)))
                         >= _SAME_TASK_JACCARD)
                )
                examples.append(ToolExample(
                    id=f"tool:{group}:{turn}", episode=group, turn=turn, group=group,
                    difficulty=_difficulty(call, is_correction), source=str(call.provenance),
                    task=call.task.strip(), available=available, context=flatten_context(call.ui_context),
                    previous_tool=failed_before.tool if failed_before else None,
                    previous_error=(failed_before.error or "error") if failed_before else None,
                    tool=call.tool, status=call.status, error=call.error, is_correction=is_correction,
                ))
                turn += 1
            previous = call
    logger.info("tool: %d tools in catalogue, %d examples", len(catalogue), len(examples))
    return catalogue, examples


def _difficulty(call: ToolCall, is_correction: bool) -> int:
    if is_correction:
        return 2
    name_words = set(words(call.tool))
    terse = len(content_words(call.task or "")) <= 2
    return 1 if terse or not (name_words & set(words(call.task or ""))) else 0

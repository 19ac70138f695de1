"""Raw-store readers: a raw directory's operational records -> typed records with provenance + an ingest report.

A raw directory holds any subset of ``d2_memory.json``, ``brain.db``, ``training_data_fast.jsonl`` and
``art_*.json`` (DESIGN.md, "Raw operational data"). ``RawStore.load(dir)`` reads them all, read-only, skipping
bad records with a located problem in ``store.report``.

Example:
    >>> from dexter_brain.raw import RawStore
    >>> store = RawStore.load("datasets/raw/sample")  # doctest: +SKIP
    >>> len(store.facts), len(store.tool_calls), store.report.problems  # doctest: +SKIP
"""

from dexter_brain.raw.fields import MAX_FIELD_CHARS
from dexter_brain.raw.records import (Conversation, Entity, Fact, Message, Pattern, Provenance, Summary, ToolCall,
                                      ToolSpec, Topic, Triple)
from dexter_brain.raw.report import IngestReport, Problem, SourceReport
from dexter_brain.raw.store import RawStore, RawStoreError

__all__ = [
    "RawStore", "RawStoreError", "IngestReport", "SourceReport", "Problem",
    "Provenance", "Fact", "Entity", "Topic", "Message", "Conversation", "Summary", "Triple", "Pattern", "ToolCall",
    "ToolSpec", "MAX_FIELD_CHARS",
]

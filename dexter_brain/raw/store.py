"""``RawStore``: every record of one raw directory, read once, with the ingest report.

``RawStore.load`` reads the four sources in a fixed order (``d2_memory.json``, ``brain.db``,
``training_data_fast.jsonl``, then each ``art_*.json`` in sorted name order), then checks what only the whole
directory can tell: duplicate fact ids (the first is kept) and references to unknown fact ids (``memory_refs``,
topic ``fact_ids``, triple ``fact_id``: dropped, the record kept), since a reference may point from
``d2_memory.json`` into ``brain.db``. Only a directory with nothing usable raises ``RawStoreError``.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from dexter_brain.raw.json_sources import read_artifact, read_memory_json, read_tool_log
from dexter_brain.raw.parse import RecordLists
from dexter_brain.raw.records import (Conversation, Entity, Fact, Pattern, Provenance, Summary, ToolCall, Topic,
                                      Triple)
from dexter_brain.raw.report import SOURCE_NAMES, WHOLE_FILE, IngestReport, SourceReport, location_of
from dexter_brain.raw.sqlite_source import read_brain_db

logger = logging.getLogger(__name__)

Reader = Callable[[Path, SourceReport], RecordLists]
_READERS: dict[str, Reader] = {"d2_memory.json": read_memory_json, "brain.db": read_brain_db,
                               "training_data_fast.jsonl": read_tool_log}
_LOOKED_FOR = ", ".join(SOURCE_NAMES)


class RawStoreError(ValueError):
    """A raw directory that is missing or holds nothing usable. ``report`` is the ingest report, if one was made."""

    def __init__(self, message: str, report: IngestReport | None = None):
        super().__init__(message)
        self.report = report


@dataclass(frozen=True, eq=False)
class RawStore:
    """All records of one raw directory, in reading order, plus the ``IngestReport``.

    Build it with ``RawStore.load``. The lists hold typed records from ``dexter_brain.raw.records``, each with
    its provenance; ``conversations`` holds ``d2_memory.json`` conversations first, then ``brain.db`` history
    grouped by ``conversation_id``.
    """

    root: Path
    facts: list[Fact]
    entities: list[Entity]
    topics: list[Topic]
    conversations: list[Conversation]
    summaries: list[Summary]
    triples: list[Triple]
    patterns: list[Pattern]
    tool_calls: list[ToolCall]
    report: IngestReport
    _facts_by_id: dict[str, Fact] = field(repr=False)

    @classmethod
    def load(cls, root: str | os.PathLike[str], show_progress_bar: bool | None = None) -> RawStore:
        """Read every known source in ``root``; bad records are skipped and reported, never fatal.

        Args:
            root: the raw directory. It is only read: SQLite is opened read-only and no file is created in it.
            show_progress_bar: show a progress bar over the source files; ``None`` shows it when this module's
                logger is enabled at INFO or lower.

        Returns:
            The store. ``store.report`` lists per source file what was read, what was skipped and why.

        Raises:
            RawStoreError: ``root`` does not exist, is not a directory, or holds nothing usable (no source file,
                or no record could be read from the ones present); the message names what was looked for and
                what was found.

        Example:
            >>> store = RawStore.load("datasets/raw/sample")  # doctest: +SKIP
            >>> print(store.report)  # doctest: +SKIP
        """
        root = Path(root)
        if not root.exists():
            if root.is_symlink():
                raise RawStoreError(f"Raw directory {root} is a symbolic link that {_broken_link(root)}: looked "
                                    f"for {_LOOKED_FOR} in it")
            raise RawStoreError(f"Raw directory {root} does not exist: looked for {_LOOKED_FOR} in it")
        if not root.is_dir():
            raise RawStoreError(f"Raw directory {root} is not a directory: looked for {_LOOKED_FOR} in it")
        if show_progress_bar is None:
            show_progress_bar = logger.getEffectiveLevel() <= logging.INFO

        report = IngestReport(root=root)
        sources: list[tuple[str, Reader]] = list(_READERS.items())
        artifacts = sorted(path.name for path in root.glob("art_*.json"))
        sources += [(name, read_artifact) for name in artifacts]
        records = RecordLists()
        for name, reader in tqdm(sources, desc="Reading raw data", unit="file", disable=not show_progress_bar):
            source = report.source(name)
            path = root / name
            if path.exists():
                source.is_present = True
                records.extend(reader(path, source))
            elif path.is_symlink():  # exists() is False for a link loop or a dangling link: say so, not "found none"
                source.is_present = True
                source.add(WHOLE_FILE, "broken_link", f"a symbolic link that {_broken_link(path)}; file skipped",
                           is_skipped=True)
        if not artifacts:
            report.source("art_*.json")

        facts_by_id = _drop_duplicate_facts(records, report)
        _drop_unresolved_refs(records, facts_by_id, report)
        if sum(report.read.values()) == 0:
            raise RawStoreError(_nothing_usable(root, report), report)
        report.log_warnings()
        return cls(root=root, facts=records.facts, entities=records.entities, topics=records.topics,
                   conversations=records.conversations, summaries=records.summaries, triples=records.triples,
                   patterns=records.patterns, tool_calls=records.tool_calls, report=report,
                   _facts_by_id=facts_by_id)

    def fact_by_id(self, fact_id: str) -> Fact | None:
        """The fact with this id (numeric ids are matched as strings), or ``None``."""
        return self._facts_by_id.get(str(fact_id))

    def __repr__(self) -> str:
        counts = ", ".join(f"{kind}={count}" for kind, count in self.report.read.items())
        return f"RawStore(root={str(self.root)!r}, {counts})"


def _drop_duplicate_facts(records: RecordLists, report: IngestReport) -> dict[str, Fact]:
    """Keep the first fact of each id (``d2_memory.json`` before ``brain.db``); report the others."""
    by_id: dict[str, Fact] = {}
    kept = []
    for fact in records.facts:
        first = by_id.get(fact.id)
        if first is None:
            by_id[fact.id] = fact
            kept.append(fact)
            continue
        source = report.source(fact.provenance.file)
        source.read["facts"] -= 1
        source.add(location_of(fact.provenance), "duplicate_id", f"fact id {fact.id!r} was already read at "
                   f"{first.provenance}; the first was kept", field="id", is_skipped=True)
    records.facts = kept
    return by_id


def _drop_unresolved_refs(records: RecordLists, facts_by_id: dict[str, Fact], report: IngestReport) -> None:
    """Drop references to unknown fact ids from messages, topics and triples, keeping the records."""

    def unresolved(ids: tuple[str, ...], provenance: Provenance, field_name: str,
                   kind: str) -> tuple[str, ...] | None:
        missing = [i for i in ids if i not in facts_by_id]
        if not missing:
            return None
        report.source(provenance.file).add(
            location_of(provenance), "unresolved_ref", f"unknown fact id(s) {', '.join(map(repr, missing))} "
            f"dropped; {kind} kept", field=field_name)
        return tuple(i for i in ids if i in facts_by_id)

    for index, conversation in enumerate(records.conversations):
        messages = list(conversation.messages)
        is_changed = False
        for position, message in enumerate(messages):
            kept = unresolved(message.memory_refs, message.provenance, "memory_refs", "message")
            if kept is not None:
                messages[position] = message.model_copy(update={"memory_refs": kept})
                is_changed = True
        if is_changed:
            records.conversations[index] = conversation.model_copy(update={"messages": tuple(messages)})
    for index, topic in enumerate(records.topics):
        kept = unresolved(topic.fact_ids, topic.provenance, "fact_ids", "topic")
        if kept is not None:
            records.topics[index] = topic.model_copy(update={"fact_ids": kept})
    for index, triple in enumerate(records.triples):
        if triple.fact_id is not None and triple.fact_id not in facts_by_id:
            unresolved((triple.fact_id,), triple.provenance, "fact_id", "triple")
            records.triples[index] = triple.model_copy(update={"fact_id": None})


def _broken_link(path: Path) -> str:
    """Why a symbolic link cannot be followed, as the end of a sentence."""
    try:
        os.stat(path)
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "loops (following it comes back to a link already followed)"
        if error.errno == errno.ENOENT:
            return f"points to a missing target ({os.readlink(path)})"
        return f"cannot be followed ({error.strerror})"
    return "cannot be followed"


def _nothing_usable(root: Path, report: IngestReport) -> str:
    present = [source for source in report.sources.values() if source.is_present]
    if not present:
        others = sorted(path.name for path in root.iterdir())
        found = "found none" + (f" (the directory holds {len(others)} other entries: "
                                f"{', '.join(others[:5])}{', ...' if len(others) > 5 else ''})" if others
                                else " (the directory is empty)")
    else:
        found = "found " + "; ".join(
            f"{source.file} ({source.problems[0].message})" if source.problems else f"{source.file} (no records)"
            for source in present)
    return f"No usable raw data in {root}: looked for {_LOOKED_FOR}; {found}"

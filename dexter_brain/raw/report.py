"""The ingest report: what was read from each raw source, what was skipped, and why.

Every problem is located (file, then a line, a JSON path, or a table and rowid, then the field) and carries a
short stable ``reason`` key, so tests and tools can match on it while people read ``message``. The readers add
problems through ``SourceReport.add``; ``RawStore.load`` gathers one ``SourceReport`` per source file into an
``IngestReport``.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dexter_brain.raw.records import Provenance

logger = logging.getLogger(__name__)

SOURCE_NAMES = ("d2_memory.json", "brain.db", "training_data_fast.jsonl", "art_*.json")
"""The four sources a raw directory may hold, in reading order (DESIGN.md, "Raw operational data")."""


def is_raw_file(name: str) -> bool:
    """Whether a file of this name is one of the sources the readers use (``art_*.json`` included)."""
    return name in SOURCE_NAMES[:3] or (name.startswith("art_") and name.endswith(".json"))

WHOLE_FILE = "file"
"""The location of a problem with the file as a whole (unreadable, empty, not SQLite, locked)."""

TOP_LEVEL = "top level"
"""The location of a JSON document's root value (the whole ``d2_memory.json`` object, a single artifact)."""

KINDS = ("facts", "entities", "topics", "conversations", "messages", "summaries", "triples", "patterns",
         "tool_calls")
"""Record kinds in report order; ``messages`` are counted on their own as well as inside ``conversations``."""

MAX_PROBLEMS_SHOWN = 5
"""Problems listed per file by ``str(report)`` before "... and N more"."""


@dataclass(frozen=True)
class Problem:
    """One located problem in a raw source."""

    file: str
    """File name relative to the raw directory."""
    location: str
    """Where in the file: ``line 3``, a JSON path such as ``facts[2]``, ``table history, rowid 7``, ``byte 9 (line
    1, column 10)``, ``top level`` for a JSON document's root, or ``file`` for the file as a whole."""
    field: str | None
    """The field (or column) at fault, when one is."""
    reason: str
    """Short stable key: ``malformed_json``, ``wrong_shape``, ``invalid_field``, ``missing_field``, ``not_utf8``,
    ``not_sqlite``, ``locked``, ``sqlite_error``, ``unreadable``, ``broken_link``, ``duplicate_id``,
    ``unresolved_ref`` or ``truncated`` (a text longer than ``MAX_FIELD_CHARS``, cut; the record kept)."""
    message: str
    """One readable line naming file, location and field."""

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "location": self.location, "field": self.field, "reason": self.reason,
                "message": self.message}


def location_of(provenance: Provenance) -> str:
    """The report location of a record, e.g. ``line 3``, ``facts[2]`` or ``table facts, rowid 7``."""
    if provenance.table is not None:
        return f"table {provenance.table}" + (f", rowid {provenance.rowid}" if provenance.rowid is not None else "")
    if provenance.line is not None:
        return f"line {provenance.line}" + (f", {provenance.path}" if provenance.path else "")
    return provenance.path or TOP_LEVEL


@dataclass
class SourceReport:
    """What happened to one source file: presence, records read per kind, records skipped per reason, problems."""

    file: str
    is_present: bool = False
    read: Counter[str] = field(default_factory=Counter)
    """Records kept, per kind (``facts``, ``messages``, ``tool_calls``, ...)."""
    skipped: Counter[str] = field(default_factory=Counter)
    """Records (or whole tables and lists) left out, per reason."""
    problems: list[Problem] = field(default_factory=list)

    def add(self, location: str, reason: str, detail: str, *, field: str | None = None,
            is_skipped: bool = False) -> Problem:
        """Record a problem; ``is_skipped`` when the record (or list, table) at ``location`` was left out."""
        where = (self.file if location == WHOLE_FILE else f"{self.file}, {location}") + (
            f", field '{field}'" if field else "")
        problem = Problem(file=self.file, location=location, field=field, reason=reason, message=f"{where}: {detail}")
        self.problems.append(problem)
        if is_skipped:
            self.skipped[reason] += 1
        return problem

    @property
    def num_read(self) -> int:
        """Records kept, all kinds together (messages counted on their own as well as their conversations)."""
        return sum(self.read.values())

    def summary_line(self) -> str:
        if not self.is_present:
            return f"{self.file}: not present"
        read = ", ".join(f"{self.read[kind]} {kind}" for kind in KINDS if self.read[kind]) or "nothing read"
        skipped = ", ".join(f"{count} {reason}" for reason, count in sorted(self.skipped.items()))
        return f"{self.file}: {read}" + (f"; skipped {skipped}" if skipped else "") + (
            f"; {len(self.problems)} problem(s)" if self.problems else "")

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "present": self.is_present, "read": dict(self.read), "skipped": dict(self.skipped),
                "problems": [p.to_dict() for p in self.problems]}


@dataclass
class IngestReport:
    """Per-source counts and located problems of one ``RawStore.load``.

    ``sources`` maps each file name (``d2_memory.json``, ``brain.db``, ``training_data_fast.jsonl``, and every
    ``art_*.json`` file on its own) to its ``SourceReport``. When no artifact file exists, a single
    ``art_*.json`` entry says so.
    """

    root: Path
    sources: dict[str, SourceReport] = field(default_factory=dict)

    def source(self, file: str) -> SourceReport:
        """The report for ``file``, created (not present, nothing read) on first use."""
        if file not in self.sources:
            self.sources[file] = SourceReport(file)
        return self.sources[file]

    @property
    def problems(self) -> list[Problem]:
        """All problems, source by source, in reading order."""
        return [p for source in self.sources.values() for p in source.problems]

    @property
    def read(self) -> Counter[str]:
        """Records kept per kind, all sources together."""
        total: Counter[str] = Counter()
        for source in self.sources.values():
            total.update(source.read)
        return total

    @property
    def skipped(self) -> Counter[str]:
        """Records skipped per reason, all sources together."""
        total: Counter[str] = Counter()
        for source in self.sources.values():
            total.update(source.skipped)
        return total

    def log_warnings(self) -> None:
        """One warning per source file that had problems (never print: the host app decides what is shown)."""
        for source in self.sources.values():
            if source.problems:
                more = f" (and {len(source.problems) - 1} more)" if len(source.problems) > 1 else ""
                logger.warning("%s: %d problem(s) in %s; first: %s%s", self.root, len(source.problems), source.file,
                               source.problems[0].message, more)

    def to_dict(self) -> dict[str, Any]:
        return {"root": str(self.root), "read": dict(self.read), "skipped": dict(self.skipped),
                "sources": {name: source.to_dict() for name, source in self.sources.items()}}

    def __str__(self) -> str:
        problems = self.problems
        lines = [f"Ingest report for {self.root}: {sum(self.read.values())} records read, "
                 f"{sum(self.skipped.values())} skipped, {len(problems)} problem(s)"]
        for source in self.sources.values():
            lines.append(f"  {source.summary_line()}")
            lines.extend(f"    - {p.message}" for p in source.problems[:MAX_PROBLEMS_SHOWN])
            if len(source.problems) > MAX_PROBLEMS_SHOWN:
                lines.append(f"    ... and {len(source.problems) - MAX_PROBLEMS_SHOWN} more")
        return "\n".join(lines)

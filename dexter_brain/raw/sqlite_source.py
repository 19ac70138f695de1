"""Reader for ``brain.db``: the tables ``facts``, ``triples``, ``patterns`` and ``history``, read-only.

The raw directory belongs to the app, so nothing here may write to it:
- A rollback-journal database is opened with ``mode=ro`` (no journal is ever created) and a short busy timeout,
  so a writer holding an exclusive lock gives a ``locked`` problem after ``SQLITE_TIMEOUT_S`` instead of a hang.
  ``immutable=1`` is not used: it skips locking and would read a half-written database under a live writer.
- A WAL database cannot be read in place without SQLite creating or updating ``-wal``/``-shm`` files beside it,
  even with ``mode=ro``. It is copied (``-wal`` first, then the database, with plain reads) into a temporary
  directory and read there. WAL writers never block readers, so the copy loses no lock information.

Unknown tables and columns are ignored. A table without a required column is skipped as a whole with one
``missing_field`` problem naming table and column. ``history`` rows are grouped into conversations by
``conversation_id``, in order of first appearance, each ordered by ``ts`` (rows without one last) then rowid.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlite_utils

from dexter_brain.raw.fields import RecordFields, SkipRecord, to_id
from dexter_brain.raw.parse import (CONVERSATION_ID, ID, TEXT, RecordLists, parse_fact, parse_message,
                                    parse_pattern, parse_triple)
from dexter_brain.raw.records import Conversation, Message, Provenance
from dexter_brain.raw.report import WHOLE_FILE, SourceReport

logger = logging.getLogger(__name__)

SQLITE_TIMEOUT_S = 1.0
"""How long to wait for another connection's lock before reporting ``locked``."""

SQLITE_HEADER = b"SQLite format 3\x00"
WAL_VERSION = 2
"""File format read/write version bytes (offsets 18 and 19 of the header) of a WAL-mode database."""

REQUIRED_COLUMNS: dict[str, tuple[tuple[str, ...], ...]] = {
    "facts": (ID, TEXT),
    "triples": (("subject",), ("predicate",), ("object",)),
    "patterns": (("id", "pattern_id"), ("goal",), ("steps",)),
    "history": (CONVERSATION_ID, ("role",), ("content", "text")),
}
"""Per table, the columns it must have, each as its accepted aliases."""

_PARSERS: dict[str, Callable[..., Any]] = {"facts": parse_fact, "triples": parse_triple, "patterns": parse_pattern}


_EARLIEST = datetime.min.replace(tzinfo=timezone.utc)


class _DatabaseFailed(Exception):
    """The database as a whole cannot be read further; the problem is already recorded."""


def read_brain_db(path: Path, source: SourceReport) -> RecordLists:
    """Read the known tables of ``brain.db`` into records, recording located problems in ``source``."""
    records = RecordLists()
    try:
        with open(path, "rb") as file:
            header = file.read(100)
    except OSError as error:
        source.add(WHOLE_FILE, "unreadable", f"cannot read the file ({error.strerror or error}); file skipped",
                   is_skipped=True)
        return records
    if not header.startswith(SQLITE_HEADER):
        found = "the file is empty" if not header else "the file does not start with the SQLite header"
        source.add(WHOLE_FILE, "not_sqlite", f"not a SQLite database ({found}); file skipped", is_skipped=True)
        return records
    is_wal = len(header) > 19 and WAL_VERSION in (header[18], header[19])
    try:
        with _open_read_only(path, is_wal=is_wal) as db:
            tables = {name.lower(): name for name in db.table_names()}
            for table in REQUIRED_COLUMNS:
                if table in tables:
                    _read_table(db, tables[table], table, source, records)
    except _DatabaseFailed:
        pass
    except sqlite3.Error as error:  # opening, or the first read of the schema
        _record_sqlite_error(source, WHOLE_FILE, error, is_whole_file=True)
    except OSError as error:  # copying a WAL database into a temporary directory failed
        source.add(WHOLE_FILE, "unreadable", f"cannot copy the WAL database for reading ({error}); file skipped",
                   is_skipped=True)
    return records


@contextmanager
def _open_read_only(path: Path, *, is_wal: bool) -> Iterator[sqlite_utils.Database]:
    if not is_wal:
        with _connect(path.resolve().as_uri() + "?mode=ro") as db:
            yield db
        return
    with tempfile.TemporaryDirectory(prefix="dexter-brain-") as tmp:
        copy = Path(tmp) / path.name
        wal = path.with_name(path.name + "-wal")
        # The -wal goes first: a checkpoint between the two copies then leaves the copied database at least as
        # new as the copied log, and replaying the log over it is harmless.
        if wal.exists():
            shutil.copyfile(wal, copy.with_name(copy.name + "-wal"))
        shutil.copyfile(path, copy)
        with _connect(copy.as_uri() + "?mode=ro") as db:
            yield db


@contextmanager
def _connect(uri: str) -> Iterator[sqlite_utils.Database]:
    conn = sqlite3.connect(uri, uri=True, timeout=SQLITE_TIMEOUT_S)
    try:
        # No plugins or pragmas: this connection only reads.
        yield sqlite_utils.Database(conn, recursive_triggers=False, execute_plugins=False)
    finally:
        conn.close()


def _record_sqlite_error(source: SourceReport, location: str, error: sqlite3.Error, *, is_whole_file: bool) -> str:
    """Record a SQLite error under its reason (``locked``, ``not_sqlite`` or ``sqlite_error``) and return the reason."""
    name = getattr(error, "sqlite_errorname", "")
    text = str(error)
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text:
        reason = "locked"
        detail = (f"the database is locked by another connection (waited {SQLITE_TIMEOUT_S:g} s); close the app "
                  f"that is writing to it, or load a copy of the file")
    elif name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")) or "not a database" in text or "malformed" in text:
        reason, detail = "not_sqlite", f"not a valid SQLite database ({text}): is the file truncated or damaged?"
    else:
        reason, detail = "sqlite_error", f"SQLite error ({text})"
    if is_whole_file:
        outcome = "file skipped"
    else:
        outcome = "rest of the table skipped" if reason == "sqlite_error" else "rest of the file skipped"
    source.add(location, reason, f"{detail}; {outcome}", is_skipped=True)
    return reason


def _rows(db: sqlite_utils.Database, name: str) -> Iterator[tuple[int | None, dict[str, Any]]]:
    """(rowid, row) pairs in rowid order; ``WITHOUT ROWID`` tables give ``None`` rowids in key order."""
    try:
        rows = db.query(f"SELECT rowid AS [__rowid__], * FROM [{name}] ORDER BY rowid")
        first = next(rows, None)
    except sqlite3.OperationalError as error:
        if "rowid" not in str(error):
            raise
        for row in db.query(f"SELECT * FROM [{name}]"):
            yield None, row
        return
    if first is None:
        return
    yield first.pop("__rowid__"), first
    for row in rows:
        yield row.pop("__rowid__"), row


def _read_table(db: sqlite_utils.Database, name: str, table: str, source: SourceReport,
                records: RecordLists) -> None:
    location = f"table {name}"
    try:
        columns = set(db[name].columns_dict)
        for aliases in REQUIRED_COLUMNS[table]:
            if not columns & set(aliases):
                count = db.execute(f"SELECT count(*) FROM [{name}]").fetchone()[0]
                also = f" (also looked for {', '.join(repr(a) for a in aliases[1:])})" if len(aliases) > 1 else ""
                source.add(location, "missing_field", f"table {name} has no column '{aliases[0]}'{also}; "
                           f"table skipped ({count} row{'' if count == 1 else 's'})", field=aliases[0], is_skipped=True)
                return
        if table == "history":
            _read_history(_rows(db, name), name, source, records)
            return
        for number, (rowid, row) in enumerate(_rows(db, name), start=1):
            row_location = f"{location}, " + (f"rowid {rowid}" if rowid is not None else f"row {number}")
            record = _PARSERS[table](row, source, row_location, Provenance(file=source.file, table=name, rowid=rowid))
            if record is not None:
                getattr(records, table).append(record)
                source.read[table] += 1
    except sqlite3.Error as error:
        reason = _record_sqlite_error(source, location, error, is_whole_file=False)
        if reason != "sqlite_error":  # locked or damaged: the other tables will fail the same way
            raise _DatabaseFailed from None


def _read_history(rows: Iterator[tuple[int | None, dict[str, Any]]], name: str, source: SourceReport,
                  records: RecordLists) -> None:
    groups: dict[str, list[tuple[datetime | None, int, Message]]] = {}
    for number, (rowid, row) in enumerate(rows, start=1):
        location = f"table {name}, " + (f"rowid {rowid}" if rowid is not None else f"row {number}")
        try:
            conversation_id = RecordFields(row, source, location).required(CONVERSATION_ID, to_id)
        except SkipRecord:
            continue
        message = parse_message(row, source, location, Provenance(file=source.file, table=name, rowid=rowid))
        if message is not None:
            groups.setdefault(conversation_id, []).append((message.ts, rowid if rowid is not None else number,
                                                           message))
    for conversation_id, group in groups.items():
        group.sort(key=lambda item: (item[0] is None, item[0] or _EARLIEST, item[1]))
        times = [ts for ts, _, _ in group if ts is not None]
        records.conversations.append(Conversation(
            provenance=Provenance(file=source.file, table=name), id=conversation_id,
            started_at=min(times) if times else None, messages=tuple(message for _, _, message in group)))
        source.read["conversations"] += 1
        source.read["messages"] += len(group)

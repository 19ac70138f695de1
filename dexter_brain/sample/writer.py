"""Streaming writers: JSON arrays and JSONL written item by item, SQLite rows inserted in batches.

Nothing here holds more than one batch in memory, so ``--scale 100`` writes as much as it likes in constant
memory. Every JSON item goes through ``dumps`` (one fixed setting), and brain.db is built in a fixed order with
a fixed page size and vacuumed, so the same seed gives the same bytes.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import IO, Any


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(", ", ": "))


class JsonArray:
    """A JSON array written one item per line."""

    def __init__(self, path: Path):
        self.path = path
        self.f: IO[str] = open(path, "w", encoding="utf-8", newline="\n")
        self.count = 0

    def add(self, item: Any) -> None:
        self.f.write(("[\n" if self.count == 0 else ",\n") + dumps(item))
        self.count += 1

    def close(self) -> None:
        self.f.write("[]" if self.count == 0 else "\n]")
        self.f.close()


class Jsonl:
    def __init__(self, path: Path):
        self.f: IO[str] = open(path, "w", encoding="utf-8", newline="\n")
        self.count = 0

    def add(self, item: Any) -> None:
        self.f.write(dumps(item) + "\n")
        self.count += 1

    def close(self) -> None:
        self.f.close()


def write_d2_memory(path: Path, parts: dict[str, Path]) -> None:
    """Join the per-key JSON array files into one ``d2_memory.json`` object, copying them in chunks."""
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        out.write("{")
        for i, (key, part) in enumerate(parts.items()):
            out.write(("" if i == 0 else ",\n") + f'"{key}": ')
            with open(part, encoding="utf-8") as f:
                shutil.copyfileobj(f, out, 1 << 20)
        out.write("}\n")


BRAIN_SCHEMA = """
CREATE TABLE facts (id TEXT PRIMARY KEY, text TEXT NOT NULL, entity TEXT, topic TEXT, created_at TEXT,
                    confidence REAL);
CREATE TABLE triples (id INTEGER PRIMARY KEY, subject TEXT NOT NULL, predicate TEXT NOT NULL, object TEXT NOT NULL,
                      fact_id TEXT, created_at TEXT);
CREATE TABLE patterns (id TEXT PRIMARY KEY, goal TEXT NOT NULL, steps TEXT NOT NULL,
                       success_count INTEGER NOT NULL DEFAULT 0, created_at TEXT);
CREATE TABLE history (id INTEGER PRIMARY KEY, conversation_id TEXT NOT NULL, ts TEXT, role TEXT NOT NULL,
                      content TEXT, memory_refs TEXT, tool TEXT, status TEXT);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
"""
_INSERT = {
    "facts": "INSERT INTO facts (id, text, entity, topic, created_at, confidence) VALUES (?, ?, ?, ?, ?, ?)",
    "triples": "INSERT INTO triples (subject, predicate, object, fact_id, created_at) VALUES (?, ?, ?, ?, ?)",
    "patterns": "INSERT INTO patterns (id, goal, steps, success_count, created_at) VALUES (?, ?, ?, ?, ?)",
    "history": "INSERT INTO history (conversation_id, ts, role, content, memory_refs, tool, status) "
               "VALUES (?, ?, ?, ?, ?, ?, ?)",
    "meta": "INSERT INTO meta (key, value) VALUES (?, ?)",
}


class Brain:
    """brain.db, filled in batches of ``batch_size`` rows per table."""

    def __init__(self, path: Path, batch_size: int = 2000):
        self.db = sqlite3.connect(path)
        # Fixed page size and a rollback journal (no WAL side files): the file bytes depend only on what is inserted.
        self.db.execute("PRAGMA page_size = 4096")
        self.db.execute("PRAGMA journal_mode = DELETE")
        self.db.executescript(BRAIN_SCHEMA)
        self.batch_size = batch_size
        self.pending: dict[str, list[tuple]] = {name: [] for name in _INSERT}
        self.counts: dict[str, int] = {name: 0 for name in _INSERT}

    def add(self, table: str, row: tuple) -> None:
        rows = self.pending[table]
        rows.append(row)
        if len(rows) >= self.batch_size:
            self._flush(table)

    def _flush(self, table: str) -> None:
        rows = self.pending[table]
        if rows:
            self.db.executemany(_INSERT[table], rows)
            self.db.commit()
            self.counts[table] += len(rows)
            rows.clear()

    def close(self) -> None:
        for table in _INSERT:
            self._flush(table)
        self.db.execute("CREATE INDEX history_conversation ON history (conversation_id)")
        self.db.execute("CREATE INDEX triples_subject ON triples (subject)")
        self.db.commit()
        self.db.execute("VACUUM")
        self.db.close()


class Artifacts:
    """``art_*.json`` files: most hold a list of artifacts written in a batch, a few a single artifact."""

    def __init__(self, out_dir: Path, rng):
        self.dir = out_dir
        self.r = rng
        self.batch: list[dict] = []
        self.size = self._next_size()
        self.files: list[str] = []
        self.count = 0
        self.batches = 0

    def _next_size(self) -> int:
        return self.r.randint(12, 40)

    def add(self, art: dict) -> None:
        self.count += 1
        if self.r.random() < 0.02:  # the app keeps large or flagged outputs in a file of their own
            self._write(f"art_{art['id'][4:]}.json", art)
            return
        self.batch.append(art)
        if len(self.batch) >= self.size:
            self.flush()

    def flush(self) -> None:
        if self.batch:
            day = self.batch[0]["ts"][:10].replace("-", "")
            self._write(f"art_{day}_{self.batches:04d}.json", self.batch)
            self.batches += 1
            self.batch = []
            self.size = self._next_size()

    def _write(self, name: str, obj: Any) -> None:
        (self.dir / name).write_text(json.dumps(obj, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        self.files.append(name)

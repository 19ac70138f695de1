"""Per-conversation carry: the latent (y, z) a TRM call ends with, kept for the conversation's next call.

``CarryStore`` holds the carries of many conversations: the most recently used stay in memory, the
least recently used spill to an optional SQLite file, and a retention limit (age and count) keeps the
store bounded. ``save``/``load`` write one safetensors file so a restarted app resumes its conversations.
Thread-safe. Tensors are stored as raw float32 bytes or safetensors; nothing is pickled.

Defaults: 1,024 conversations in memory, no spill file (so the 1,025th conversation drops the least recently
used one), 100,000 conversations in all, 30 days since a conversation's last call. The first drop of each
kind is logged as a warning. ``InferConfig.carry_*`` sets them for a wrapper, ``CarryStore.from_config``
builds the store from it.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from dexter_brain.config import InferConfig
from dexter_brain.io import atomic_write_bytes

logger = logging.getLogger(__name__)


@dataclass
class Carry:
    """One conversation's state: the latent (y, z), each (S, D), plus small facts the wrapper keeps
    (e.g. the tool it selected last)."""

    y: torch.Tensor
    z: torch.Tensor
    extra: dict = field(default_factory=dict)
    updated_at: float = 0.0
    turns: int = 0


class CarryStore:
    """Carries by conversation id, bounded in memory, optionally spilled to SQLite.

    Args:
        max_in_memory: Conversations kept in memory; older ones spill to ``path`` (or are dropped).
        max_conversations: Retention: the most conversations kept at all (oldest dropped first).
        max_age_seconds: Retention: carries untouched for longer are dropped (None keeps them).
        path: Optional SQLite file for spilled carries; created if missing.
        clock: Time source (seconds), replaceable in tests.
    """

    def __init__(self, *, max_in_memory: int = 1024, max_conversations: int = 100_000,
                 max_age_seconds: float | None = 30 * 24 * 3600, path: str | Path | None = None, clock=time.time):
        if max_in_memory < 1 or max_conversations < 1:
            raise ValueError("max_in_memory and max_conversations must be at least 1")
        self.max_in_memory, self.max_conversations = max_in_memory, max_conversations
        self.max_age_seconds, self.clock = max_age_seconds, clock
        self.path = None if path is None else Path(path)
        self._warned: set[str] = set()  # the kinds of drop already logged
        self._memory: OrderedDict[str, Carry] = OrderedDict()
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        if path is not None:
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self._db.execute("CREATE TABLE IF NOT EXISTS carries (conversation_id TEXT PRIMARY KEY, shape TEXT, "
                             "y BLOB, z BLOB, extra TEXT, updated_at REAL, turns INTEGER)")

    @classmethod
    def from_config(cls, config: InferConfig) -> "CarryStore":
        """The store ``config``'s ``carry_*`` fields describe."""
        return cls(max_in_memory=config.carry_max_in_memory, max_conversations=config.carry_max_conversations,
                   max_age_seconds=config.carry_max_age_seconds, path=config.carry_path)

    def __len__(self) -> int:
        with self._lock:
            return len(self._memory) + (self._db.execute("SELECT COUNT(*) FROM carries").fetchone()[0]
                                        if self._db else 0)

    def __contains__(self, conversation_id: str) -> bool:
        return self.get(conversation_id) is not None

    def conversations(self) -> list[str]:
        with self._lock:
            ids = list(self._memory)
            if self._db:
                ids += [r[0] for r in self._db.execute("SELECT conversation_id FROM carries ORDER BY updated_at")]
            return ids

    def get(self, conversation_id: str) -> Carry | None:
        with self._lock:
            carry = self._memory.get(conversation_id)
            if carry is None and self._db is not None:
                carry = self._load_row(conversation_id)
                if carry is not None:
                    self._db.execute("DELETE FROM carries WHERE conversation_id = ?", (conversation_id,))
                    self._memory[conversation_id] = carry
            if carry is None:
                return None
            if self._expired(carry):
                self.reset(conversation_id)
                self._warn_once("age", conversation_id)
                return None
            self._memory.move_to_end(conversation_id)
            self._spill()
            return carry

    def put(self, conversation_id: str, y: torch.Tensor, z: torch.Tensor, **extra) -> Carry:
        with self._lock:
            old = self._memory.get(conversation_id) or (self._load_row(conversation_id) if self._db else None)
            merged = {**(old.extra if old else {}), **extra}
            carry = Carry(y=y.detach().float().cpu().clone(), z=z.detach().float().cpu().clone(), extra=merged,
                          updated_at=self.clock(), turns=(old.turns if old else 0) + 1)
            self._memory[conversation_id] = carry
            self._memory.move_to_end(conversation_id)
            if self._db is not None:
                self._db.execute("DELETE FROM carries WHERE conversation_id = ?", (conversation_id,))
            self._spill()
            self._retain()
            return carry

    def reset(self, conversation_id: str | None = None) -> None:
        """Forget one conversation's carry, or all of them."""
        with self._lock:
            if conversation_id is None:
                self._memory.clear()
                if self._db is not None:
                    self._db.execute("DELETE FROM carries")
                return
            self._memory.pop(conversation_id, None)
            if self._db is not None:
                self._db.execute("DELETE FROM carries WHERE conversation_id = ?", (conversation_id,))

    # --- persistence ------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write every carry (memory and spilled) to one safetensors file, atomically."""
        with self._lock:
            ids = self.conversations()
            tensors, index = {}, []
            for i, cid in enumerate(ids):
                carry = self._memory.get(cid) or self._load_row(cid)
                tensors[f"y.{i}"], tensors[f"z.{i}"] = carry.y.contiguous(), carry.z.contiguous()
                index.append({"id": cid, "extra": carry.extra, "updated_at": carry.updated_at, "turns": carry.turns})
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        save_file(tensors or {"empty": torch.zeros(0)}, str(tmp), metadata={"carries": json.dumps(index)})
        atomic_write_bytes(path, tmp.read_bytes())
        tmp.unlink()
        return path

    def load(self, path: str | Path) -> int:
        """Add the carries saved in ``path``; returns how many were loaded."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"carry file not found: {path}")
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        if "carries" not in meta:
            raise ValueError(f"{path} is not a carry file (no 'carries' index)")
        tensors = load_file(str(path))
        index = json.loads(meta["carries"])
        with self._lock:
            for i, row in enumerate(index):
                self._memory[row["id"]] = Carry(y=tensors[f"y.{i}"], z=tensors[f"z.{i}"], extra=row["extra"],
                                                updated_at=row["updated_at"], turns=row["turns"])
                self._memory.move_to_end(row["id"])
            self._spill()
            self._retain()
        return len(index)

    # --- internals --------------------------------------------------------------------------------------
    def _expired(self, carry: Carry) -> bool:
        return self.max_age_seconds is not None and self.clock() - carry.updated_at > self.max_age_seconds

    def _warn_once(self, kind: str, conversation_id: str) -> None:
        """Log the first drop of each kind; a busy store would otherwise log on every call."""
        if kind in self._warned:
            return
        self._warned.add(kind)
        why = {"memory": f"more than {self.max_in_memory:,} conversations are held in memory and there is no spill "
                         f"file (InferConfig.carry_max_in_memory, carry_path)",
               "count": f"more than {self.max_conversations:,} conversations are held "
                        f"(InferConfig.carry_max_conversations)",
               "age": f"it was not used for more than {self.max_age_seconds:,.0f} s "
                      f"(InferConfig.carry_max_age_seconds)"}[kind]
        logger.warning("carry of conversation %r dropped: %s; its next call starts afresh. Later drops of this "
                       "kind are not logged.", conversation_id, why)

    def _spill(self) -> None:
        while len(self._memory) > self.max_in_memory:
            cid, carry = self._memory.popitem(last=False)
            if self._db is None:
                self._warn_once("memory", cid)
            else:
                y = carry.y.numpy().astype(np.float32)
                self._db.execute(
                    "INSERT OR REPLACE INTO carries VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (cid, json.dumps(list(y.shape)), y.tobytes(), carry.z.numpy().astype(np.float32).tobytes(),
                     json.dumps(carry.extra), carry.updated_at, carry.turns))

    def _load_row(self, cid: str) -> Carry | None:
        if self._db is None:
            return None
        row = self._db.execute("SELECT shape, y, z, extra, updated_at, turns FROM carries WHERE conversation_id = ?",
                               (cid,)).fetchone()
        if row is None:
            return None
        shape = tuple(json.loads(row[0]))
        y = torch.from_numpy(np.frombuffer(row[1], dtype=np.float32).reshape(shape).copy())
        z = torch.from_numpy(np.frombuffer(row[2], dtype=np.float32).reshape(shape).copy())
        return Carry(y=y, z=z, extra=json.loads(row[3]), updated_at=row[4], turns=row[5])

    def _retain(self) -> None:
        now = self.clock()
        if self.max_age_seconds is not None:
            for cid in [c for c, v in self._memory.items() if now - v.updated_at > self.max_age_seconds]:
                del self._memory[cid]
                self._warn_once("age", cid)
            if self._db is not None:
                old = self._db.execute("SELECT conversation_id FROM carries WHERE updated_at < ? LIMIT 1",
                                       (now - self.max_age_seconds,)).fetchone()
                if old is not None:
                    self._db.execute("DELETE FROM carries WHERE updated_at < ?", (now - self.max_age_seconds,))
                    self._warn_once("age", old[0])
        excess = len(self) - self.max_conversations
        if excess > 0 and self._db is not None:
            oldest = self._db.execute("SELECT conversation_id FROM carries ORDER BY updated_at LIMIT 1").fetchone()
            self._db.execute("DELETE FROM carries WHERE conversation_id IN (SELECT conversation_id FROM carries "
                             "ORDER BY updated_at LIMIT ?)", (excess,))
            if oldest is not None:
                self._warn_once("count", oldest[0])
            excess = len(self) - self.max_conversations
        while excess > 0 and self._memory:
            cid, _ = self._memory.popitem(last=False)
            self._warn_once("count", cid)
            excess -= 1

"""Atomic file writes (temp file + rename) and small JSON/JSONL helpers used by every writer."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import struct
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

try:
    import fcntl
except ImportError:  # Windows: appends from one process are still serialised by the caller's lock
    fcntl = None

logger = logging.getLogger(__name__)


# The process umask, read once at import: reading it means setting it, which would race with other threads
# creating files. Files and directories made through mkstemp/mkdtemp get the mode the umask would give them.
_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(path: str | Path, data: bytes) -> str:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half of it.
    Returns the file's sha256 (hex)."""
    return atomic_write_chunks(path, (data,))


def atomic_write_chunks(path: str | Path, chunks: Iterable[bytes | memoryview]) -> str:
    """``atomic_write_bytes`` for data that comes in pieces, so the whole file is never held in memory.
    Returns the file's sha256 (hex), computed on the way rather than by reading the file back."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                digest.update(chunk)
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes the file owner-only; give it the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return digest.hexdigest()


def append_line(path: Path, line: bytes) -> None:
    """Append one whole line and fsync it; a torn last line left by a crash is ended first, so it stays one
    skipped line instead of swallowing this record."""
    is_new = not path.exists()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)  # read: the last byte
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)  # other processes; released by close
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            logger.warning("%s ended in a torn line (a crash while writing); it stays as one skipped line", path)
            line = b"\n" + line
        view = memoryview(line)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    if is_new:
        fsync_directory(path.parent)


def fsync_directory(directory: str | Path) -> None:
    """Make new or renamed entries of ``directory`` durable (a no-op where directories cannot be opened, as on
    Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def make_temp_dir(parent: str | Path, prefix: str) -> Path:
    """``tempfile.mkdtemp`` in ``parent``, with the mode a plain ``mkdir`` would give (mkdtemp makes it
    owner-only, and a directory later renamed into place, such as a checkpoint, would keep that mode and
    lock out other users of the models)."""
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=prefix))
    os.chmod(tmp, 0o777 & ~_UMASK)
    return tmp


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def dump_json(obj: Any) -> str:
    """Canonical JSON (sorted keys, UTF-8) so that the same content gives the same bytes."""
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, dump_json(obj))


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> str:
    """One JSON object a line (sorted keys), written as the rows come; returns the file's sha256 (hex)."""

    def chunks():
        lines = []
        for r in rows:
            lines.append(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n")
            if len(lines) == 1024:
                yield "".join(lines).encode("utf-8")
                lines = []
        yield "".join(lines).encode("utf-8")

    return atomic_write_chunks(path, chunks())


def write_safetensors(path: str | Path, arrays: Mapping[str, np.ndarray],
                      written: Callable[[np.ndarray], None] | None = None) -> str:
    """``safetensors.numpy.save`` written atomically, streaming each array from its own memory: a split of a
    few hundred MiB is never copied into one ``bytes``. The bytes are those ``save`` gives (the header is
    laid out the way the installed safetensors lays it out, checked on every call); anything unusual goes
    through ``save`` itself. ``written`` is called with each piece of an array once it is on disk (for
    memory the caller can give back). Returns the file's sha256 (hex)."""
    from safetensors.numpy import save

    header = _safetensors_header(arrays)
    if header is None:
        return atomic_write_bytes(path, save(dict(arrays)))

    def chunks():
        yield header
        for name in json.loads(header[8:]):
            array = np.ascontiguousarray(arrays[name])
            rows = max(1, _WRITE_PIECE // max(array[:1].nbytes, 1)) if array.ndim else 1
            for start in range(0, len(array) if array.ndim else 1, rows):
                piece = array[start:start + rows] if array.ndim else array
                if piece.size:
                    yield memoryview(piece).cast("B")
                    if written is not None:
                        written(piece)

    return atomic_write_chunks(path, chunks())


_WRITE_PIECE = 32 << 20  # bytes of an array written at a time


def _safetensors_header(arrays: Mapping[str, np.ndarray]) -> bytes | None:
    """The 8-byte length and JSON header ``save`` would write for ``arrays``, or None when unsure."""
    from safetensors.numpy import save

    if sys.byteorder != "little" or any(a.dtype.byteorder == ">" for a in arrays.values()):
        return None
    # The library decides the order of the tensors and the dtype names: ask it with one-element stand-ins.
    reference = save({name: np.zeros((1,), dtype=a.dtype) for name, a in arrays.items()})
    length = struct.unpack("<Q", reference[:8])[0]
    layout = json.loads(reference[8:8 + length])
    if "__metadata__" in layout:
        return None

    def encode(shapes: dict[str, list[int]], sizes: dict[str, int]) -> bytes:
        offset, entries = 0, {}
        for name in layout:
            entries[name] = {"dtype": layout[name]["dtype"], "shape": shapes[name],
                             "data_offsets": [offset, offset + sizes[name]]}
            offset += sizes[name]
        text = json.dumps(entries, separators=(",", ":")).encode()
        text += b" " * (-len(text) % 8)
        return struct.pack("<Q", len(text)) + text

    # The format check: the stand-ins' header (offsets in data order included) must come out as written.
    if encode({n: [1] for n in layout}, {n: arrays[n].dtype.itemsize for n in layout}) != reference[:8 + length]:
        return None
    return encode({n: list(arrays[n].shape) for n in layout}, {n: arrays[n].nbytes for n in layout})


def read_jsonl(path: str | Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def read_rows(data_dir: str | Path, kind: str, split: str) -> list[dict]:
    """The rows of a corpus split, ``<data_dir>/<kind>/<split>.jsonl``, in episode and turn order ([] when
    absent)."""
    path = Path(data_dir) / kind / f"{split}.jsonl"
    return episode_order(read_jsonl(path)) if path.exists() else []


def episode_order(rows: Sequence[dict]) -> list[dict]:
    """Rows grouped by episode (first appearance order), by turn inside each episode."""
    first: dict[str, int] = {}
    for r in rows:
        first.setdefault(r["episode"], len(first))
    return sorted(rows, key=lambda r: (first[r["episode"]], r["turn"]))


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def stable_fraction(*key: object) -> float:
    """A number in [0, 1) fixed by ``key`` (sha256): the same on every machine and Python version."""
    digest = hashlib.sha256(":".join(map(str, key)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def replace_dir(tmp_dir: Path, final_dir: Path) -> None:
    """Move a fully written ``tmp_dir`` into place as ``final_dir`` (old contents removed)."""
    final_dir = Path(final_dir)
    if final_dir.exists():
        old = final_dir.with_name(f".{final_dir.name}.old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(final_dir, old)
        os.replace(tmp_dir, final_dir)
        shutil.rmtree(old)
    else:
        os.replace(tmp_dir, final_dir)

"""Fill the rows of the tensor splits in forked worker processes while the parent writes the other files.

The splits (``dexter_brain.features.tensorize.*Split``) are allocated in shared memory before the workers
are forked, so a worker writes its rows straight into the arrays the parent saves, and inherits the
featurizers and examples without copying or pickling them. Rows go out in fixed-size chunks, in order, and
the parent takes each chunk's small result back in the same order, so the output does not depend on which
worker ran what: the files are byte-identical to a run in one process.
"""

from __future__ import annotations

import gc
import logging
import mmap
import multiprocessing
import os
from collections.abc import Sequence

import numpy as np

logger = logging.getLogger(__name__)

CHUNK_ROWS = 512
MIN_PARALLEL_ROWS = 4096
"""Below this many rows in all, forking costs more than it saves: fill in this process."""

_SPLITS: Sequence | None = None  # what the forked workers fill (set just before forking)


def default_workers() -> int:
    """One worker per CPU this process may run on, at most 2 (the target machine has 2 cores)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(2, cpus))


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


class SharedArrays:
    """An allocator (``alloc(shape, dtype, fill_value)``) of arrays in anonymous shared memory: memory a forked
    child writes is what the parent reads. ``release`` gives the pages back to the system at once, in every
    process that maps them."""

    def __init__(self):
        self._maps: list[mmap.mmap] = []
        self._bases: list[int] = []  # address of each map in this process

    def __call__(self, shape: tuple[int, ...], dtype, fill_value: float = 0) -> np.ndarray:
        count = int(np.prod(shape))
        buffer = mmap.mmap(-1, max(count * np.dtype(dtype).itemsize, 1))  # MAP_SHARED | MAP_ANONYMOUS
        array = np.frombuffer(buffer, dtype=dtype, count=count).reshape(shape)
        self._maps.append(buffer)
        self._bases.append(np.frombuffer(buffer, dtype=np.uint8).__array_interface__["data"][0])
        if fill_value != 0:  # fresh pages read as zeros
            array.fill(fill_value)
        return array

    def forget(self, piece: np.ndarray) -> None:
        """This process is done reading ``piece`` (part of an array from here): drop its pages from this
        process (the data stays in the shared memory), so writing a large array out never holds it all."""
        if not hasattr(mmap, "MADV_DONTNEED"):
            return
        start = piece.__array_interface__["data"][0]
        end = start + piece.nbytes
        for buffer, base in zip(self._maps, self._bases):
            if base <= start and end <= base + len(buffer):
                first = -(-(start - base) // mmap.PAGESIZE) * mmap.PAGESIZE  # whole pages inside the piece
                last = (end - base) // mmap.PAGESIZE * mmap.PAGESIZE
                if last > first:
                    buffer.madvise(mmap.MADV_DONTNEED, first, last - first)
                return

    def release(self) -> None:
        for buffer in self._maps:
            if hasattr(mmap, "MADV_REMOVE"):
                buffer.madvise(mmap.MADV_REMOVE)
        self._maps, self._bases = [], []


def _fill(task: tuple[int, int, int]):
    index, start, stop = task
    return _SPLITS[index].fill(start, stop)


class RowFiller:
    """Fills every row of ``splits`` in chunks; ``wait(i)`` returns once split ``i`` is complete.

    With ``workers`` > 1 (and fork available, and enough rows) the chunks run in a pool of forked processes
    from the moment the filler is entered, so the parent is free until it waits. Otherwise ``wait`` fills
    the split's rows in this process.

    Example:
        >>> with RowFiller(splits, workers=2) as filler:
        ...     write_other_files()
        ...     for i, split in enumerate(splits):
        ...         filler.wait(i)
        ...         save(split.arrays(encoder))
    """

    def __init__(self, splits: Sequence, workers: int = 1, chunk_rows: int = CHUNK_ROWS):
        self.splits = splits
        self.tasks = [(i, start, min(start + chunk_rows, len(split)))
                      for i, split in enumerate(splits) for start in range(0, len(split), chunk_rows)]
        rows = sum(len(s) for s in splits)
        self.is_parallel = workers > 1 and can_fork() and rows >= MIN_PARALLEL_ROWS
        self.workers = workers if self.is_parallel else 1
        self._pool = None
        self._results = None
        self._next = 0  # index of the next task whose result is taken back
        self._filled = [len(s) == 0 for s in splits]

    def __enter__(self) -> RowFiller:
        if self.is_parallel:
            global _SPLITS
            _SPLITS = self.splits
            # Objects that exist now are never collected in the workers: keep the collector from touching
            # (and so copying) every page they inherited.
            gc.freeze()
            try:
                self._pool = multiprocessing.get_context("fork").Pool(self.workers)
            finally:
                _SPLITS = None
            self._results = self._pool.imap(_fill, self.tasks)
            logger.debug("filling %d chunks in %d worker processes", len(self.tasks), self.workers)
        return self

    def wait(self, index: int) -> None:
        """Block until every row of split ``index`` is filled (and absorbed, in row order)."""
        if self._filled[index]:
            return
        if not self.is_parallel:
            split = self.splits[index]
            for _, start, stop in (t for t in self.tasks if t[0] == index):
                split.absorb(start, stop, split.fill(start, stop))
            self._filled[index] = True
            return
        while not self._filled[index]:
            i, start, stop = self.tasks[self._next]
            result = next(self._results)
            self.splits[i].absorb(start, stop, result)
            self._next += 1
            if stop == len(self.splits[i]):
                self._filled[i] = True

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            if exc[0] is None:
                self._pool.close()
            else:
                self._pool.terminate()
            self._pool.join()
            self._pool = None
            gc.unfreeze()

"""What a TRM costs: parameters, bytes on disk, and latency per public call; plus the machine it ran on."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

WARMUP_CALLS = 3


def checkpoint_size(wrapper) -> dict:
    """``parameters`` of the model and ``bytes`` of its checkpoint directory (every file in it)."""
    directory = Path(wrapper.core.directory)
    size = sum(f.stat().st_size for f in directory.rglob("*") if f.is_file())
    return {"parameters": int(sum(p.numel() for p in wrapper.core.model.parameters())), "bytes": int(size)}


def time_calls(call: Callable[[object], object], inputs: Sequence, samples: int) -> list[float]:
    """Milliseconds of ``samples`` calls of ``call`` on ``inputs`` taken in turn (after a short warm-up)."""
    if not inputs or samples <= 0:
        return []
    for i in range(min(WARMUP_CALLS, samples)):
        call(inputs[i % len(inputs)])
    out = []
    for i in range(samples):
        start = time.perf_counter()
        call(inputs[i % len(inputs)])
        out.append((time.perf_counter() - start) * 1000)
    return out


def percentile(values: Sequence[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if len(values) else None


def machine() -> dict:
    """Platform, CPU count, Python and torch versions, and torch's thread count."""
    import torch

    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads()}


@contextmanager
def torch_threads(num_threads: int | None) -> Iterator[None]:
    """Run the block with ``num_threads`` torch intra-op threads (None: leave the setting), then restore.

    The wrappers' calls are small (a few hundred rows of width 256 at most): extra threads gain nothing,
    and on a busy 2-core machine they spin. A stateful memory replay of the sample's test split took
    34 s of CPU with 2 threads and 2.5 s with 1.
    """
    import torch

    before = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)

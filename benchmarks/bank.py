"""Memory bank scaling: add, open, search and file size of a ``MemoryBank`` of 1k, 10k and 100k facts.

The facts are the embedded sample's bank (``generate_sample(seed=0, scale=1)`` into a temporary directory, or the
raw directory given with ``--raw``), mined with ``corpora.memory.build_bank`` and repeated with other numbers,
months, names and shops under ids ``bench-<n>`` up to each size; the vectors are random (``--dim``, float32).
Queries are the raw directory's user turns that reference facts (``memory_refs``), as ``content_words``.
For each size:

- build: ``MemoryBank.create`` with every fact and vector (one transaction);
- open: ``MemoryBank.open`` + ``len`` + ``vectors()`` on a new ``MemoryBank`` (new connections, every vector read
  from the file; the file itself is in the OS page cache), p50 of ``--opens``;
- add: one ``add`` of a new fact with its vector, durable on return (one WAL fsync), p50 and p95 of ``--adds``;
- search: ``search(words, k=100)`` p50, and with ``k=None`` (every matching fact: what a featurizer that needs
  every fact's score reads), over ``--searches`` queries;
- agreement: how many of FTS5 ``bm25()``'s top 24 are also in ``LexicalIndex``'s (bm25s, today's featurizer)
  top 24 for the same words, on average (``--no-agreement`` skips it);
- size: the bank file after ``close``.

The ratios 10k/1k and 100k/10k of open and add follow: growth in proportion to the bank would show 10.

Run from the repository root (CPU; about two minutes on 2 cores, most of it building the 100k bank):

    python -m benchmarks.bank
    python -m benchmarks.bank --sizes 1000 10000 --adds 100 --quiet
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from dexter_brain.bank import MemoryBank, index_terms  # noqa: E402
from dexter_brain.corpora.memory import build_bank, build_entity_index  # noqa: E402
from dexter_brain.features.memory import BM25_CANDIDATES  # noqa: E402
from dexter_brain.lexical import LexicalIndex, content_words  # noqa: E402
from dexter_brain.raw import RawStore  # noqa: E402
from dexter_brain.sample import generate_sample  # noqa: E402
from dexter_brain.sample.values import vary  # noqa: E402

CANDIDATES = BM25_CANDIDATES
"""How many BM25 candidates the memory inputs take."""


def load_raw(raw: Path) -> tuple[list[dict], list[list[str]]]:
    """The bank facts of a raw directory and its retrieval questions (as content words)."""
    store = RawStore.load(raw, show_progress_bar=False)
    facts = [row.model_dump(mode="json") for row in build_bank(store, build_entity_index(store))]
    queries = [content_words(m.content) for c in store.conversations for m in c.messages
               if m.role == "user" and m.memory_refs]
    return facts, [q for q in queries if q] or [content_words(f["text"])[:4] for f in facts[:50]]


def grow(base: list[dict], size: int, rng: random.Random) -> list[dict]:
    """``size`` facts: the base facts, then varied copies with ids ``bench-<n>``."""
    facts = [dict(f) for f in base[:size]]
    i = 0
    while len(facts) < size:
        f = base[i % len(base)]
        facts.append({**f, "id": f"bench-{i}", "text": vary(f["text"], rng), "neighbours": []})
        i += 1
    return facts


def ms(seconds: list[float], q: float = 50) -> float:
    return float(np.percentile(np.array(seconds) * 1000, q))


def measure(path: Path, facts: list[dict], queries: list[list[str]], args: argparse.Namespace,
            rng: random.Random) -> dict:
    """Build, open, add and search one bank; the figures in milliseconds, seconds and bytes."""
    np_rng = np.random.default_rng(args.seed)
    vectors = np_rng.standard_normal((len(facts), args.dim)).astype(np.float32)
    t0 = time.perf_counter()
    MemoryBank.create(path, facts, vectors).close()
    build_s = time.perf_counter() - t0
    opens, loads = [], []
    for _ in range(args.opens):
        t0 = time.perf_counter()
        bank = MemoryBank.open(path)
        count = len(bank)
        t1 = time.perf_counter()
        loaded = bank.vectors()
        loads.append(time.perf_counter() - t1)
        opens.append(time.perf_counter() - t0)
        bank.close()
    assert count == len(facts) and loaded.shape == (len(facts), args.dim)
    with MemoryBank.open(path) as bank:
        adds = []
        for i in range(args.adds):
            fact = {**facts[i % len(facts)], "id": f"added-{i}", "neighbours": []}
            fact["text"] = vary(fact["text"], rng)
            vector = np_rng.standard_normal(args.dim).astype(np.float32)
            t0 = time.perf_counter()
            bank.add(fact, vector)
            adds.append(time.perf_counter() - t0)
        top, every, hits = [], [], []
        for i in range(args.searches):
            words = queries[i % len(queries)]
            t0 = time.perf_counter()
            bank.search(words, k=100)
            top.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            positions, _ = bank.search(words)
            every.append(time.perf_counter() - t0)
            hits.append(len(positions))
        agreement = overlap(bank, queries[: args.searches]) if args.agreement else None
    return {"build_s": build_s, "open_ms": ms(opens), "vectors_ms": ms(loads), "add_ms": ms(adds), "add_p95_ms": ms(adds, 95),
            "search_ms": ms(top), "search_all_ms": ms(every), "hits": float(np.mean(hits)),
            "agreement": agreement, "bytes": path.stat().st_size}


def overlap(bank: MemoryBank, queries: list[list[str]]) -> float:
    """Mean share of FTS5's top ``CANDIDATES`` also in ``LexicalIndex``'s top ``CANDIDATES``, same words."""
    rows = list(bank.rows())
    index = LexicalIndex([index_terms(r.fact) if not r.is_removed else [] for r in rows])
    shares = []
    for words in queries:
        ours, _ = bank.search(words, k=CANDIDATES)
        theirs, _ = index.top_k(words, CANDIDATES)
        if len(theirs):
            shares.append(len(set(ours.tolist()) & set(theirs.tolist())) / len(theirs))
    return float(np.mean(shares)) if shares else float("nan")


def machine() -> str:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return (f"machine: {os.cpu_count()} CPUs ({usable} usable), {platform.machine()}, load average {load}; "
            f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Print add, open and search times and the file size of memory banks of several sizes, and "
                    "how open and add grow with the bank.",
        epilog="example: python -m benchmarks.bank --sizes 1000 10000 100000 --adds 200")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000],
                        help="bank sizes in facts (default: 1000 10000 100000)")
    parser.add_argument("--raw", type=Path, default=None,
                        help="raw directory whose facts and questions to use (default: the embedded sample, "
                             "generated into a temporary directory)")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="where the bank files are written (default: a temporary directory, removed after)")
    parser.add_argument("--dim", type=int, default=256, help="vector length (default: 256, the memory model's)")
    parser.add_argument("--adds", type=int, default=200, help="timed single adds per size (default: 200)")
    parser.add_argument("--opens", type=int, default=5, help="timed opens per size (default: 5)")
    parser.add_argument("--searches", type=int, default=200, help="timed searches per size (default: 200)")
    parser.add_argument("--no-agreement", dest="agreement", action="store_false",
                        help="skip the comparison of FTS5's candidates with LexicalIndex's")
    parser.add_argument("--seed", type=int, default=0, help="seed of the varied facts and the vectors")
    parser.add_argument("--quiet", action="store_true", help="print the figures only")
    args = parser.parse_args(argv)
    if min(args.sizes) < 1 or min(args.adds, args.opens, args.searches) < 1:
        print("error: --sizes, --adds, --opens and --searches must be at least 1", file=sys.stderr)
        return 1
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="bank-bench-") as tmp:
        raw = args.raw
        if raw is None:
            say("generating the embedded sample (scale 1) ...")
            raw = Path(tmp) / "sample"
            generate_sample(raw, seed=0, scale=1.0, show_progress_bar=False)
        base, queries = load_raw(raw)
        work = args.work_dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        print(machine())
        print(f"facts: {len(base):,} from {raw if args.raw else 'the embedded sample'}, varied up to each size; "
              f"{len(queries)} questions; vectors {args.dim} x float32")
        results = {}
        for size in sorted(set(args.sizes)):
            say(f"bank of {size:,} facts ...")
            path = work / f"bank-{size}.sqlite"
            for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
                stale.unlink(missing_ok=True)
            r = results[size] = measure(path, grow(base, size, rng), queries, args, rng)
            agreement = "" if r["agreement"] is None else f"   top-{CANDIDATES} agreement {r['agreement']:.3f}"
            print(f"  {size:>9,} facts: build {r['build_s']:6.2f} s   open {r['open_ms']:7.1f} ms (of which "
                  f"vectors {r['vectors_ms']:.1f})   "
                  f"add p50 {r['add_ms']:6.2f} ms (p95 {r['add_p95_ms']:6.2f})   search k=100 p50 "
                  f"{r['search_ms']:6.2f} ms   all matches p50 {r['search_all_ms']:6.2f} ms ({r['hits']:,.0f} "
                  f"hits){agreement}   file {r['bytes'] / 2**20:7.1f} MiB")
        sizes = sorted(results)
        for small, large in zip(sizes, sizes[1:]):
            a, b = results[small], results[large]
            print(f"  ratio {large:,}/{small:,} ({large / small:g}x the facts): open {b['open_ms'] / a['open_ms']:.2f}x "
                  f"(without the vectors {(b['open_ms'] - b['vectors_ms']) / (a['open_ms'] - a['vectors_ms']):.2f}x, "
                  f"vectors {b['vectors_ms'] / a['vectors_ms']:.2f}x)"
                  f"   add {b['add_ms'] / a['add_ms']:.2f}x   search {b['search_ms'] / a['search_ms']:.2f}x   "
                  f"file {b['bytes'] / a['bytes']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

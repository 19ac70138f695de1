"""Ingest throughput: records per second of ``RawStore.load`` on the generated sample and the developer data.

For each scale, the embedded sample is generated into a temporary directory with
``python -m dexter_brain.sample OUT --seed N --scale S`` and loaded with ``RawStore.load`` (best of ``--repeats``,
no progress bar). Records are all record counts of the ingest report added up, messages included. The developer
directories in ``../shared/devdata`` (next to the repository) are measured too when present.

Run from the repository root (CPU, well under a minute):

    python -m benchmarks.ingest --scales 1 20
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dexter_brain.raw import RawStore, RawStoreError  # noqa: E402
from dexter_brain.raw.report import KINDS  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
DEVDATA = REPO_ROOT.parent / "shared" / "devdata"


def measure(root: Path, repeats: int) -> tuple[RawStore, float]:
    """Load ``root`` ``repeats`` times; return the last store and the best wall time in seconds."""
    best = float("inf")
    store = None
    for _ in range(repeats):
        start = time.perf_counter()
        store = RawStore.load(root, show_progress_bar=False)
        best = min(best, time.perf_counter() - start)
    return store, best


def describe(label: str, store: RawStore, seconds: float, repeats: int, *, is_quiet: bool) -> str:
    read = store.report.read
    records = sum(read.values())
    lines = [f"{label}: {records:,} records in {seconds * 1000:.1f} ms = {records / seconds:,.0f} records/s "
             f"(best of {repeats})"]
    if not is_quiet:
        lines.append("  read: " + ", ".join(f"{kind} {read[kind]:,}" for kind in KINDS if read[kind]))
        skipped = store.report.skipped
        problems = store.report.problems
        lines.append(f"  skipped: {sum(skipped.values()):,}" + (
            " (" + ", ".join(f"{reason} {count}" for reason, count in sorted(skipped.items())) + ")"
            if skipped else "") + f"; problems: {len(problems):,}")
    return "\n".join(lines)


def generate_sample(out: Path, *, seed: int, scale: int, is_quiet: bool) -> str | None:
    """Run the sample generator; return None on success, else a one-line reason."""
    command = [sys.executable, "-m", "dexter_brain.sample", str(out), "--seed", str(seed), "--scale", str(scale)]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return f"`{' '.join(command[1:])}` failed with exit code {result.returncode}: {last}"
    if not is_quiet and result.stdout.strip():
        print("  generator: " + result.stdout.strip().splitlines()[-1])
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Measure RawStore.load throughput (records/s) on the generated sample and the devdata.",
        epilog="Example: python -m benchmarks.ingest --scales 1 20 --seed 0",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 20],
                        help="sample scales to generate and load")
    parser.add_argument("--seed", type=int, default=0, help="seed passed to the sample generator")
    parser.add_argument("--repeats", type=int, default=3, help="loads per directory; the best time is reported")
    parser.add_argument("--devdata", type=Path, default=DEVDATA,
                        help="directory holding the developer raw directories (skipped when absent)")
    parser.add_argument("--quiet", action="store_true",
                        help="one line per directory: no report counts, no generator output")
    args = parser.parse_args(argv)

    measured = 0
    for scale in args.scales:
        with tempfile.TemporaryDirectory(prefix="dexter-ingest-") as tmp:
            out = Path(tmp) / "raw"
            failure = generate_sample(out, seed=args.seed, scale=scale, is_quiet=args.quiet)
            if failure is not None:
                print(f"sample scale {scale}: skipped, {failure}")
                continue
            try:
                store, seconds = measure(out, args.repeats)
            except RawStoreError as error:
                print(f"sample scale {scale}: {error}")
                continue
            print(describe(f"sample scale {scale} (seed {args.seed})", store, seconds, args.repeats,
                           is_quiet=args.quiet))
            measured += 1

    if args.devdata.is_dir():
        for root in sorted(path for path in args.devdata.iterdir() if path.is_dir()):
            try:
                store, seconds = measure(root, args.repeats)
            except RawStoreError as error:
                print(f"devdata {root.name}: {error}")
                continue
            print(describe(f"devdata {root.name}", store, seconds, args.repeats, is_quiet=args.quiet))
            measured += 1
    elif not args.quiet:
        print(f"devdata: {args.devdata} not present, skipped")
    return 0 if measured else 1


if __name__ == "__main__":
    sys.exit(main())

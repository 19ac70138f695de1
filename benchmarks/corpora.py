"""Corpus generation time and peak memory: ``generate_corpora`` on the generated sample and the developer data.

For each scale the embedded sample is generated into a temporary directory with
``dexter_brain.sample.generate_sample(out, seed=..., scale=...)``. Then ``generate_corpora`` runs in a fresh
subprocess pinned to ``--cores`` CPU cores (2 by default, the target machine; numpy/BLAS threads limited to
match), so the peak RSS it reports (``resource.getrusage(RUSAGE_SELF).ru_maxrss``, imports included) is that
run's alone. Printed per run: wall and CPU time (CPU time is the steadier figure on a shared machine), peak
RSS, examples per corpus and split, the follow-up and correction fractions, and the empty corpora with their
reason. The developer directories in ``../shared/devdata`` (next to the repository) are measured the same way
when present. Target: scale 20 in under 2 minutes on 2 cores.

Run from the repository root (CPU; scale 1 and the devdata take about a minute; scale 20 took about 22 minutes
and 6 GiB when this was written, far over the target):

    python -m benchmarks.corpora --scales 1 20
    python -m benchmarks.corpora --scales 1 --quiet    # the measurements only
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO_ROOT = Path(__file__).resolve().parents[1]
DEVDATA = REPO_ROOT.parent / "shared" / "devdata"
KINDS = ("memory", "tool", "reasoning")
SPLITS = ("train", "val", "test")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def run_child(raw: Path, out: Path, cores: int) -> None:
    """In the subprocess: pin to ``cores`` CPUs, generate, print one JSON line with the measurements."""
    if hasattr(os, "sched_setaffinity"):
        available = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, available[:cores])
    from dexter_brain.corpora import generate_corpora

    start = time.perf_counter()
    manifest = generate_corpora(raw, out, show_progress_bar=False)
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"seconds": seconds, "cpu_seconds": usage.ru_utime + usage.ru_stime,
                      "peak_rss_mib": usage.ru_maxrss / 1024,  # ru_maxrss is in KiB on Linux
                      "corpora": manifest["corpora"], "vocab_size": manifest["vocab"]["vocab_size"]}))


def measure(raw: Path, cores: int) -> dict:
    """Run ``generate_corpora`` on ``raw`` in a subprocess; return its measurements (or ``{"error": ...}``)."""
    env = dict(os.environ, **{name: str(cores) for name in THREAD_VARIABLES})
    with tempfile.TemporaryDirectory(prefix="dexter-corpora-") as tmp:
        command = [sys.executable, "-m", "benchmarks.corpora", "--child", str(raw), str(Path(tmp) / "out"),
                   "--cores", str(cores)]
        result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit code {result.returncode}: {last}"}
    return json.loads(result.stdout.strip().splitlines()[-1])


def describe(label: str, result: dict) -> str:
    if "error" in result:
        return f"{label}: failed, {result['error']}"
    corpora = result["corpora"]
    lines = [f"{label}: {result['seconds']:.1f} s wall ({result['cpu_seconds']:.1f} s CPU, imports included), "
             f"peak RSS {result['peak_rss_mib']:.0f} MiB, vocabulary {result['vocab_size']} pieces"]
    for kind in KINDS:
        entry = corpora[kind]
        counts = "  ".join(f"{s} {entry['splits'][s]:>6,}" for s in SPLITS)
        extra = ""
        if kind == "memory":
            extra = f"  facts {entry.get('facts', 0):,}, follow-ups {100 * entry['followup_fraction']:.1f} %"
        elif kind == "tool":
            extra = (f"  tools {entry.get('tools', 0):,} ({len(entry.get('reserved_tools', []))} reserved), "
                     f"corrections {100 * entry['correction_fraction']:.1f} %")
        elif kind == "reasoning":
            extra = f"  plans {entry.get('plans', 0):,}"
        if "empty_reason" in entry:
            extra = f"  empty: {entry['empty_reason']}"
        lines.append(f"  {kind:<9} {counts}{extra}")
    return "\n".join(lines)


def generate_sample_into(out: Path, seed: int, scale: float) -> str | None:
    """Generate the sample; return None on success, else a one-line reason."""
    try:
        from dexter_brain.sample import generate_sample
    except ImportError as error:
        return f"dexter_brain.sample.generate_sample is not available ({error})"
    generate_sample(out, seed=seed, scale=scale, show_progress_bar=False)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Measure corpus generation time and peak memory on the generated sample and the devdata.",
        epilog="Example: python -m benchmarks.corpora --scales 1 20 --cores 2",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--scales", type=float, nargs="+", default=[1, 20],
                        help="sample scales to generate and mine")
    parser.add_argument("--seed", type=int, default=0, help="seed passed to the sample generator")
    parser.add_argument("--cores", type=int, default=2, help="CPU cores each generation run is pinned to")
    parser.add_argument("--devdata", type=Path, default=DEVDATA,
                        help="directory holding the developer raw directories (skipped when absent)")
    parser.add_argument("--quiet", action="store_true",
                        help="print the measurements only (no line when a sample is generated, no skipped devdata)")
    parser.add_argument("--child", nargs=2, type=Path, metavar=("RAW", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        run_child(*args.child, cores=args.cores)
        return 0

    measured = 0
    for scale in args.scales:
        label = f"sample scale {scale:g} (seed {args.seed})"
        with tempfile.TemporaryDirectory(prefix="dexter-sample-") as tmp:
            raw = Path(tmp) / "raw"
            start = time.perf_counter()
            failure = generate_sample_into(raw, args.seed, scale)
            if failure is not None:
                print(f"{label}: skipped, {failure}")
                continue
            if not args.quiet:
                print(f"{label}: sample generated in {time.perf_counter() - start:.1f} s")
            result = measure(raw, args.cores)
        print(describe(f"{label}, corpora on {args.cores} cores", result))
        measured += "error" not in result

    if args.devdata.is_dir():
        for root in sorted(path for path in args.devdata.iterdir() if path.is_dir()):
            result = measure(root, args.cores)
            print(describe(f"devdata {root.name}, corpora on {args.cores} cores", result))
            measured += "error" not in result
    elif not args.quiet:
        print(f"devdata: {args.devdata} not present, skipped")
    return 0 if measured else 1


if __name__ == "__main__":
    sys.exit(main())

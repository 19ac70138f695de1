"""Training time and quality of the three TRMs: ``dexter_brain.runs.train_trm`` with its default settings.

Unless ``--data`` names an existing corpus directory, the embedded sample is generated at ``--scale`` into a
temporary directory (``dexter_brain.sample.generate_sample``) and mined with ``generate_corpora``. Then the
memory, tool and reasoning TRMs are trained one after another, each into a fresh temporary directory (so
nothing resumes), and the script prints per TRM: optimizer steps, wall seconds of training (evaluations
included), examples per second (slots per step x steps / those seconds) and the final validation metrics,
then the total. Target: all three together under 10 minutes at scale 1 on 2 CPU cores; on a GPU
(``--device cuda``) the same run for comparison.

Run from the repository root:

    python -m benchmarks.train                       # scale 1 on CPU: several minutes
    python -m benchmarks.train --quick --data DIR    # smoke test on an existing corpus: seconds
    python -m benchmarks.train --device cuda         # on a GPU
    python -m benchmarks.train --threads 1           # on a machine busy with other jobs
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

KINDS = ("memory", "tool", "reasoning")
TARGET_SECONDS = 600


def make_corpus(root: Path, *, scale: float, seed: int) -> Path:
    """Generate the sample and its corpora under ``root``; returns the corpus directory."""
    from dexter_brain.corpora import generate_corpora
    from dexter_brain.sample import generate_sample

    start = time.perf_counter()
    generate_sample(root / "raw", seed=seed, scale=scale, show_progress_bar=False)
    manifest = generate_corpora(root / "raw", root / "data", show_progress_bar=False)
    counts = ", ".join(f"{kind} {entry['splits'].get('train', 0):,}/{entry['splits'].get('val', 0):,}"
                       for kind, entry in manifest["corpora"].items())
    print(f"corpus: sample scale {scale:g} (seed {seed}) in {time.perf_counter() - start:.1f} s; "
          f"train/val examples: {counts}")
    return root / "data"


def describe_hardware(device: str) -> str:
    import torch

    from dexter_brain.training import pick_device

    resolved = pick_device(device)
    where = torch.cuda.get_device_name(resolved) if resolved.type == "cuda" else \
        f"CPU, {len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()} cores"
    return f"device: {resolved.type} ({where}), torch {torch.__version__}, CPU threads: {torch.get_num_threads()}"


def format_metrics(metrics: dict[str, float]) -> str:
    shown = [f"{k} {v:.3f}" for k, v in metrics.items() if isinstance(v, float) and not math.isnan(v)]
    return ", ".join(shown) or "none (no validation split)"


def train_one(kind: str, data: Path, out: Path, *, quick: bool, device: str, seed: int, quiet: bool) -> dict:
    from dexter_brain.data import CorpusNotFoundError
    from dexter_brain.runs import train_trm

    try:
        return train_trm(kind, data, out, quick=quick, seed=seed, device=device, show_progress_bar=not quiet)
    except CorpusNotFoundError as error:
        return {"kind": kind, "skipped": str(error)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Measure training time, throughput and final validation metrics of the three TRMs.",
        epilog="Example: python -m benchmarks.train --quick --data datasets/offline --device cpu",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="sample scale to generate (ignored with --data)")
    parser.add_argument("--data", type=Path, help="existing corpus directory to train on instead of generating one")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="where to train")
    parser.add_argument("--quick", action="store_true", help="the smoke-test budget of train_trm (seconds per TRM)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or log lines")
    parser.add_argument("--seed", type=int, default=0, help="seed for the sample and the training runs")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS), help="which TRMs to train")
    parser.add_argument("--threads", type=int,
                        help="torch CPU threads (default: torch's choice, one per core); on a machine shared with "
                             "other jobs use 1, since busy-waiting threads slow a step down many times over")
    args = parser.parse_args(argv)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")

    try:
        print(describe_hardware(args.device))
    except RuntimeError as error:  # --device cuda without a GPU
        print(f"error: {error}")
        return 1
    with tempfile.TemporaryDirectory(prefix="dexter-train-bench-") as tmp:
        tmp = Path(tmp)
        data = args.data if args.data is not None else make_corpus(tmp, scale=args.scale, seed=args.seed)
        if not (data / "manifest.json").is_file():
            print(f"error: {data} is not a corpus directory (no manifest.json); generate one first")
            return 1
        results, total = [], 0.0
        for kind in args.kinds:
            r = train_one(kind, data, tmp / "models" / kind, quick=args.quick, device=args.device, seed=args.seed,
                          quiet=args.quiet)
            results.append(r)
            if "skipped" in r:
                print(f"{kind:<9} skipped: {r['skipped']}")
                continue
            total += r["seconds"]
            print(f"{kind:<9} {r['steps']:>5} steps  {r['seconds']:>7.1f} s  {r['examples_per_second']:>8.1f} "
                  f"examples/s  best {r['primary_metric']} {r['best_metric']:.3f}  final: "
                  f"{format_metrics(r['metrics'])}", flush=True)
    trained = [r for r in results if "skipped" not in r]
    budget = "quick budget" if args.quick else f"target < {TARGET_SECONDS} s at scale 1 on 2 CPU cores"
    print(f"total: {len(trained)} of {len(results)} TRMs trained in {total:.1f} s ({budget})")
    return 0 if trained else 1


if __name__ == "__main__":
    sys.exit(main())

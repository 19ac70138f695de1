"""Command line for the sample generator.

Run ``python -m dexter_brain.sample datasets/raw/sample --seed 0 --scale 1`` (a few seconds on a laptop CPU);
``--scale 0.1`` makes a tiny directory for tests, ``--scale 100`` a large one, written in constant memory.
"""

from __future__ import annotations

import argparse
import sys

from dexter_brain.sample.build import generate_sample


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dexter_brain.sample",
        description="Write a realistic raw directory (d2_memory.json, brain.db, training_data_fast.jsonl, "
                    "art_*.json) for a fictional assistant user.",
        epilog="Example: python -m dexter_brain.sample datasets/raw/sample --seed 0 --scale 1",
    )
    parser.add_argument("out_dir", help="directory to write; must be new, empty, or an earlier sample output")
    parser.add_argument("--seed", type=int, default=0, help="random seed; the same seed and scale give identical "
                                                            "files (default: 0)")
    parser.add_argument("--scale", type=_positive, default=1.0,
                        help="size multiplier; 1 is about 60 entities, 3,000 facts, 6,000 tool calls (default: 1)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no summary line")
    args = parser.parse_args(argv)
    try:
        counts = generate_sample(args.out_dir, seed=args.seed, scale=args.scale,
                                 show_progress_bar=False if args.quiet else None)
    except (FileExistsError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(f"wrote {args.out_dir}: {counts['facts']} facts, {counts['labelled_queries']} labelled queries, "
              f"{counts['tool_calls']} tool calls, {counts['patterns']} plans, {counts['artifacts']} artifacts")
    return 0


if __name__ == "__main__":
    sys.exit(main())

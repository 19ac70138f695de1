"""Evaluate the trained TRMs on the test split against their baselines and write ``report.json`` and
``report.md`` (with PNG plots when matplotlib is installed) into the models directory.

Calls ``dexter_brain.evaluation.evaluate_brain``, which first fits ``calibration.json`` on the validation
split for every checkpoint that lacks one (``--calibrate`` refits all, ``--no-calibrate`` none), then prints
the headline table. ``--raw DIR`` evaluates the same models on the test split mined from another raw
directory. Also available as ``dexter-brain evaluate``.

Run from the repository root (CPU, about a minute on the embedded sample):

    python -m pipelines.evaluate_trms --models-dir models --datasets-dir datasets/offline
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from dexter_brain.cli import fail

logger = logging.getLogger(__name__)

KINDS = ("memory", "tool", "reasoning")
EXAMPLE = """example:
  python -m pipelines.evaluate_trms --models-dir models --datasets-dir datasets/offline
  python -m pipelines.evaluate_trms --models-dir models --raw ../shared/devdata/api_bank --no-calibrate"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.evaluate_trms",
        description="Evaluate the memory, tool and reasoning TRMs against BM25, linear and nearest-neighbour "
                    "baselines; write report.json and report.md.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models-dir", type=Path, default=Path("models"),
                        help="directory holding memory/, tool/ and reasoning/ (default: models)")
    parser.add_argument("--datasets-dir", type=Path, default=Path("datasets/offline"),
                        help="the corpus the models were trained on (default: datasets/offline)")
    parser.add_argument("--raw", type=Path, default=None,
                        help="evaluate on the test split mined from this raw directory (same settings as the "
                             "corpus; the memory bank is refreshed from it)")
    parser.add_argument("--out", type=Path, default=None,
                        help="where report.json, report.md and the plots go (default: --models-dir)")
    parser.add_argument("--calibrate", action=argparse.BooleanOptionalAction, default=None,
                        help="fit calibration.json on the validation split first (default: only for "
                             "checkpoints without one)")
    parser.add_argument("--latency-samples", type=int, default=50, help="timed calls per public method (default: 50)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads while evaluating; latency is reported for this setting (default: 1)")
    parser.add_argument("--no-plots", action="store_true", help="tables only, no PNG plots (faster)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars, warnings only")
    return parser


def check_inputs(models_dir: Path, datasets_dir: Path, raw: Path | None) -> str | None:
    """A one-line error for inputs that cannot be evaluated, or None."""
    if not any((models_dir / kind).is_dir() for kind in KINDS):
        return (f"no trained TRM in {models_dir} (expected memory/, tool/ or reasoning/): train first with "
                f"`python -m pipelines.train_all_trms` or `python build_trm_brain.py`")
    if not (datasets_dir / "manifest.json").is_file():
        return (f"no corpus in {datasets_dir} (manifest.json missing): pass the --datasets-dir the models were "
                f"trained on, or run `python -m pipelines.generate_trm_training_data` first")
    if raw is not None and not raw.is_dir():
        return f"raw directory not found: {raw}"
    return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    error = check_inputs(args.models_dir, args.datasets_dir, args.raw)
    if error:
        return fail(error)
    from dexter_brain.checkpoint import CheckpointError
    from dexter_brain.evaluation import evaluate_brain
    from dexter_brain.evaluation.report import headline
    from dexter_brain.raw import RawStoreError

    command = "python -m pipelines.evaluate_trms " + " ".join(sys.argv[1:] if argv is None else argv)
    try:
        report = evaluate_brain(args.models_dir, args.datasets_dir, raw_dir=args.raw, out_dir=args.out,
                                show_progress_bar=False if args.quiet else None,
                                latency_samples=args.latency_samples, calibrate=args.calibrate,
                                plots=not args.no_plots, num_threads=args.threads,
                                command=command.strip())
    except (CheckpointError, RawStoreError, OSError) as exc:
        return fail(exc)
    met = sum(t["met"] for t in report["targets"])
    print("\n".join(headline(report)))
    print(f"{met} of {len(report['targets'])} targets met; evaluated in {report['build_seconds']['evaluate']:.0f} s; "
          f"wrote {(args.out or args.models_dir) / 'report.md'} and report.json")
    return 0


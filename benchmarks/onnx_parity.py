"""ONNX against torch on a corpus split, through the public wrappers: the largest probability difference, the
share of identical top answers and recursion steps, and each backend's recall@5 / top-1 / step F1 / next-step
accuracy (``dexter_brain.evaluation.parity.compare_backends``), for the fp32 export and its int8 copy.

A build ships a kind as its linear floor alone when the recursive residual did not beat the floor on
validation, and the floor's export is a single linear map. ``--residual-from-last OUT`` measures the
recursion's export instead: each kind's ``last/`` weights are saved as ``OUT/<kind>/best`` scoring with the
residual, then exported (fp32 and int8) there; ``benchmarks/latency.py --models-dir OUT`` times the same copy.

Run from the repository root (CPU; a minute on the quick brain):

    dexter-brain export --format onnx --models-dir models --int8
    python -m benchmarks.onnx_parity --models-dir models --datasets-dir datasets/offline
    python -m benchmarks.onnx_parity --models-dir models --datasets-dir datasets/offline --residual-from-last /tmp/res
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from dexter_brain.checkpoint import (  # noqa: E402
    CheckpointError, load_checkpoint, save_checkpoint, write_checkpoint_file,
)
from dexter_brain.evaluation.parity import compare_backends  # noqa: E402
from dexter_brain.export import export_checkpoint  # noqa: E402

KINDS = ("memory", "tool", "reasoning")


def residual_copy(models_dir: Path, out: Path) -> Path:
    """``out/<kind>/best``: each kind's ``last/`` weights scoring with the residual, exported in fp32 and int8."""
    for kind in KINDS:
        last = models_dir / kind / "last"
        if not last.is_dir():
            continue
        model, vocab, featurizer, meta, _ = load_checkpoint(last)
        model.use_residual = True
        best = save_checkpoint(out / kind / "best", model, meta=meta, tokenizer=vocab.model_proto,
                               featurizer=featurizer)
        calibration = models_dir / kind / "best" / "calibration.json"
        if calibration.exists():  # added with its sha256, as every file of a checkpoint
            write_checkpoint_file(best, "calibration.json", calibration.read_bytes())
        export_checkpoint(best, int8=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Compare the ONNX backends (fp32, int8) with torch on a corpus split through the public API.",
        epilog="example: python -m benchmarks.onnx_parity --models-dir models --datasets-dir datasets/offline")
    parser.add_argument("--models-dir", type=Path, default=Path("models"), help="the models (exported with --int8)")
    parser.add_argument("--datasets-dir", type=Path, default=Path("datasets/offline"), help="their corpus directory")
    parser.add_argument("--split", default="test", help="the split to replay (default: test)")
    parser.add_argument("--backends", default="torch,onnx,onnx-int8",
                        help="comma-separated, the first is the reference (default: torch,onnx,onnx-int8)")
    parser.add_argument("--residual-from-last", type=Path, metavar="OUT",
                        help="measure a copy in OUT of each kind's last/ weights scoring with the residual")
    parser.add_argument("--threads", type=int, default=1, help="torch and onnxruntime threads (default: 1)")
    parser.add_argument("--quiet", action="store_true", help="print the figures only")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    models_dir = args.models_dir
    try:
        if args.residual_from_last:
            models_dir = residual_copy(args.models_dir, args.residual_from_last)
            if not args.quiet:
                print(f"residual copy of {args.models_dir}'s last/ weights, exported: {models_dir}")
        t0 = time.perf_counter()
        result = compare_backends(models_dir, args.datasets_dir, backends=tuple(args.backends.split(",")),
                                  split=args.split)
    except CheckpointError as exc:  # ExportError is one
        print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    print(f"{args.split} split of {args.datasets_dir}, models {models_dir} ({time.perf_counter() - t0:.0f} s):")
    for kind, runs in result.items():
        backends = [b for b in runs if b != "rows"]
        print(f"  {kind} ({runs['rows']} rows):")
        for b in backends:
            r = runs[b]
            metrics = ", ".join(f"{k} {v:.4f}" for k, v in r["metrics"].items() if k != "n" and v is not None)
            print(f"    {b:<10} {metrics} (n={r['metrics']['n']}); mean steps {r['mean_steps']:.2f}; vs "
                  f"{backends[0]}: max |dp| {r['max_abs_diff']:.2e}, same top-1 {r['same_top1']:.4f}, "
                  f"same steps {r['same_steps']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Export the trained TRMs to ONNX for onnxruntime and other edge runtimes (``dexter-brain export``).

Calls ``dexter_brain.export.export_brain``: each ``<models-dir>/<kind>/best`` gets
``<models-dir>/<kind>/onnx/best/`` (``scorer.onnx``, ``encoder.onnx`` for memory and tool, ``export.json``; with
``--int8`` also ``scorer.int8.onnx``, the scorer dynamically quantised to int8). Load them with
``MemoryTRM.from_checkpoint(path, backend="onnx")`` (or ``"onnx-int8"``). Needs the extra:
``pip install 'dexter-brain[onnx]'``.

Run from the repository root (CPU, seconds per model):

    dexter-brain export --format onnx --models-dir models --int8
    python -m pipelines.export_onnx --format onnx --models-dir models
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

KINDS = ("memory", "tool", "reasoning")
EXAMPLE = """example:
  dexter-brain export --format onnx --models-dir models --int8
  python -m pipelines.export_onnx --format onnx --models-dir models --trm memory"""


def build_parser(prog: str = "dexter-brain export") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Export each TRM's scoring core to ONNX (dynamic batch and candidate axes) beside its\n"
                               "checkpoint, in <models-dir>/<kind>/onnx/best/, for backend=\"onnx\" on the wrappers.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--format", choices=("onnx",), required=True, help="the export format (onnx)")
    parser.add_argument("--models-dir", type=Path, default=Path("models"),
                        help="directory holding memory/, tool/ and reasoning/ (default: models)")
    parser.add_argument("--trm", choices=(*KINDS, "all"), default="all", help="which TRM to export (default: all)")
    parser.add_argument("--int8", action="store_true", help="also write an int8 dynamically quantised scorer")
    parser.add_argument("--max-steps", type=int, help="supervision steps to unroll (default: each model's "
                                                      "max_supervision_steps; calls may ask for fewer, not more)")
    parser.add_argument("--quiet", action="store_true", help="warnings only, then the one-line summaries")
    return parser


def main(argv: list[str] | None = None, prog: str = "dexter-brain export") -> int:
    args = build_parser(prog).parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    from dexter_brain.checkpoint import CheckpointError
    from dexter_brain.export import export_brain

    kinds = KINDS if args.trm == "all" else (args.trm,)
    try:
        exported = export_brain(args.models_dir, kinds=kinds, int8=args.int8, max_steps=args.max_steps)
    except CheckpointError as exc:  # ExportError is one: onnx missing, no checkpoint, a failed check
        print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    for kind, info in exported.items():
        if "reason" in info:
            print(f"{kind}: not exported: {info['reason']}")
            continue
        sizes = ", ".join(f"{name} {size / 1e6:.2f} MB" if size >= 1e5 else f"{name} {size / 1e3:.1f} kB"
                          for name, size in info["bytes"].items())
        what = "floor alone" if not info["residual"] else f"{info['budget']} supervision steps"
        print(f"{kind}: {what} -> {info['dir']} ({sizes})")
    return 0


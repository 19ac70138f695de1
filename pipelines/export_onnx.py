"""Export the trained TRMs to ONNX: ``dexter_brain.commands.export`` (also ``dexter-brain export``).

    python -m pipelines.export_onnx --format onnx --models-dir models --int8
"""

from __future__ import annotations

import sys

from dexter_brain.commands.export import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main(prog="python -m pipelines.export_onnx"))

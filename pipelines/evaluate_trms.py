"""Evaluate the trained TRMs against their baselines and write ``report.json`` and ``report.md``:
``dexter_brain.commands.evaluate`` (also ``dexter-brain evaluate``).

    python -m pipelines.evaluate_trms --models-dir models --datasets-dir datasets/offline
"""

from __future__ import annotations

import sys

from dexter_brain.commands.evaluate import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())

"""Evaluation of a trained brain: calibration on the validation split, the test-split report against
baselines (``report.json`` + ``report.md`` with plots), and the baselines themselves.

    from dexter_brain.evaluation import calibrate_brain, evaluate_brain
    report = evaluate_brain("models", "datasets/offline")   # calibrates checkpoints that need it first
"""

from dexter_brain.evaluation.calibration import calibrate_brain
from dexter_brain.evaluation.evaluate import MEMORY_KEYS, REASONING_KEYS, TOOL_KEYS, evaluate_brain
from dexter_brain.evaluation.report import render_markdown, write_report

__all__ = ["calibrate_brain", "evaluate_brain", "render_markdown", "write_report", "MEMORY_KEYS", "TOOL_KEYS",
           "REASONING_KEYS"]

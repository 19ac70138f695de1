"""Corpus mining: a ``RawStore`` becomes memory, tool and reasoning corpora with a contamination-proof split,
one vocabulary and training tensors. ``generate_corpora`` runs it all."""

from dexter_brain.corpora.build import generate_corpora
from dexter_brain.schema import CorpusSettings, MemoryExample, ReasoningExample, ToolExample
from dexter_brain.corpora.split import ContaminationError, check_contamination

__all__ = [
    "generate_corpora", "CorpusSettings", "MemoryExample", "ReasoningExample", "ToolExample",
    "ContaminationError", "check_contamination",
]

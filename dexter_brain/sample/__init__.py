"""The embedded sample: a realistic raw directory for a fictional assistant user, generated on demand.

Alex Morgan, a freelance designer, has used the assistant for about twenty months. The generator writes what
such an app would have recorded: a memory dump with entities, facts, topics and conversations
(``d2_memory.json``), a SQLite brain with more facts, triples, chat history and stored plans (``brain.db``), a
tool-call log with failures and retries (``training_data_fast.jsonl``) and tool outputs (``art_*.json``).
Everything is seeded, so the same seed and scale give the same bytes; ``scale`` grows every count.

Example:
    >>> from dexter_brain.sample import generate_sample
    >>> counts = generate_sample("datasets/raw/sample", seed=0, scale=1.0)  # doctest: +SKIP
"""

from dexter_brain.sample.build import MARKER, generate_sample
from dexter_brain.sample.tools import catalogue

__all__ = ["MARKER", "catalogue", "generate_sample"]

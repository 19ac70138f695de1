"""dexter-brain: a small, fast, stateful local brain for an assistant application.

Raw operational records (a memory dump, a SQLite brain, tool-call logs, tool artifacts) are mined into
memory, tool and reasoning corpora with one sentencepiece vocabulary; three Tiny Recursive Models are
trained on them locally and served behind ``MemoryTRM``, ``ToolTRM`` and ``ReasoningTRM``;
``UnifiedConsciousness`` composes the three for a host app. Nothing leaves the machine.
"""

import logging

__version__ = "0.1.0"

# The host application decides what is shown; the library only emits records.
logging.getLogger(__name__).addHandler(logging.NullHandler())

_LAZY = {
    "MemoryTRM": "dexter_brain.wrappers.memory",
    "ToolTRM": "dexter_brain.wrappers.tool",
    "ReasoningTRM": "dexter_brain.wrappers.reasoning",
    "UnifiedConsciousness": "dexter_brain.wrappers.consciousness",
    "CarryStore": "dexter_brain.wrappers.carry",
    "RawStore": "dexter_brain.raw",
}
__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str):
    # Importing the package stays light (no torch) until a model class is asked for.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dexter_brain' has no attribute {name!r}")

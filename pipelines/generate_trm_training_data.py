"""Generate the memory, tool and reasoning corpora (plus vocabulary and training tensors) from a raw directory:
``dexter_brain.commands.generate`` (also ``dexter-brain generate``).

    python -m pipelines.generate_trm_training_data --raw datasets/raw/sample --out datasets/offline
    python -m pipelines.generate_trm_training_data --out datasets/offline --check-contamination
"""

from __future__ import annotations

import sys

from dexter_brain.commands.generate import (
    check_written_contamination,
    ensure_sample,
    generate_trm_training_data,
    main,
)

__all__ = ["check_written_contamination", "ensure_sample", "generate_trm_training_data", "main"]

if __name__ == "__main__":
    sys.exit(main())

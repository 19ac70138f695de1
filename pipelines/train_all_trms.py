"""Train the memory, tool and reasoning TRMs from a corpus directory into ``models/<kind>/``.

Each TRM gets ``best/`` (validation metric), ``best_loss/``, ``last/`` (with the training state, for
resume), ``metrics.jsonl`` and ``train_config.json``. Under ``torchrun --nproc_per_node N`` the same
command trains data-parallel (gloo on CPU, nccl on GPU).

    python -m pipelines.train_all_trms --data datasets/offline --models-dir models --quick
    torchrun --nproc_per_node 2 -m pipelines.train_all_trms --trm tool --device cpu
"""

from __future__ import annotations

import sys

from dexter_brain.cli import main_train as main
from dexter_brain.runs import train_trm

__all__ = ["main", "train_trm"]

if __name__ == "__main__":
    sys.exit(main())

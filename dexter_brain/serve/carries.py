"""The server's carry directory: ``UnifiedConsciousness.save_carries`` files plus ``carries.json``, which
records the weights each TRM's carries were made with.

A carry is a latent state of one particular model: after a rebuild or a retrain it means nothing (and may
not even have the new model's shape). So a TRM whose weights changed since the save starts its
conversations fresh, with a warning, instead of resuming from states another model made.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path

from dexter_brain.checkpoint import WEIGHTS
from dexter_brain.io import atomic_write_text
from dexter_brain.wrappers.consciousness import carry_file

logger = logging.getLogger(__name__)

MANIFEST = "carries.json"


def fingerprints(brain) -> dict[str, str]:
    """sha256 of each loaded TRM's weights file (as checked when the checkpoint was loaded)."""
    return {kind: part.core.meta["files"][WEIGHTS] for kind, part in brain._parts().items()}


def load_carries(brain, directory: str | Path, current: dict[str, str]) -> dict[str, int]:
    """Load the carries saved in ``directory`` into ``brain``; returns conversations loaded per TRM.

    A missing directory or file loads nothing; a file saved with other weights, or unreadable, is skipped
    with a warning (the server still starts: losing a conversation's latent state is not worth an outage).
    """
    directory = Path(directory)
    if not directory.is_dir():
        return {}
    try:
        saved = json.loads((directory / MANIFEST).read_text(encoding="utf-8")).get("weights", {})
    except FileNotFoundError:
        saved = {}  # written by a host's own save_carries: nothing to compare with
    except (OSError, ValueError, AttributeError) as exc:
        logger.warning("%s is unreadable (%s): loading no carries", directory / MANIFEST, exc)
        return {}
    counts = {}
    for kind, part in brain._parts().items():
        path = carry_file(directory, kind)
        if not path.exists():
            continue
        if kind in saved and saved[kind] != current[kind]:
            logger.warning("the %s TRM changed since its carries were saved: its conversations start fresh", kind)
            continue
        try:
            counts[kind] = part.load_carry(path)
        except Exception as exc:  # a corrupt file: start that TRM's conversations fresh
            logger.warning("cannot load %s (%s): the %s TRM's conversations start fresh", path, exc, kind)
    return counts


def save_carries(brain, directory: str | Path, current: dict[str, str]) -> int:
    """Save every TRM's carries and the manifest into ``directory``; returns the conversations held."""
    directory = Path(directory)
    brain.save_carries(directory)
    atomic_write_text(directory / MANIFEST, json.dumps(
        {"weights": current, "saved_at": datetime.now(timezone.utc).isoformat()}, indent=2) + "\n")
    return len({cid for part in brain._parts().values() for cid in part.core.carries.conversations()})
